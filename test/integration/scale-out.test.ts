// Scale-out: two predixy instances in front of one cluster act as one proxy (all state lives in the cluster).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";

const BASE = 8505;
const PORTS = [8591, 8592];
let cluster: ClusterHandle;
const proxies: ProxyHandle[] = [];
let a: Redis, b: Redis;

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: join(mkdtempSync(join(tmpdir(), "predixy-scale-out-")), "cluster") });
  // Each instance knows only one entry point, a different one: they discover the same cluster.
  // A long refresh interval: only redirects can teach them that a slot moved.
  for (const [i, port] of PORTS.entries())
    proxies.push(await startProxy(port, [cluster.entryPoints[i]], { cluster: "refresh_interval_ms = 600000" }));
  [a, b] = PORTS.map((port) => new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0 }));
}, 60_000);

afterAll(async () => {
  a?.disconnect();
  b?.disconnect();
  for (const p of proxies) await p.stop();
  await cluster?.stop();
});

/** Pipelines `cmds` on `c` and returns each reply (or its error). */
async function pipeline(c: Redis, cmds: string[][]): Promise<unknown[]> {
  const p = c.pipeline();
  for (const [name, ...args] of cmds) p.call(name, ...args);
  return (await p.exec())!.map(([err, v]) => err ?? v);
}

test("a write through one instance is read through the other, in every slot range", async () => {
  const keys = Array.from({ length: 600 }, (_, i) => `scale:${i}`);
  expect(await pipeline(a, keys.map((k) => ["set", k, `a:${k}`]))).toEqual(keys.map(() => "OK"));
  expect(await pipeline(b, keys.map((k) => ["get", k]))).toEqual(keys.map((k) => `a:${k}`));
  // and back: B overwrites half, deletes the rest; A sees exactly that
  await pipeline(b, keys.map((k, i) => (i % 2 ? ["set", k, `b:${k}`] : ["del", k])));
  expect(await pipeline(a, keys.map((k) => ["get", k]))).toEqual(keys.map((k, i) => (i % 2 ? `b:${k}` : null)));
});

test("concurrent increments through both instances add up exactly", async () => {
  await a.del("scale:counter");
  await Promise.all([a, b].map((c) => pipeline(c, Array.from({ length: 2000 }, () => ["incr", "scale:counter"]))));
  expect(await a.get("scale:counter")).toBe("4000");
  expect(await b.get("scale:counter")).toBe("4000");
});

test("a script with keys runs alike through either instance", async () => {
  const script = "redis.call('rpush', KEYS[1], ARGV[1]); return redis.call('lrange', KEYS[1], 0, -1)";
  await a.del("scale:list");
  expect(await a.eval(script, 1, "scale:list", "from-a")).toEqual(["from-a"]);
  expect(await b.eval(script, 1, "scale:list", "from-b")).toEqual(["from-a", "from-b"]);
});

test("a script loaded through one instance runs by its SHA through the other", async () => {
  const sha = await a.script("LOAD", "return redis.call('incrby', KEYS[1], ARGV[1])") as string;
  await a.del("scale:sha");
  // Keys in every slot range: SCRIPT LOAD reached every master, not just one.
  const keys = Array.from({ length: 30 }, (_, i) => `scale:sha:${i}`);
  expect(await pipeline(b, keys.map((k) => ["evalsha", sha, "1", k, "5"]))).toEqual(keys.map(() => 5));
  expect(await b.script("EXISTS", sha)).toEqual([1]);
  for (const port of [BASE, BASE + 1, BASE + 2]) expect(await redisCli(port, ["script", "exists", sha])).toBe("1");
});

test("a message published through one instance reaches a subscriber on the other", async () => {
  // Each instance subscribes on the cluster for its own clients; the cluster carries PUBLISH to
  // every node, and SPUBLISH to the channel's shard, so the instances need not know each other.
  const sub = new Redis({ port: PORTS[1], host: "127.0.0.1", maxRetriesPerRequest: 0 });
  const got: string[] = [];
  sub.on("message", (channel, message) => got.push(`${channel} ${message}`));
  sub.on("pmessage", (_pattern, channel, message) => got.push(`p ${channel} ${message}`));
  sub.on("smessage", (channel, message) => got.push(`s ${channel} ${message}`));
  try {
    await sub.subscribe("scale:news");
    await sub.psubscribe("scale:ev:*");
    await sub.ssubscribe("{scale}shard");
    await a.publish("scale:news", "via-a");
    await a.publish("scale:ev:1", "pattern-via-a");
    await a.call("spublish", "{scale}shard", "shard-via-a");
    for (let i = 0; i < 100 && got.length < 3; i++) await Bun.sleep(20);
    expect(got.toSorted()).toEqual(["p scale:ev:1 pattern-via-a", "s {scale}shard shard-via-a", "scale:news via-a"]);
  } finally {
    sub.disconnect();
  }
});

test("each instance's cluster façade advertises that instance's own address", async () => {
  for (const [i, c] of [a, b].entries()) {
    const slots = await c.call("cluster", "slots") as [number, number, [string, number, string]][];
    expect(slots.map(([from, to]) => [from, to])).toEqual([[0, 16383]]);
    expect(slots[0][2].slice(0, 2)).toEqual(["127.0.0.1", PORTS[i]]);
  }
  // So cluster-mode clients seeded with either instance stay on it, and still share one state.
  const [ca, cb] = PORTS.map((port) => new Cluster([{ host: "127.0.0.1", port }], { redisOptions: { maxRetriesPerRequest: 0 } }));
  try {
    const keys = Array.from({ length: 50 }, (_, i) => `scale:cluster-mode:${i}`);
    await Promise.all(keys.map((k) => cb.set(k, `via-b:${k}`)));
    expect(await Promise.all(keys.map((k) => ca.get(k)))).toEqual(keys.map((k) => `via-b:${k}`));
    expect(ca.nodes().map((n) => n.options.port)).toEqual([PORTS[0]]);
    expect(cb.nodes().map((n) => n.options.port)).toEqual([PORTS[1]]);
  } finally {
    ca.disconnect();
    cb.disconnect();
  }
});

test("after a slot moves, both instances follow it on their own (each learns from MOVED)", async () => {
  const key = "scale:moving";
  const enc = new TextEncoder().encode(key);
  const s = slotOf(enc, 0, enc.length);
  await a.set(key, "before");
  const ports = [BASE, BASE + 1, BASE + 2];
  const ids = await Promise.all(ports.map((p) => redisCli(p, ["cluster", "myid"])));
  let from = -1;
  for (const [i, p] of ports.entries()) if ((await redisCli(p, ["cluster", "countkeysinslot", String(s)])) === "1") from = i;
  expect(from).toBeGreaterThanOrEqual(0);
  const to = (from + 1) % 3;
  await redisCli(ports[to], ["cluster", "setslot", String(s), "importing", ids[from]]);
  await redisCli(ports[from], ["cluster", "setslot", String(s), "migrating", ids[to]]);
  await redisCli(ports[from], ["migrate", "127.0.0.1", String(ports[to]), "", "0", "5000", "keys", key]);
  for (const p of ports) await redisCli(p, ["cluster", "setslot", String(s), "node", ids[to]]);

  expect(await b.get(key)).toBe("before");
  expect(await a.set(key, "after")).toBe("OK");
  expect(await b.get(key)).toBe("after");
  expect(await redisCli(ports[to], ["get", key])).toBe("after");
});
