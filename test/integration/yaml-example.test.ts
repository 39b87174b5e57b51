// config.yaml, the design documents' example: checked as shipped, and run with only its addresses pointed at a test cluster.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Redis } from "ioredis";
import { parseDocument } from "yaml";
import { parseConfig } from "../../src/config/config.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/main.ts");
const EXAMPLE = join(ROOT, "config.yaml");
const BASE = 8500;
const PORT = 8590;
const ADMIN = 8589;
const dir = mkdtempSync(join(tmpdir(), "predixy-yaml-example-"));
const example = parseConfig(readFileSync(EXAMPLE, "utf8"), EXAMPLE, "yaml");
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let clients: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster") });
  // The example as shipped, but for where it (and its admin server) listens and the cluster it points at.
  const doc = parseDocument(readFileSync(EXAMPLE, "utf8"));
  doc.setIn(["server", "bind"], "127.0.0.1");
  doc.setIn(["server", "port"], PORT);
  doc.setIn(["admin", "bind"], "127.0.0.1");
  doc.setIn(["admin", "port"], ADMIN);
  doc.setIn(["cluster", "entry_points"], cluster.entryPoints);
  const file = join(dir, "config.yaml");
  writeFileSync(file, doc.toString());
  proxy = await startProxy(PORT, [], { configFile: file });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

test("the example uses the design documents' values", () => {
  expect(example.pool).toEqual({ size: 100, minIdle: 10, maxIdle: 50, maxPinned: 1024 });
  expect(example.performance.workerThreads).toBe(8);
  expect(example.performance.bufferSize).toBe(4096);
  expect(example.server).toMatchObject({ port: 6379, bind: "0.0.0.0", maxClients: 10000 });
});

test("--check accepts the file as shipped", () => {
  const r = Bun.spawnSync([process.execPath, MAIN, "-c", EXAMPLE, "--check"], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString()).toBe(`${EXAMPLE}: OK\n`);
  expect(r.exitCode).toBe(0);
});

test("all 8 processes (worker_threads) serve on the one port", async () => {
  const pids = new Set<string>();
  for (let i = 0; i < 400 && pids.size < example.performance.workerThreads; i++) {
    const info = await redisCli(PORT, ["info", "server"]);
    pids.add(/worker_process_id:(\d+)/.exec(info)![1]);
    if (i % 20 === 19) await Bun.sleep(100); // later workers may still be starting
  }
  expect(pids.size).toBe(example.performance.workerThreads);
});

test("it serves: writes and reads through many connections, spread over its processes", async () => {
  clients = Array.from({ length: 16 }, () => new Redis({ port: PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 }));
  await Promise.all(clients.map(async (c, i) => {
    const p = c.pipeline();
    for (let k = 0; k < 50; k++) p.set(`example:${i}:${k}`, `v${i}.${k}`);
    await p.exec();
  }));
  // Each client reads what another wrote (likely through another process).
  const got = await Promise.all(clients.map(async (c, i) => {
    const p = c.pipeline();
    for (let k = 0; k < 50; k++) p.get(`example:${(i + 1) % 16}:${k}`);
    return (await p.exec())!.map(([err, v]) => err ?? v);
  }));
  got.forEach((values, i) => expect(values).toEqual(Array.from({ length: 50 }, (_, k) => `v${(i + 1) % 16}.${k}`)));
});

test("each master sees worker_threads x min_idle connections opened at start-up, as the README explains", async () => {
  const want = example.performance.workerThreads * example.pool.minIdle;
  for (const port of [BASE, BASE + 1, BASE + 2]) {
    let n = 0;
    for (let i = 0; i < 100; i++) {
      // Every connection but redis-cli's own comes from the proxy (the cluster bus is not a client).
      n = (await redisCli(port, ["client", "list"])).split("\n").filter((l) => !l.includes("cmd=client")).length;
      if (n >= want) break;
      await Bun.sleep(50);
    }
    expect(n).toBeGreaterThanOrEqual(want);
    expect(n).toBeLessThanOrEqual(example.performance.workerThreads * example.pool.size);
  }
});

test("--ping with the same file finds it serving", async () => {
  const p = Bun.spawn([process.execPath, MAIN, "--ping", "-c", join(dir, "config.yaml")], { stdout: "pipe", stderr: "pipe" });
  expect(await p.exited).toBe(0);
  expect(await new Response(p.stdout).text()).toBe(`PONG from 127.0.0.1:${PORT}\n`);
});

test("its admin server answers /readyz once the cluster is known (the first process serves it for all)", async () => {
  const r = await fetch(`http://127.0.0.1:${ADMIN}/readyz`);
  expect(await r.text()).toBe("ready\n");
});
