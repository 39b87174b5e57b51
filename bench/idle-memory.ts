// Memory per idle client connection: the proxy's RSS with 0, 1,000, … clients that connected, PINGed once and wait.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Socket } from "bun";
import { startCluster } from "../test/helpers/redis-cluster.ts";
import { statusKB } from "./proc-stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const USAGE = `Usage: bun bench/idle-memory.ts [options]
  --counts 0,1000,5000,10000   idle clients held at each step (ascending)
  --buffer-size N              performance.buffer_size (default: predixy's default)
  --base-port P                3-master cluster on P..P+2, bus ports +10000 (default 7300)
  --port P                     proxy port (default 7377)
  --exe PATH                   executable to measure (default dist/predixy)
The shell's open-file limit must hold the largest count (the proxy lowers max_clients to fit).`;

const { values: o } = parseArgs({
  options: {
    counts: { type: "string", default: "0,1000,5000,10000" }, "buffer-size": { type: "string" },
    "base-port": { type: "string", default: "7300" }, port: { type: "string", default: "7377" },
    exe: { type: "string", default: join(ROOT, "dist/predixy") }, help: { type: "boolean", short: "h" },
  },
});
if (o.help) { console.log(USAGE); process.exit(0); }
const counts = o.counts!.split(",").map(Number);
const port = Number(o.port);

const dir = mkdtempSync(join(tmpdir(), "predixy-idle-"));
const cluster = await startCluster({ basePort: Number(o["base-port"]), masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster") });
const config = join(dir, "predixy.toml");
writeFileSync(config, [
  "[server]", `bind = "127.0.0.1"`, `port = ${port}`, `max_clients = ${Math.max(...counts) + 100}`,
  "[cluster]", `entry_points = ${JSON.stringify(cluster.entryPoints)}`,
  ...(o["buffer-size"] ? ["[performance]", `buffer_size = ${o["buffer-size"]}`] : []),
  "[log]", `level = "warning"`,
].join("\n"));
const proxy = Bun.spawn([o.exe!, "-c", config], { stdout: "inherit", stderr: "inherit" });

/** Connects, PINGs and waits for PONG: the client is then fully set up inside the proxy. */
async function idleClient(): Promise<Socket> {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const sock = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: { data: () => resolve(), error: (_s, e) => reject(e), close: () => reject(new Error("closed")) },
  });
  sock.write("PING\r\n");
  await promise;
  return sock;
}

const held: Socket[] = [];
try {
  for (let t0 = Date.now(); ; await Bun.sleep(50)) {
    try { await idleClient().then((s) => s.end()); break; } catch { if (Date.now() - t0 > 15_000) throw new Error("proxy did not start"); }
  }
  // Warm the proxy's code paths first, so JIT and heap growth are not counted per client.
  for (let i = 0; i < 200; i++) (await idleClient()).end();
  await Bun.sleep(1000);
  console.log("clients  RSS (MB)  per 1,000 clients since the previous step (MB)");
  let prev: [number, number] | null = null;
  for (const n of counts) {
    while (held.length < n) held.push(...(await Promise.all(Array.from({ length: Math.min(200, n - held.length) }, idleClient))));
    Bun.gc(true);
    await Bun.sleep(2000); // the proxy's own GC and its once-a-second sweeps settle
    const mb = statusKB(proxy.pid, "VmRSS") / 1024;
    const per = prev === null || n === prev[0] ? "" : (((mb - prev[1]) / (n - prev[0])) * 1000).toFixed(1);
    console.log(`${String(n).padStart(7)}  ${mb.toFixed(1).padStart(8)}  ${per}`);
    prev = [n, mb];
  }
} finally {
  for (const s of held) s.end();
  proxy.kill("SIGKILL");
  await proxy.exited;
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
