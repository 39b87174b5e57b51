// Metrics through a real cluster: exact counts for a known workload, Redis' views, /metrics, errors by kind.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { histogram, parseExposition, sampleValue } from "../helpers/prometheus.ts";
import { waitFor } from "../helpers/scripted.ts";

// Ports: cluster 8400-8402 (bus 18400-18402), proxy 8490, admin 8480.
const BASE = 8400;
const PROXY = 8490;
const ADMIN = 8480;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let client: Redis;

beforeAll(async () => {
  // No replicas: a stopped master stays stopped (no failover), for the errors-by-kind test.
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: "/tmp/predixy-test-8400" });
  proxy = await startProxy(PROXY, [cluster.entryPoints[0]], {
    cluster: "retry_timeout_ms = 300\nrefresh_interval_ms = 200",
    rest: `[admin]\nport = ${ADMIN}\n[metrics]\nslowlog_log_slower_than = 10000000\n[commands]\ndeny = []`, // CONFIG SET is denied by default
  });
  client = new Redis({ port: PROXY, host: "127.0.0.1", maxRetriesPerRequest: 0 });
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

/** INFO's section as a map. */
async function info(section: string): Promise<Map<string, string>> {
  const text = await client.info(section);
  return new Map(text.split("\r\n").filter((l) => l.includes(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)]));
}

/** A field of a cmdstat/errorstat line ("calls=3,usec=…"), 0 when the line is absent. */
const field = (line: string | undefined, name: string) => Number(new RegExp(`(?:^|,)${name}=([^,]+)`).exec(line ?? "")?.[1] ?? 0);

async function metrics() {
  const res = await fetch(`http://127.0.0.1:${ADMIN}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return parseExposition(await res.text());
}

const nodeRequests = (m: Awaited<ReturnType<typeof metrics>>) =>
  cluster.nodes.reduce((a, n) => a + (sampleValue(m, "predixy_node_requests_total", { node: n.addr }) ?? 0), 0);

test("1,000 SETs grow the set counters by exactly 1,000, in INFO and in /metrics", async () => {
  const before = await info("commandstats");
  const mBefore = await metrics();
  const pipe = client.pipeline();
  for (let i = 0; i < 1000; i++) pipe.set(`obs:${i}`, "v");
  await pipe.exec();
  const after = await info("commandstats");
  expect(field(after.get("cmdstat_set"), "calls") - field(before.get("cmdstat_set"), "calls")).toBe(1000);
  expect(field(after.get("cmdstat_set"), "failed_calls")).toBe(0);
  const m = await metrics();
  const sets = (x: typeof m) => sampleValue(x, "predixy_commands_total", { command: "set" }) ?? 0;
  expect(sets(m) - sets(mBefore)).toBe(1000);
  // Each SET is one exchange with one master (no redirects in a stable cluster).
  expect(nodeRequests(m) - nodeRequests(mBefore)).toBe(1000);
  const h = histogram(m, "predixy_command_duration_seconds", { command: "set" })!;
  expect(h.count).toBe(sets(m));
  expect(h.buckets["+Inf"]).toBe(h.count);
});

test("LATENCY HISTOGRAM answers in Redis 7's format, consistent with INFO", async () => {
  for (let i = 0; i < 50; i++) await client.get(`obs:${i}`);
  const reply = (await client.call("LATENCY", "HISTOGRAM", "get", "nosuchcommand")) as unknown[];
  expect(reply[0]).toBe("get");
  expect(reply.length).toBe(2);
  const body = reply[1] as unknown[];
  expect(body[0]).toBe("calls");
  expect(body[2]).toBe("histogram_usec");
  const calls = body[1] as number;
  expect(calls).toBe(field((await info("commandstats")).get("cmdstat_get"), "calls"));
  const pairs = body[3] as number[];
  expect(pairs.length % 2).toBe(0);
  for (let i = 0; i < pairs.length; i += 2) {
    expect(Math.log2(pairs[i]) % 1).toBe(0);
    if (i > 0) {
      expect(pairs[i]).toBeGreaterThan(pairs[i - 2]);
      expect(pairs[i + 1]).toBeGreaterThan(pairs[i - 1]);
    }
  }
  expect(pairs[pairs.length - 1]).toBe(calls);
  const lat = (await info("latencystats")).get("latency_percentiles_usec_get")!;
  const [p50, p99, p999] = ["p50", "p99", "p99.9"].map((p) => field(lat, p.replace(".", "\\.")));
  expect(p50).toBeGreaterThan(0);
  expect(p50).toBeLessThanOrEqual(p99);
  expect(p99).toBeLessThanOrEqual(p999);
  // With no names, every command called so far is listed.
  const all = (await client.call("LATENCY", "HISTOGRAM")) as unknown[];
  expect(all.filter((_, i) => i % 2 === 0)).toEqual(expect.arrayContaining(["get", "set", "info"]));
});

test("SLOWLOG records the command, its client and the node that answered; CONFIG SET sets the threshold", async () => {
  const c = new Redis({ port: PROXY, host: "127.0.0.1", connectionName: "slowpoke" });
  const owner = await ownerOf("slow:key");
  try {
    await c.ping();
    expect(await c.config("SET", "slowlog-log-slower-than", "0")).toBe("OK");
    expect(await c.call("SLOWLOG", "RESET")).toBe("OK");
    await c.set("slow:key", "value");
    const [entry] = (await c.call("SLOWLOG", "GET", "1")) as unknown[][];
    const [, time, duration, args, addr, name, node] = entry;
    expect(args).toEqual(["set", "slow:key", "value"]);
    expect(addr).toBe(`127.0.0.1:${(c as unknown as { stream: { localPort: number } }).stream.localPort}`);
    expect(name).toBe("slowpoke");
    expect(node).toBe(`127.0.0.1:${owner}`);
    expect(Math.abs((time as number) - Date.now() / 1000)).toBeLessThan(60);
    expect(duration as number).toBeGreaterThanOrEqual(0);
    // RESET, SET and GET were logged, newest first; LEN counts them all.
    expect(await c.call("SLOWLOG", "LEN")).toBe(3);
    // AUTH's arguments are never logged.
    await c.call("AUTH", "secret").catch(() => {});
    const [authEntry] = (await c.call("SLOWLOG", "GET", "1")) as unknown[][];
    expect(authEntry[3]).toEqual(["auth", "(redacted)"]);
    await c.call("SLOWLOG", "RESET");
    expect(await c.call("SLOWLOG", "LEN")).toBe(1);
    expect(await c.call("SLOWLOG", "GET", "-2").catch((e: Error) => e.message)).toBe("ERR count should be greater than or equal to -1");
  } finally {
    await c.config("SET", "slowlog-log-slower-than", "10000000");
    c.disconnect();
  }
});

/** The port of the master the proxy says serves `key` (INFO nodes). */
async function ownerOf(key: string): Promise<number> {
  const s = slot(key);
  for (const [, line] of await info("nodes")) {
    const slots = /slots=([^,]+)/.exec(line)![1];
    for (const r of slots.split(" ")) {
      const [a, b = a] = r.split("-").map(Number);
      if (s >= a && s <= b) return Number(/addr=[^:]+:(\d+)/.exec(line)![1]);
    }
  }
  throw new Error(`no owner for ${key}`);
}

test("CONFIG GET and SET: globs, immutable and invalid values, latency tracking off and on", async () => {
  expect(await client.config("GET", "slowlog*")).toEqual(["slowlog-log-slower-than", "10000000", "slowlog-max-len", "128"]);
  expect(await client.config("GET", "port")).toEqual(["port", String(PROXY)]);
  expect(await client.config("GET", "nosuch")).toEqual([]);
  await expect(client.config("SET", "port", "1")).rejects.toThrow("can't set immutable config");
  await expect(client.config("SET", "slowlog-max-len", "lots")).rejects.toThrow("argument couldn't be parsed into an integer");
  await expect(client.config("SET", "nosuch", "1")).rejects.toThrow("Unknown option");
  // All or nothing: the valid first pair is not kept when the second is refused.
  await expect(client.call("CONFIG", "SET", "slowlog-max-len", "5", "loglevel", "loud")).rejects.toThrow("loglevel");
  expect(await client.config("GET", "slowlog-max-len")).toEqual(["slowlog-max-len", "128"]);
  expect(await client.config("SET", "loglevel", "debug")).toBe("OK");
  expect(await client.config("GET", "loglevel")).toEqual(["loglevel", "debug"]);
  expect(await client.config("SET", "loglevel", "info")).toBe("OK");

  const calls = async () => field((await info("commandstats")).get("cmdstat_incr"), "calls");
  const start = await calls();
  expect(await client.config("SET", "latency-tracking", "no")).toBe("OK");
  for (let i = 0; i < 10; i++) await client.incr("obs:counter");
  expect(await client.config("SET", "latency-tracking", "yes")).toBe("OK");
  expect(await calls()).toBe(start);
  for (let i = 0; i < 10; i++) await client.incr("obs:counter");
  expect(await calls()).toBe(start + 10);
});

test("admin HTTP: healthz, readyz, cluster and info JSON, 404", async () => {
  const get = (path: string) => fetch(`http://127.0.0.1:${ADMIN}${path}`);
  expect(await (await get("/healthz")).text()).toBe("ok\n");
  const ready = await get("/readyz");
  expect(ready.status).toBe(200);
  const clusterJson = await (await get("/cluster")).json() as { state: string; nodes: { addr: string; role: string; slotCount: number; state: string }[] };
  expect(clusterJson.state).toBe("ok");
  expect(clusterJson.nodes.map((n) => n.addr).sort()).toEqual(cluster.entryPoints.slice().sort());
  expect(clusterJson.nodes.every((n) => n.role === "master" && n.state === "up")).toBe(true);
  expect(clusterJson.nodes.reduce((a, n) => a + n.slotCount, 0)).toBe(16384);
  const infoJson = await (await get("/info?sections=stats,commandstats")).json() as Record<string, Record<string, unknown>>;
  expect(Object.keys(infoJson)).toEqual(["stats", "commandstats"]);
  expect(infoJson.stats.total_commands_processed as number).toBeGreaterThan(1000);
  expect(infoJson.commandstats.cmdstat_set as string).toStartWith("calls=");
  expect((await get("/nosuch")).status).toBe(404);
});

test("a stopped master's commands fail, counted by kind for the command and the node", async () => {
  const key = "obs:victim";
  const port = await ownerOf(key);
  const victim = cluster.nodes.find((n) => n.port === port)!;
  const addr = victim.addr;
  const before = await info("errorstats");
  const cmdBefore = await info("commandstats");
  process.kill(victim.pid, "SIGKILL");
  const N = 5;
  for (let i = 0; i < N; i++) {
    // Sent one at a time: none is on the wire when the node dies, so each is refused, retried, then failed.
    await expect(client.get(key)).rejects.toThrow(/CLUSTERDOWN/);
  }
  const after = await info("errorstats");
  expect(field(after.get("errorstat_CLUSTERDOWN"), "count") - field(before.get("errorstat_CLUSTERDOWN"), "count")).toBe(N);
  expect(field((await info("commandstats")).get("cmdstat_get"), "failed_calls") - field(cmdBefore.get("cmdstat_get"), "failed_calls")).toBe(N);
  const m = await metrics();
  // Each is a CLUSTERDOWN to the client; the kind says what the proxy saw last: the node
  // unreachable, or the connect that failed just then.
  const kind = (k: string) => sampleValue(m, "predixy_command_errors_total", { command: "get", kind: k }) ?? 0;
  expect(kind("clusterdown") + kind("connect_failed")).toBe(N);
  expect(kind("clusterdown")).toBeGreaterThan(0);
  expect(sampleValue(m, "predixy_node_up", { node: addr })).toBe(0);
  expect(sampleValue(m, "predixy_node_errors_total", { node: addr, kind: "connect_failed" })!).toBeGreaterThan(0);
  expect(sampleValue(m, "predixy_node_state_changes_total", { node: addr, to: "down" })!).toBeGreaterThanOrEqual(1);
  await waitFor(async () => /state=down/.test([...(await info("nodes")).values()].find((l) => l.includes(`addr=${addr},`)) ?? ""), "the node shown down");
});
