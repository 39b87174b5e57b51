// MOVED and ASK against a real cluster: slots move and migrate under the proxy's feet.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { slotOf } from "../../src/cluster/key-slot.ts";

const BASE = 7500;
const PROXY_PORT = 7590;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let client: Redis;
const direct: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: "/tmp/predixy-test-7500" });
  // A long refresh interval: only redirects (not the periodic refresh) can teach the proxy.
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { cluster: "refresh_interval_ms = 600000" });
  client = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  for (let i = 0; i < 3; i++) direct.push(new Redis({ port: BASE + i, host: "127.0.0.1" }));
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  for (const d of direct) d.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

async function ids(): Promise<string[]> {
  return Promise.all([0, 1, 2].map((i) => redisCli(BASE + i, ["cluster", "myid"])));
}

/** Index (0..2) of the master serving `s`, by each node's own view of its slots. */
async function ownerOf(s: number): Promise<number> {
  for (let i = 0; i < 3; i++) {
    const slots = await direct[i].call("cluster", "slots") as [number, number, [string, number]][];
    if (slots.some(([from, to, [, port]]) => s >= from && s <= to && port === BASE + i)) return i;
  }
  throw new Error(`slot ${s} has no owner`);
}

async function redirects(): Promise<number> {
  const info = await client.info("stats");
  return Number(/cluster_redirects:(\d+)/.exec(info)![1]);
}

/** Starts moving slot `s` from node index `from` to `to`, and moves `keys` across; returns node ids. */
async function beginMigration(s: number, from: number, to: number, keys: string[]): Promise<string[]> {
  const nodeIds = await ids();
  await redisCli(BASE + to, ["cluster", "setslot", String(s), "importing", nodeIds[from]]);
  await redisCli(BASE + from, ["cluster", "setslot", String(s), "migrating", nodeIds[to]]);
  await redisCli(BASE + from, ["migrate", "127.0.0.1", String(BASE + to), "", "0", "5000", "keys", ...keys]);
  return nodeIds;
}

/** Assigns slot `s` to node `to` on every node (the last step of a migration). */
async function assign(s: number, toId: string): Promise<void> {
  for (let i = 0; i < 3; i++) await redisCli(BASE + i, ["cluster", "setslot", String(s), "node", toId]);
}

test("after a slot moves to another node, MOVED is followed transparently", async () => {
  const key = "moved:key";
  const s = slot(key);
  await client.set(key, "before-move");
  const from = await ownerOf(s);
  const to = (from + 1) % 3;
  const nodeIds = await beginMigration(s, from, to, [key]);
  await assign(s, nodeIds[to]);
  expect(await ownerOf(s)).toBe(to);

  const before = await redirects();
  expect(await client.get(key)).toBe("before-move");
  expect(await redirects()).toBeGreaterThan(before);
  expect(await client.set(key, "after-move")).toBe("OK");
  expect(await direct[to].get(key)).toBe("after-move");
  // The MOVED also triggered a refresh: eventually requests go straight to the new owner.
  let settled = false;
  for (let i = 0; i < 100 && !settled; i++) {
    const r = await redirects();
    await client.get(key);
    settled = (await redirects()) === r;
    if (!settled) await Bun.sleep(20);
  }
  expect(settled).toBe(true);
});

test("during a migration, ASK sends ASKING and the command to the importing node", async () => {
  const [k1, k2, k3] = ["{ask}:migrated", "{ask}:stays", "{ask}:new"];
  const s = slot(k1);
  await client.set(k1, "v1");
  await client.set(k2, "v2");
  const from = await ownerOf(s);
  const to = (from + 1) % 3;
  const nodeIds = await beginMigration(s, from, to, [k1]);

  const before = await redirects();
  expect(await client.get(k1)).toBe("v1");          // source answers ASK: key already moved
  expect(await client.get(k2)).toBe("v2");          // still on the source
  expect(await client.set(k3, "v3")).toBe("OK");    // new keys go to the importing node
  expect(await redirects()).toBeGreaterThanOrEqual(before + 2);
  // ASK does not change ownership: the source still owns the slot.
  expect(await ownerOf(s)).toBe(from);
  const onTarget = await direct[to].pipeline().asking().get(k3).exec();
  expect(onTarget![1][1]).toBe("v3");

  // Pipelined mixes of migrated and unmigrated keys still come back in order.
  const p = client.pipeline();
  for (let i = 0; i < 50; i++) p.get(k1).get(k2).get(k3);
  const res = await p.exec();
  for (let i = 0; i < 50; i++) {
    expect(res![3 * i][1]).toBe("v1");
    expect(res![3 * i + 1][1]).toBe("v2");
    expect(res![3 * i + 2][1]).toBe("v3");
  }

  // Finish the migration: everything now lives on the target and MOVED takes over.
  await redisCli(BASE + from, ["migrate", "127.0.0.1", String(BASE + to), "", "0", "5000", "keys", k2]);
  await assign(s, nodeIds[to]);
  expect(await client.mget(k1, k2, k3)).toEqual(["v1", "v2", "v3"]);
});
