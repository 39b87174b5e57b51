// Failover under the proxy: a manual failover and a killed master, with clients kept busy throughout.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { slotOf } from "../../src/cluster/key-slot.ts";

const BASE = 7700;
const PROXY_PORT = 7790;
let cluster: ClusterHandle;
let proxy: ProxyHandle;

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-7700" });
  // Retries must outlast a failover (node timeout 3 s + election) for clients not to notice.
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { cluster: "retry_timeout_ms = 20000\nrefresh_interval_ms = 1000" });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await cluster?.stop();
});

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

interface NodeRow { id: string; port: number; master: boolean; masterId: string; slots: [number, number][] }

async function nodes(port: number, selfOnly = false): Promise<NodeRow[]> {
  const text = await redisCli(port, ["cluster", "nodes"]);
  return text.split("\n").filter((l) => l && (!selfOnly || l.includes("myself"))).map((line) => {
    const f = line.split(" ");
    const slots = f.slice(8).filter((s) => /^\d+(-\d+)?$/.test(s)).map((s) => {
      const [a, b] = s.split("-").map(Number);
      return [a, b ?? a] as [number, number];
    });
    return { id: f[0], port: Number(f[1].split(":")[1].split("@")[0]), master: f[2].includes("master") && !f[2].includes("fail"), masterId: f[3], slots };
  });
}

/** Each live node's description of itself (its "myself" line): authoritative, unlike gossip about others. */
async function selfViews(): Promise<NodeRow[]> {
  const rows: NodeRow[] = [];
  for (const n of cluster.nodes) {
    try {
      const me = (await nodes(n.port, true))[0];
      if (me) rows.push(me);
    } catch {
      // A killed node does not answer.
    }
  }
  return rows;
}

/** The master serving `key` and its replica, by the nodes' own accounts; polls until both exist. */
async function pairFor(key: string, needReplica = true): Promise<{ master: NodeRow; replica: NodeRow }> {
  const s = slot(key);
  for (let attempt = 0; ; attempt++) {
    const all = await selfViews();
    const master = all.find((n) => n.master && n.slots.some(([a, b]) => s >= a && s <= b));
    const replica = master && all.find((n) => n.masterId === master.id);
    if (master && (replica || !needReplica)) return { master, replica: replica! };
    if (attempt > 200) throw new Error(`no ${master ? "replica" : "master"} for slot ${s}`);
    await Bun.sleep(50);
  }
}

/** Runs sequential SET/GET pairs through the proxy until stopped; records every outcome. */
function busyClient(prefix: string) {
  const c = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  const acked = new Map<string, string>();
  const errors: string[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const key = `${prefix}:${i % 200}`, value = `v${i}`;
      try {
        await c.set(key, value);
        acked.set(key, value);
        const got = await c.get(key);
        if (got !== value) errors.push(`read ${got} after writing ${value} to ${key}`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  })();
  return {
    acked, errors,
    async stop() { running = false; await done; c.disconnect(); },
  };
}

test("a manual failover is invisible to clients", async () => {
  const key = "fo:manual";
  const { master, replica } = await pairFor(key);
  const load = busyClient("{fo:manual}");
  await Bun.sleep(300);
  expect(await redisCli(replica.port, ["cluster", "failover"])).toBe("OK");
  // Wait until the former replica serves the slot, while the load keeps running.
  for (let i = 0; i < 200; i++) {
    const now = await pairFor(key, false);
    if (now.master.port === replica.port) break;
    await Bun.sleep(50);
  }
  expect((await pairFor(key, false)).master.port).toBe(replica.port);
  await Bun.sleep(500);
  await load.stop();
  expect(load.errors).toEqual([]);
  expect(load.acked.size).toBeGreaterThan(0);
  const check = new Redis({ port: PROXY_PORT, host: "127.0.0.1" });
  for (const [k, v] of load.acked) expect(await check.get(k)).toBe(v);
  check.disconnect();
  // The old master turns into a replica of the promoted one (once the cluster has gossiped it).
  let follows = "";
  for (let i = 0; i < 200 && follows !== replica.id; i++) {
    follows = (await nodes(master.port, true))[0].masterId;
    if (follows !== replica.id) await Bun.sleep(50);
  }
  expect(follows).toBe(replica.id);
}, 30_000);

test("when a master dies, its replica takes over and the proxy follows", async () => {
  const key = "fo:kill";
  const { master, replica } = await pairFor(key);
  const c = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  await c.set(key, "before");
  // Make sure the replica has the write before the master goes away.
  const direct = new Redis({ port: master.port, host: "127.0.0.1" });
  expect(await direct.call("wait", "1", "5000")).toBe(1);
  direct.disconnect();

  const pid = cluster.nodes.find((n) => n.port === master.port)!.pid;
  process.kill(pid, "SIGKILL");
  // Sent while the slot has no live master: the proxy retries until the replica is promoted.
  expect(await c.get(key)).toBe("before");
  expect(await c.set(key, "after")).toBe("OK");
  expect(await c.get(key)).toBe("after");
  const now = await pairFor(key, false);
  expect(now.master.port).toBe(replica.port);
  expect(proxy.logs()).toContain("topology changed");
  c.disconnect();
}, 30_000);
