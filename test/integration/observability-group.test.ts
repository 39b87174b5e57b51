// Metrics views across worker processes, readiness (cluster unreachable, drain), JSON logs, hot keys.

import { afterEach, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { bulk, DEFAULT, NO_REPLY, startFakeNode, type FakeNode } from "../helpers/fake-node.ts";
import { startProxy, type ProxyExtra, type ProxyHandle } from "../helpers/proxy.ts";
import { histogram, parseExposition, sampleValue } from "../helpers/prometheus.ts";
import { waitFor } from "../helpers/scripted.ts";

// Ports: fake nodes 8440-8449, proxies 8491-8495, admin 8481-8485.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function fake(port: number, handler: Parameters<typeof startFakeNode>[1] = () => DEFAULT): FakeNode {
  const n = startFakeNode(port, handler);
  cleanups.push(() => n.stop());
  return n;
}

async function proxy(port: number, node: FakeNode, extra: ProxyExtra): Promise<ProxyHandle> {
  const p = await startProxy(port, [`127.0.0.1:${node.port}`], extra);
  cleanups.push(() => p.stop());
  return p;
}

function client(port: number): Redis {
  const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0, lazyConnect: false });
  cleanups.push(() => c.disconnect());
  return c;
}

const answersGet = (args: string[]) => (args[0] === "GET" ? bulk(`v:${args[1]}`) : DEFAULT);

test("with two workers, INFO, SLOWLOG, CONFIG SET and /metrics cover both processes", async () => {
  const node = fake(8440, answersGet);
  await proxy(8491, node, { rest: "[performance]\nworker_threads = 2\n[admin]\nport = 8481\n[commands]\ndeny = []" });
  // SO_REUSEPORT spreads connections by hash: enough connections reach both workers.
  const conns: Redis[] = [];
  const pids = new Set<string>();
  let gets = 0;
  for (let i = 0; i < 40 && (pids.size < 2 || i < 10); i++) {
    const c = client(8491);
    conns.push(c);
    pids.add(/worker_process_id:(\d+)/.exec(await c.info("server"))![1]);
    for (let j = 0; j < 5; j++, gets++) expect(await c.get(`k${j}`)).toBe(`v:k${j}`);
  }
  expect(pids.size).toBe(2);

  // Every connection, whichever worker it landed on, sees the group's total.
  for (const c of conns.slice(0, 6)) {
    const line = /cmdstat_get:calls=(\d+)/.exec(await c.info("commandstats"))![1];
    expect(Number(line)).toBe(gets);
    expect(await c.info("server")).toContain("worker_processes:2");
  }
  const m = await parseExposition(await (await fetch("http://127.0.0.1:8481/metrics")).text());
  expect(sampleValue(m, "predixy_commands_total", { command: "get" })).toBe(gets);
  expect(sampleValue(m, "predixy_worker_processes")).toBe(2);
  expect(histogram(m, "predixy_command_duration_seconds", { command: "get" })!.count).toBe(gets);
  // The node also answered the INFO keyspace parts of the clients' ready-check INFO.
  expect(sampleValue(m, "predixy_node_requests_total", { node: "127.0.0.1:8440" })).toBe(gets + node.count("INFO"));

  // A setting changed through one worker applies to every worker.
  expect(await conns[0].config("SET", "slowlog-log-slower-than", "0")).toBe("OK");
  await waitFor(async () => {
    for (const c of conns.slice(0, 10)) if ((await c.config("GET", "slowlog-log-slower-than"))[1] !== "0") return false;
    return true;
  }, "the setting in every worker");
  for (const c of conns) await c.get("slow");
  const slow = (await conns[0].call("SLOWLOG", "GET", "-1")) as unknown[][];
  const ids = new Set(slow.map((e) => e[0]));
  expect(ids.size).toBe(slow.length);
  expect(slow.filter((e) => (e[3] as string[])[1] === "slow").length).toBe(conns.length);
  expect(await conns[1].call("SLOWLOG", "RESET")).toBe("OK");
  await waitFor(async () => ((await conns[2].call("SLOWLOG", "GET", "-1")) as unknown[][])
    .every((e) => (e[3] as string[])[1] !== "slow"), "the reset in every worker");
});

test("/readyz is 503 while the cluster is unreachable and ready again when it answers", async () => {
  let node = startFakeNode(8442, answersGet);
  cleanups.push(() => node.stop());
  await proxy(8492, node, { cluster: "refresh_interval_ms = 100\nconnect_timeout_ms = 200", rest: "[admin]\nport = 8482" });
  const readyz = async () => (await fetch("http://127.0.0.1:8482/readyz")).status;
  expect(await readyz()).toBe(200);
  node.stop();
  await waitFor(async () => (await readyz()) === 503, "readyz 503 with the node gone");
  const res = await fetch("http://127.0.0.1:8482/readyz");
  expect(await res.text()).toContain("unreachable");
  expect((await fetch("http://127.0.0.1:8482/healthz")).status).toBe(200);
  node = startFakeNode(8442, answersGet);
  await waitFor(async () => (await readyz()) === 200, "readyz 200 with the node back");
});

test("/readyz is 503 while the proxy drains at shutdown, and the process still answers", async () => {
  const node = fake(8443, (args) => (args[0] === "GET" ? NO_REPLY : DEFAULT));
  const p = await startProxy(8493, ["127.0.0.1:8443"], { cluster: "command_timeout_ms = 3000", rest: "[admin]\nport = 8483" });
  cleanups.push(() => p.stop());
  const c = client(8493);
  const pending = c.get("never").catch((e: Error) => e);
  await waitFor(() => node.count("GET") === 1, "the GET at the node");
  expect((await fetch("http://127.0.0.1:8483/readyz")).status).toBe(200);
  p.signal("SIGTERM");
  await waitFor(async () => (await fetch("http://127.0.0.1:8483/readyz")).status === 503, "readyz 503 while draining");
  expect(await (await fetch("http://127.0.0.1:8483/readyz")).text()).toContain("draining");
  const m = await parseExposition(await (await fetch("http://127.0.0.1:8483/metrics")).text());
  expect(sampleValue(m, "predixy_ready")).toBe(0);
  expect(await p.exited).toBe(0);
  expect(await pending).toBeInstanceOf(Error);
});

test("log.format json writes one JSON object per line", async () => {
  const node = fake(8444);
  const p = await proxy(8494, node, { rest: "[log]\nlevel = \"info\"\nformat = \"json\"" });
  await waitFor(() => p.logs().includes("listening"), "the start-up line");
  const lines = p.logs().trim().split("\n");
  expect(lines.length).toBeGreaterThan(1);
  for (const line of lines) {
    const r = JSON.parse(line) as { level: string; message: string; logger: string };
    expect(r.level).toMatch(/^[A-Z]+$/);
    expect(typeof r.message).toBe("string");
    expect(r.logger).toStartWith("predixy");
  }
});

test("hot keys: the sampled top-K by calls and bytes, in INFO and /metrics", async () => {
  const node = fake(8445, answersGet);
  await proxy(8495, node, { rest: "[metrics]\nhotkeys = 3\nhotkeys_sample_rate = 1\n[admin]\nport = 8485" });
  const c = client(8495);
  for (let i = 0; i < 30; i++) await c.get("hot");
  for (let i = 0; i < 3; i++) await c.get("cold");
  await c.set("big", "x".repeat(10_000)).catch(() => {});
  const text = await c.info("hotkeys");
  expect(text).toContain("hotkey_calls_0:key=hot,calls=30,error=0\r\n");
  expect(text).toContain("key=cold,calls=3,error=0");
  expect(text).toMatch(/hotkey_bytes_0:key=big,bytes=\d{5},error=0\r\n/);
  const m = await parseExposition(await (await fetch("http://127.0.0.1:8485/metrics")).text());
  expect(sampleValue(m, "predixy_hotkey_calls", { key: "hot" })).toBe(30);
});
