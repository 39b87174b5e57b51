// A client that pipelines big replies and never reads them, while another client works: predixy's RSS and the bystander's latency.
//
// usage: bun bench/slow-reader.ts [--base-port 7100] [--port 7779] [--requests 200000] [--value-size 16384]
//                                 [--toml "LINES"] (extra config, e.g. "[performance]\nmax_client_output_bytes = 33554432")
// Starts a 3 × 0 cluster and bun src/main.ts, prints one JSON line, stops both.

import { connect } from "node:net";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { startCluster } from "../test/helpers/redis-cluster.ts";
import { startProxy } from "../test/helpers/proxy.ts";
import { statusKB } from "./proc-stats.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    "base-port": { type: "string", default: "7100" }, port: { type: "string", default: "7779" },
    requests: { type: "string", default: "200000" }, "value-size": { type: "string", default: "16384" },
    toml: { type: "string", default: "" },
  },
});
const port = Number(values.port);
const cluster = await startCluster({ basePort: Number(values["base-port"]), masters: 3, replicasPerMaster: 0, dir: ".cluster-slow-reader" });
const proxy = await startProxy(port, cluster.entryPoints, { rest: values.toml!.replaceAll("\\n", "\n") });
try {
  const by = new Redis({ port, host: "127.0.0.1" });
  await by.set("big", "x".repeat(Number(values["value-size"])));
  await by.set("small", "s");
  const pid = Number(/process_id:(\d+)/.exec(await by.info("server"))![1]);
  const base = statusKB(pid, "VmRSS");
  let peak = base, slowest = 0, gets = 0, errors = 0, running = true;
  const sampler = setInterval(() => { peak = Math.max(peak, statusKB(pid, "VmRSS")); }, 10);
  const bystander = (async () => {
    while (running) {
      const t = performance.now();
      try { if ((await by.get("small")) !== "s") errors++; } catch { errors++; }
      slowest = Math.max(slowest, performance.now() - t);
      gets++;
    }
  })();
  await Bun.sleep(500);
  // Sends every GET at once and never reads a reply.
  const sock = connect({ host: "127.0.0.1", port });
  sock.pause();
  sock.on("error", () => {});
  let closedAt = 0;
  const t0 = performance.now();
  sock.on("close", () => { closedAt = performance.now(); });
  sock.write("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(Number(values.requests)));
  while (!closedAt && performance.now() - t0 < 60_000) await Bun.sleep(50);
  await Bun.sleep(1000);
  running = false;
  await bystander;
  clearInterval(sampler);
  sock.destroy();
  const info = await by.info();
  console.log(JSON.stringify({
    slowClientClosedAfterMs: closedAt ? Math.round(closedAt - t0) : null,
    rssBeforeMB: Math.round(base / 1024), rssPeakMB: Math.round(peak / 1024), rssGrowthMB: Math.round((peak - base) / 1024),
    bystanderGets: gets, bystanderErrors: errors, bystanderSlowestMs: Math.round(slowest),
    outputLimitDisconnections: Number(/client_output_buffer_limit_disconnections:(\d+)/.exec(info)?.[1]),
    evictedClients: Number(/evicted_clients:(\d+)/.exec(info)?.[1] ?? 0),
  }));
  by.disconnect();
} finally {
  await proxy.stop();
  await cluster.stop();
}
