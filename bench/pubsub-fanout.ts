// Pub/sub fan-out: one publisher, many subscribers of one channel, through predixy vs on a node directly.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Socket } from "bun";
import { startCluster } from "../test/helpers/redis-cluster.ts";
import { CLK_TCK, cpuTicks } from "./proc-stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const USAGE = `Usage: bun bench/pubsub-fanout.ts [options]
  --subscribers N   subscribers of the channel (default 100)
  --messages M      messages published per run (default 20000)
  --size B          payload bytes (default 64)
  --window W        PUBLISH commands the publisher keeps in flight (default 64)
  --repeat R        runs per leg, interleaved; medians reported (default 3)
  --resp 2|3        the subscribers' protocol (default 2)
  --base-port P     3-master cluster on P..P+2, bus ports +10000 (default 7400)
  --port P          proxy port (default 7477)
  --exe PATH        proxy executable (default dist/predixy, else bun src/main.ts)
Each run: subscribers connect and SUBSCRIBE, the publisher sends M PUBLISHes with W in flight,
and the run ends when every subscriber has every message (at most 120 s). Direct: the
subscribers and the publisher on one master. Reports deliveries/s and, through predixy, its CPU µs per delivery.`;

const { values: o } = parseArgs({
  options: {
    subscribers: { type: "string", default: "100" }, messages: { type: "string", default: "20000" },
    size: { type: "string", default: "64" }, window: { type: "string", default: "64" }, repeat: { type: "string", default: "3" },
    resp: { type: "string", default: "2" }, "base-port": { type: "string", default: "7400" }, port: { type: "string", default: "7477" },
    exe: { type: "string" }, help: { type: "boolean", short: "h" },
  },
});
if (o.help) { console.log(USAGE); process.exit(0); }
const SUBS = Number(o.subscribers), MSGS = Number(o.messages), SIZE = Number(o.size), WINDOW = Number(o.window);
const REPEAT = Number(o.repeat), RESP = Number(o.resp), PORT = Number(o.port), BASE = Number(o["base-port"]);
const CHANNEL = "fanout";
const payload = "x".repeat(SIZE);
// A delivered message: ["message", channel, payload] as an array (RESP2) or a push (RESP3).
const frameBytes = `*3\r\n$7\r\nmessage\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n$${SIZE}\r\n${payload}\r\n`.length;
const publishCmd = Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n$${SIZE}\r\n${payload}\r\n`);

interface Subscriber { sock: Socket; bytes: number; ready: Promise<void> }

/** Connects, switches protocol if asked, SUBSCRIBEs; counts message bytes after the confirmation. */
async function subscriber(port: number): Promise<Subscriber> {
  const confirm = `*3\r\n$9\r\nsubscribe\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n:1\r\n`.length;
  let seen = 0; // bytes before the messages: HELLO's reply (unknown size) and the confirmation
  let helloDone = RESP !== 3;
  const s: Subscriber = { sock: null as never, bytes: 0, ready: null as never };
  const { promise, resolve: ready } = Promise.withResolvers<void>();
  s.ready = promise;
  s.sock = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: {
      data(sock, chunk) {
        if (!helloDone) {
          // HELLO 3's map ends before SUBSCRIBE is sent: wait for its last field, then subscribe.
          if (!Buffer.from(chunk).toString("latin1").includes("modules")) return;
          helloDone = true;
          sock.write(`SUBSCRIBE ${CHANNEL}\r\n`);
          return;
        }
        if (seen < confirm) {
          const take = Math.min(confirm - seen, chunk.length);
          seen += take;
          if (seen === confirm) ready();
          s.bytes += chunk.length - take;
        } else {
          s.bytes += chunk.length;
        }
      },
    },
  });
  s.sock.write(RESP === 3 ? "HELLO 3\r\n" : `SUBSCRIBE ${CHANNEL}\r\n`);
  return s;
}

/** Publishes MSGS messages with WINDOW in flight; resolves when every reply is in. */
async function publish(port: number): Promise<void> {
  let replies = 0, sent = 0;
  const { promise, resolve: done } = Promise.withResolvers<void>();
  const sock = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: {
      data(s, chunk) {
        for (const b of chunk) if (b === 10) replies++;
        if (replies === MSGS) return done();
        const batch = Math.min(MSGS - sent, WINDOW - (sent - replies));
        if (batch > 0) { s.write(Buffer.concat(Array(batch).fill(publishCmd))); sent += batch; }
      },
    },
  });
  sent = Math.min(WINDOW, MSGS);
  sock.write(Buffer.concat(Array(sent).fill(publishCmd)));
  await promise;
  sock.end();
}

async function run(port: number, cpuPid: number | null): Promise<{ rate: number; usPerDelivery: number | null }> {
  const subs = await Promise.all(Array.from({ length: SUBS }, () => subscriber(port)));
  await Promise.all(subs.map((s) => s.ready));
  const want = MSGS * frameBytes;
  const ticks0 = cpuPid === null ? 0 : cpuTicks(cpuPid);
  const t0 = performance.now();
  const deadline = t0 + 120_000;
  await publish(port);
  while (subs.some((s) => s.bytes < want)) {
    if (performance.now() > deadline) throw new Error(`timeout: ${subs.filter((s) => s.bytes >= want).length}/${SUBS} subscribers complete`);
    await Bun.sleep(2);
  }
  const seconds = (performance.now() - t0) / 1000;
  const ticks = cpuPid === null ? 0 : cpuTicks(cpuPid) - ticks0;
  for (const s of subs) s.sock.end();
  if (subs.some((s) => s.bytes !== want)) throw new Error("a subscriber got more bytes than the messages sent");
  const deliveries = MSGS * SUBS;
  return { rate: deliveries / seconds, usPerDelivery: cpuPid === null ? null : ((ticks / CLK_TCK) * 1e6) / deliveries };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), "predixy-fanout-"));
const cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster") });
const config = join(dir, "predixy.toml");
writeFileSync(config, [
  "[server]", `bind = "127.0.0.1"`, `port = ${PORT}`,
  "[cluster]", `entry_points = ["127.0.0.1:${BASE}"]`, "[admin]", "port = 0", "[log]", `level = "warning"`,
].join("\n"));
const exe = o.exe ?? join(ROOT, "dist/predixy");
const cmd = (await Bun.file(exe).exists()) ? [exe, "-c", config] : [process.execPath, join(ROOT, "src/main.ts"), "-c", config];
const proxy = Bun.spawn(cmd, { stdout: "inherit", stderr: "inherit" });
try {
  for (let t0 = Date.now(); ; await Bun.sleep(100)) {
    try { await (await subscriber(PORT)).sock.end(); break; } catch { if (Date.now() - t0 > 15_000) throw new Error("proxy did not start"); }
  }
  await run(PORT, null); // warm-up: JIT, connections
  const direct: number[] = [], via: number[] = [], cpu: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    direct.push((await run(BASE, null)).rate);
    const r = await run(PORT, proxy.pid);
    via.push(r.rate);
    cpu.push(r.usPerDelivery!);
  }
  const m = (xs: number[]) => Math.round(median(xs)).toLocaleString("en-US");
  console.log(`${SUBS} subscribers (RESP${RESP}), ${MSGS} messages of ${SIZE} B, window ${WINDOW}, ${REPEAT} runs each (medians)`);
  console.log(`direct to one node: ${m(direct)} deliveries/s`);
  console.log(`through predixy:    ${m(via)} deliveries/s (${(median(via) / median(direct)).toFixed(2)}x), ${median(cpu).toFixed(2)} µs of predixy CPU per delivery`);
  console.log(`runs: direct ${direct.map(Math.round).join(", ")}; predixy ${via.map(Math.round).join(", ")}`);
} finally {
  proxy.kill("SIGKILL");
  await proxy.exited;
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
