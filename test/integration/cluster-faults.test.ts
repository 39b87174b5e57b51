// Faults of a real cluster under a checked pipelined load: failover, reshard, frozen and killed masters, a killed replica.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { Redis } from "ioredis";
import { AMBIGUOUS_WRITE, LoadClient, READ_NOT_REPEATED, type LoadSink } from "../helpers/checked-load.ts";
import { redisCli, startCluster, waitClusterOk, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { proxyConfig, startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { waitFor } from "../helpers/scripted.ts";

// Nodes on 8600–8605 (bus 18600–18605), the proxy on 8699.
const BASE = 8600, PROXY = 8699;
const PROXY_TOML = { cluster: "refresh_interval_ms = 1000" };
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let alive: number[] = [];

beforeAll(async () => {
  // A 2 s node timeout: failovers take ~3 s instead of Redis' default ~16 s.
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-8600", nodeTimeoutMs: 2000 });
  alive = cluster.nodes.map((n) => n.port);
  proxy = await startProxy(PROXY, cluster.entryPoints.slice(0, 3), PROXY_TOML);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await cluster?.stop();
});

interface Owner { from: number; to: number; master: number; replicas: number[] }

/** CLUSTER SLOTS as some live node sees it. */
async function owners(): Promise<Owner[]> {
  for (const port of alive) {
    // A frozen node accepts the connection but never answers: ask the next one.
    const c = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 1000 });
    try {
      await c.connect();
      const r = (await c.call("cluster", "slots")) as [number, number, [string, number], ...[string, number][]][];
      return r.map(([from, to, m, ...reps]) => ({ from, to, master: m[1], replicas: reps.map((x) => x[1]) }));
    } catch { /* try the next */ } finally {
      c.disconnect();
    }
  }
  throw new Error("no node answers CLUSTER SLOTS");
}

async function pidOf(port: number): Promise<number> {
  return Number(/process_id:(\d+)/.exec(await redisCli(port, ["info", "server"]))![1]);
}

/** Slots of master `port` in `table`. */
function slotsOf(table: Owner[], port: number): Set<number> {
  const out = new Set<number>();
  for (const o of table) if (o.master === port) for (let s = o.from; s <= o.to; s++) out.add(s);
  return out;
}

async function untilServedBy(slot: number, notPort: number): Promise<void> {
  await waitFor(async () => {
    const o = (await owners().catch(() => [])).find((x) => x.from <= slot && slot <= x.to);
    return o !== undefined && o.master !== notPort;
  }, `slot ${slot} to move off ${notPort}`, 30_000);
}

let nextClient = 0;

/**
 * The errors a failed master may cost: writes in flight to it ("may or may not have run") and
 * reads in flight with a later write of their client to their slot (not repeated: the node may
 * have run the write after them). Anything else is returned.
 */
function unexpected(errors: { kind: string; onVictim: boolean; op: string }[]) {
  return errors.filter((e) => !e.onVictim || (e.op === "GET" ? e.kind !== READ_NOT_REPEATED : e.kind !== AMBIGUOUS_WRITE));
}

/**
 * Runs a checked pipelined GET/SET/INCR load (8 clients, ~2000 commands/s) through the proxy,
 * does `fault` a second in, goes on a second after it returns, then reads every key back.
 * `fault` returns the slots it endangered (their errors are told apart).
 */
async function underLoad(fault: () => Promise<Set<number>>): Promise<{ errors: { kind: string; onVictim: boolean; op: string; message: string; slot: number }[]; wrong: string[]; answered: number }> {
  const errors: { kind: string; onVictim: boolean; op: string; message: string; slot: number }[] = [];
  const wrong: string[] = [];
  const sink: LoadSink = {
    latency() {},
    error(kind, message, slot, op) { errors.push({ kind, onVictim: false, op, message, slot }); },
    wrong(w) { wrong.push(w); },
  };
  const clients = Array.from({ length: 8 }, () => new LoadClient(nextClient++, 300, sink, 100_000));
  await Promise.all(clients.map((c) => c.connect(PROXY)));
  const timer = setInterval(() => { for (const c of clients) c.send(2, performance.now()); }, 8);
  await Bun.sleep(1000);
  const victim = await fault();
  await Bun.sleep(1000);
  clearInterval(timer);
  await waitFor(() => clients.every((c) => c.outstanding === 0), "every command to be answered", 30_000);
  for (const c of clients) c.verifyAll(performance.now());
  await waitFor(() => clients.every((c) => c.outstanding === 0), "every key to be read back", 30_000);
  expect(clients.every((c) => !c.closed)).toBe(true);
  for (const c of clients) c.close();
  for (const e of errors) e.onVictim = victim.has(e.slot);
  return { errors, wrong, answered: clients.reduce((n, c) => n + c.answered, 0) };
}

test("a manual CLUSTER FAILOVER under load: no errors, no wrong replies", async () => {
  const r = await underLoad(async () => {
    const table = await owners();
    const { master, replicas } = table[0];
    expect(await redisCli(replicas[0], ["cluster", "failover"])).toBe("OK");
    await untilServedBy(table[0].from, master);
    return slotsOf(table, master);
  });
  expect(r.wrong).toEqual([]);
  expect(r.errors).toEqual([]);
  expect(r.answered).toBeGreaterThan(1000);
}, 60_000);

test("a reshard under load (100 slots with their keys): no errors, no wrong replies", async () => {
  const r = await underLoad(async () => {
    const table = await owners();
    const from = table[0].master, to = table.find((o) => o.master !== from)!.master;
    const [fromId, toId] = await Promise.all([redisCli(from, ["cluster", "myid"]), redisCli(to, ["cluster", "myid"])]);
    const proc = Bun.spawn(["redis-cli", "--cluster", "reshard", `127.0.0.1:${from}`, "--cluster-from", fromId, "--cluster-to", toId,
      "--cluster-slots", "100", "--cluster-yes"], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    expect(out).toContain("Moving slot");
    return slotsOf(table, from);
  });
  expect(r.wrong).toEqual([]);
  expect(r.errors).toEqual([]);
  await waitClusterOk(alive, 20_000);
}, 60_000);

test("read_from = replica: reads are served by replicas, and a replica killed under load costs no errors", async () => {
  writeFileSync(proxy.configFile, proxyConfig(PROXY, cluster.entryPoints.slice(0, 3), { cluster: `${PROXY_TOML.cluster}\nread_from = "replica"\nhealth_check_interval_ms = 200` }));
  proxy.signal("SIGHUP");
  const reloads = () => proxy.logs().split("\n").filter((l) => l.includes("cluster.read_from") && l.includes("now in effect")).length;
  await waitFor(() => reloads() === 1, "the reload");
  // Values that never change: replicas may lag, but every read must find exactly these.
  const setup = new Redis({ port: PROXY, host: "127.0.0.1" });
  const keys = Array.from({ length: 200 }, (_, i) => `fixed:${i}`);
  for (const k of keys) await setup.set(k, `value of ${k}`);
  setup.disconnect();
  const table = await owners();
  const getsOn = async (port: number) => Number(/cmdstat_get:calls=(\d+)/.exec(await redisCli(port, ["info", "commandstats"]))?.[1] ?? 0);
  const replicas = table.flatMap((o) => o.replicas);
  const before = await Promise.all(replicas.map(getsOn));
  const readers = Array.from({ length: 6 }, () => new Redis({ port: PROXY, host: "127.0.0.1", maxRetriesPerRequest: 0 }));
  const wrong: string[] = [];
  let reads = 0, running = true;
  const loops = readers.map(async (c) => {
    for (let i = 0; running; i++) {
      const k = keys[i % keys.length];
      const v = await c.get(k).catch((e: Error) => `error: ${e.message}`);
      if (v !== `value of ${k}`) wrong.push(`${k}: ${v}`);
      reads++;
    }
  });
  await waitFor(async () => (await Promise.all(replicas.map(getsOn))).some((n, i) => n > before[i] + 100), "replicas to serve reads");
  const victim = replicas[0];
  process.kill(await pidOf(victim), "SIGKILL");
  alive = alive.filter((p) => p !== victim);
  const atKill = reads;
  await waitFor(() => reads > atKill + 2000, "reads to go on after the kill", 30_000);
  running = false;
  await Promise.all(loops);
  for (const c of readers) c.disconnect();
  expect(wrong).toEqual([]);
  writeFileSync(proxy.configFile, proxyConfig(PROXY, cluster.entryPoints.slice(0, 3), PROXY_TOML));
  proxy.signal("SIGHUP");
  await waitFor(() => reloads() === 2, "the reload back to master reads");
}, 60_000);

test("a master frozen (SIGSTOP) for less than the node timeout: clients wait, no errors", async () => {
  const r = await underLoad(async () => {
    const table = await owners();
    const victim = table.find((o) => o.replicas.length > 0)!.master;
    const pid = await pidOf(victim);
    process.kill(pid, "SIGSTOP");
    await Bun.sleep(1000);
    process.kill(pid, "SIGCONT");
    return slotsOf(table, victim);
  });
  expect(r.wrong).toEqual([]);
  expect(r.errors).toEqual([]);
}, 60_000);

test("a master frozen until it is failed over: only commands in flight to it fail (writes as may-or-may-not, reads a later write of their client followed)", async () => {
  let frozen = 0;
  const r = await underLoad(async () => {
    const table = await owners();
    const o = table.find((x) => x.replicas.length > 0)!;
    frozen = await pidOf(o.master);
    process.kill(frozen, "SIGSTOP");
    await untilServedBy(o.from, o.master);
    return slotsOf(table, o.master);
  });
  process.kill(frozen, "SIGCONT");
  expect(r.wrong).toEqual([]);
  expect(unexpected(r.errors)).toEqual([]);
  await waitClusterOk(alive, 30_000);
}, 60_000);

test("kill -9 of a master under load: no acknowledged write lost, errors only for commands in flight to it; a cluster-wide command meanwhile is answered by its replacement", async () => {
  const side = new Redis({ port: PROXY, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  let dbsize: Promise<unknown> = Promise.resolve(null);
  const r = await underLoad(async () => {
    const table = await owners();
    const o = table.find((x) => x.replicas.length > 0)!;
    process.kill(await pidOf(o.master), "SIGKILL");
    // Its part for the dead master cannot be answered there: it must follow the slots to the
    // promoted replica, not wait out retry_timeout_ms (20 s) for an address that never returns.
    dbsize = side.dbsize().catch((e: Error) => e);
    alive = alive.filter((p) => p !== o.master);
    await untilServedBy(o.from, o.master);
    return slotsOf(table, o.master);
  });
  expect(r.wrong).toEqual([]);
  expect(unexpected(r.errors)).toEqual([]);
  expect(proxy.logs()).toContain("topology changed");
  const n = await dbsize;
  side.disconnect();
  const masters = (await owners()).map((o) => o.master);
  let sum = 0;
  for (const port of new Set(masters)) sum += Number(await redisCli(port, ["dbsize"]));
  // Counted while the load went on: at most what is there now, and never an error.
  expect(typeof n).toBe("number");
  expect(n as number).toBeGreaterThan(0);
  expect(n as number).toBeLessThanOrEqual(sum);
}, 60_000);
