// Multi-key commands over keys in many slots, split and merged, against a real cluster and one Redis.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { exchange, pipeline, startStandalone, text } from "../helpers/resp-client.ts";

// Ports 8100-8102 (bus 18100-18102), one plain Redis on 8180, the proxy on 8190.
const BASE = 8100;
const REFERENCE = 8180;
const PROXY_PORT = 8190;
let cluster: ClusterHandle;
let reference: { stop(): Promise<void> };
let proxy: ProxyHandle;
let client: Redis;
const masters: Redis[] = [];

beforeAll(async () => {
  [cluster, reference] = await Promise.all([
    startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: "/tmp/predixy-test-8100" }),
    startStandalone(REFERENCE),
  ]);
  // Room for a slot migration's TRYAGAIN window (a multi-key part over a half-moved slot).
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { cluster: "retry_timeout_ms = 10000" });
  client = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  for (let i = 0; i < 3; i++) masters.push(new Redis({ port: BASE + i, host: "127.0.0.1" }));
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  for (const m of masters) m.disconnect();
  await proxy?.stop();
  await Promise.all([cluster?.stop(), reference?.stop()]);
});

const enc = new TextEncoder();
const slot = (k: string | Uint8Array) => { const b = typeof k === "string" ? enc.encode(k) : k; return slotOf(b, 0, b.length); };

/** A deterministic generator, so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

/** Keys of every kind: plain, hash-tagged together, binary with CR/LF/NUL, empty. */
const KEYS: (string | Uint8Array)[] = [
  "a", "b", "c", "user:1", "user:2", "{t}1", "{t}2", "{t}3", "", "x{y}z", "{}k",
  Uint8Array.of(0, 13, 10, 255), Uint8Array.of(36, 42), "n1", "n2", "list1",
];

/** 10,000 commands mixing split MGET/MSET/DEL/UNLINK/EXISTS/TOUCH with single-key ones. */
function workload(count: number, seed: number): (string | Uint8Array)[][] {
  const r = rng(seed);
  const key = () => KEYS[Math.floor(r() * KEYS.length)];
  const keys = (max: number) => Array.from({ length: 1 + Math.floor(r() * max) }, key);
  const out: (string | Uint8Array)[][] = [];
  for (let i = 0; i < count; i++) {
    const pick = r();
    if (pick < 0.2) out.push(["MSET", ...keys(6).flatMap((k) => [k, `v${i}`])]);
    else if (pick < 0.4) out.push(["MGET", ...keys(12)]);
    else if (pick < 0.47) out.push(["DEL", ...keys(5)]);
    else if (pick < 0.5) out.push(["UNLINK", ...keys(5)]);
    else if (pick < 0.58) out.push(["EXISTS", ...keys(8)]);
    else if (pick < 0.62) out.push(["TOUCH", ...keys(8)]);
    else if (pick < 0.72) out.push(["SET", key(), `s${i}`]);
    else if (pick < 0.82) out.push(["GET", key()]);
    else if (pick < 0.88) out.push(["INCR", r() < 0.5 ? "n1" : "n2"]);
    else if (pick < 0.92) out.push(["LPUSH", key(), "e"]);
    else if (pick < 0.96) out.push(["APPEND", key(), "+"]);
    else out.push(["MSET", key(), "v", key()]); // a key without a value: Redis' arity error
  }
  return out;
}

describe("answers as one Redis would", () => {
  test("a 10,000-command pipeline of split and single-key commands: every reply byte-identical, in order", async () => {
    await exchange(PROXY_PORT, pipeline([["FLUSHALL"]]), 1);
    await exchange(REFERENCE, pipeline([["FLUSHALL"]]), 1);
    const commands = workload(10_000, 42);
    const split = commands.filter((c) => ["MGET", "MSET", "DEL", "UNLINK", "EXISTS", "TOUCH"].includes(c[0] as string) &&
      new Set(c.slice(1).filter((_, i) => c[0] !== "MSET" || i % 2 === 0).map(slot)).size > 1).length;
    expect(split).toBeGreaterThan(2000); // the workload does exercise splitting
    const wire = pipeline(commands);
    const [viaProxy, viaRedis] = await Promise.all([
      exchange(PROXY_PORT, wire, commands.length), exchange(REFERENCE, wire, commands.length),
    ]);
    expect(viaProxy.length).toBe(commands.length);
    for (let i = 0; i < commands.length; i++) {
      if (Buffer.compare(viaProxy[i], viaRedis[i]) !== 0) {
        throw new Error(`reply ${i} to ${commands[i].map(String).join(" ")}: proxy ${JSON.stringify(text(viaProxy[i]))}, redis ${JSON.stringify(text(viaRedis[i]))}`);
      }
    }
  });

  test("the same commands one at a time, from several clients at once, leave the same data", async () => {
    const commands = workload(600, 7).filter((c) => c[0] !== "INCR" && c[0] !== "LPUSH" && c[0] !== "APPEND");
    // Each client owns a disjoint key space (its own prefix), so concurrency cannot change the outcome.
    const prefixed = (p: string) => commands.map((c) => c.map((a, i) => (i === 0 || (c[0] === "MSET" && i % 2 === 0) || (c[0] === "SET" && i === 2) ? a : `${p}:${typeof a === "string" ? a : Buffer.from(a).toString("hex")}`)));
    const run = async (port: number, p: string) => {
      const replies: string[] = [];
      for (const c of prefixed(p)) replies.push(text((await exchange(port, pipeline([c]), 1))[0]));
      return replies;
    };
    const results = await Promise.all(["c1", "c2", "c3"].flatMap((p) => [run(PROXY_PORT, p), run(REFERENCE, p)]));
    for (let i = 0; i < 3; i++) expect(results[2 * i]).toEqual(results[2 * i + 1]);
  });
});

describe("big requests", () => {
  test("MSET of 1,000 keys lands on every master; MGET of 10,000 keys returns them in order", async () => {
    await client.flushall();
    const keys = Array.from({ length: 1000 }, (_, i) => `big:${i}`);
    const args = keys.flatMap((k, i) => [k, `value-${i}`]);
    expect(await client.mset(...args)).toBe("OK");
    const sizes = await Promise.all(masters.map((m) => m.dbsize()));
    expect(sizes.every((n) => n > 200)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1000);
    const asked = Array.from({ length: 10_000 }, (_, i) => `big:${(i * 7) % 1500}`);
    const got = await client.mget(...asked);
    expect(got).toEqual(asked.map((k) => { const n = Number(k.slice(4)); return n < 1000 ? `value-${n}` : null; }));
    expect(await client.exists(...asked)).toBe(asked.filter((k) => Number(k.slice(4)) < 1000).length);
    expect(await client.del(...keys, ...keys)).toBe(1000); // duplicates are deleted once, as Redis counts
  });
});

describe("slots moving under a split command", () => {
  test("MGET/MSET parts that meet MOVED, ASK or TRYAGAIN are redirected on their own; the merge stays right", async () => {
    const moving = Array.from({ length: 5 }, (_, i) => `{mv}:${i}`);
    const others = Array.from({ length: 20 }, (_, i) => `other:${i}`);
    const s = slot("{mv}");
    const ids = await Promise.all([0, 1, 2].map((i) => redisCli(BASE + i, ["cluster", "myid"])));
    const ownerIdx = async () => {
      const out = await redisCli(BASE, ["cluster", "countkeysinslot", String(s)]);
      expect(Number(out)).toBeGreaterThanOrEqual(0);
      for (let i = 0; i < 3; i++) {
        const slots = await masters[i].call("cluster", "slots") as [number, number, [string, number]][];
        if (slots.some(([a, b, [, port]]) => s >= a && s <= b && port === BASE + i)) return i;
      }
      throw new Error("no owner");
    };
    const from = await ownerIdx(), to = (from + 1) % 3;
    const redirectsBefore = Number(/cluster_redirects:(\d+)/.exec(await client.info("stats"))![1]);

    let round = 0, errors = 0, wrong = 0, migrating = true;
    const load = (async () => {
      while (migrating || round < 20) {
        round++;
        const all = [...moving, ...others];
        const values = all.map((k) => `${k}@${round}`);
        const p = client.pipeline();
        p.mset(...all.flatMap((k, i) => [k, values[i]]));
        p.mget(...all);
        p.get(moving[round % moving.length]);
        const res = (await p.exec())!;
        for (const [e] of res) if (e) errors++;
        if (JSON.stringify(res[1][1]) !== JSON.stringify(values)) wrong++;
        if (res[2][1] !== `${moving[round % moving.length]}@${round}`) wrong++;
        if (round > 2000) break;
      }
    })();

    await Bun.sleep(100);
    await redisCli(BASE + to, ["cluster", "setslot", String(s), "importing", ids[from]]);
    await redisCli(BASE + from, ["cluster", "setslot", String(s), "migrating", ids[to]]);
    for (const k of moving) {
      await redisCli(BASE + from, ["migrate", "127.0.0.1", String(BASE + to), k, "0", "5000"]);
      await Bun.sleep(30);
    }
    // As redis-cli --cluster does: the target first, then the source, then the rest.
    for (const i of [to, from, 3 - from - to]) await redisCli(BASE + i, ["cluster", "setslot", String(s), "node", ids[to]]);
    migrating = false;
    await load;

    expect(await ownerIdx()).toBe(to);
    expect({ errors, wrong }).toEqual({ errors: 0, wrong: 0 });
    expect(round).toBeGreaterThan(20);
    const redirectsAfter = Number(/cluster_redirects:(\d+)/.exec(await client.info("stats"))![1]);
    expect(redirectsAfter).toBeGreaterThan(redirectsBefore);
    expect(await client.mget(...moving)).toEqual(moving.map((k) => `${k}@${round}`));
  }, 30_000);
});
