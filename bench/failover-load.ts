// Failover under load (`make failover-bench`): a checked open-loop load through predixy while a master is killed, frozen or failed over.
//
// Reports errors by kind (and whether their slot was on the failed master), the longest pause any
// client saw, latency percentiles per second (and over the failover), and predixy's RSS peak.
// Exit status 1 if a reply contradicted the model (a lost write, a stale read, a wrong counter)
// or something failed to run; errors alone are reported, not judged.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { answersPing, redisCli, startCluster, type ClusterHandle } from "../test/helpers/redis-cluster.ts";
import { LoadClient, type LoadSink } from "../test/helpers/checked-load.ts";
import { statusKB } from "./proc-stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const USAGE = `usage: bun bench/failover-load.ts [options]

  --fault kill|stop|failover|none   what happens to the victim master (default kill: SIGKILL)
  --fault-at S            seconds into the load (default 20)   --duration S   load length (default 60)
  --stop-seconds S        with --fault stop: SIGCONT after S seconds (default 8)
  --rate N                commands per second, all clients (default 40000)
  --clients C             connections (default 120)            --keys K   keys per client (default 4000)
  --base-port P           cluster on P.. (default 7000)        --masters M (9)   --replicas R (1)
  --node-timeout MS       cluster-node-timeout (default 3000)  --cluster-dir DIR (default .cluster-failover)
  --reuse-cluster         use the cluster answering on --base-port (and leave it up)
  --port P                proxy port (default 7778)            --proxy-toml "LINES"  extra [cluster] lines
  --max-outstanding N     per client; past it sends are skipped and counted (default 20000)
`;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    fault: { type: "string", default: "kill" }, "fault-at": { type: "string", default: "20" },
    duration: { type: "string", default: "60" }, "stop-seconds": { type: "string", default: "8" },
    rate: { type: "string", default: "40000" }, clients: { type: "string", default: "120" }, keys: { type: "string", default: "4000" },
    "base-port": { type: "string", default: "7000" }, masters: { type: "string", default: "9" }, replicas: { type: "string", default: "1" },
    "node-timeout": { type: "string", default: "3000" }, "cluster-dir": { type: "string", default: ".cluster-failover" },
    "reuse-cluster": { type: "boolean", default: false }, port: { type: "string", default: "7778" },
    "proxy-toml": { type: "string", default: "" }, "max-outstanding": { type: "string", default: "20000" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) { process.stdout.write(USAGE); process.exit(0); }
const num = (k: keyof typeof values) => Number(values[k]);
const opt = {
  fault: values.fault!, faultAt: num("fault-at"), duration: num("duration"), stopSeconds: num("stop-seconds"), rate: num("rate"),
  clients: num("clients"), keys: num("keys"), basePort: num("base-port"), masters: num("masters"), replicas: num("replicas"),
  nodeTimeout: num("node-timeout"), port: num("port"), maxOutstanding: num("max-outstanding"),
};

// ---- what the clients report ----

const WINDOW_MS = 1000;
const windows: number[][] = [];
const errors = new Map<string, { count: number; onVictim: number; byOp: Record<string, number>; example: string }>();
const wrong: string[] = [];
let t0 = 0;
let victimSlots: Set<number> = new Set();
/** Off for the read-back at the end: its latencies are not the load's. */
let recording = true;
const sink: LoadSink = {
  latency(now, ms) { if (recording) (windows[Math.floor((now - t0) / WINDOW_MS)] ??= []).push(ms); },
  error(kind, message, slot, op) {
    const e = errors.get(kind) ?? { count: 0, onVictim: 0, byOp: {}, example: message };
    e.count++;
    if (victimSlots.has(slot)) e.onVictim++;
    e.byOp[op] = (e.byOp[op] ?? 0) + 1;
    errors.set(kind, e);
  },
  wrong(what) { if (wrong.length < 50) wrong.push(what); else wrong.length++; },
};

// ---- cluster, proxy ----

async function clusterSlots(port: number): Promise<{ from: number; to: number; port: number }[]> {
  const text = await redisCli(port, ["cluster", "slots"]);
  const out: { from: number; to: number; port: number }[] = [];
  const lines = text.split("\n");
  // redis-cli prints each range as: from, to, master host, master port, master id, …
  for (let i = 0; i + 3 < lines.length; i++) {
    if (/^\d+$/.test(lines[i]) && /^\d+$/.test(lines[i + 1]) && /^\d+\.\d+\.\d+\.\d+$/.test(lines[i + 2]) && /^\d+$/.test(lines[i + 3])) {
      out.push({ from: Number(lines[i]), to: Number(lines[i + 1]), port: Number(lines[i + 3]) });
      i += 3;
    }
  }
  return out;
}

async function startProxy(entry: string[]): Promise<{ pid: number; stop(): Promise<void>; logs(): string }> {
  const dir = mkdtempSync(join(tmpdir(), "predixy-failover-"));
  const cfg = join(dir, "predixy.toml");
  writeFileSync(cfg, `[server]\nbind = "127.0.0.1"\nport = ${opt.port}\n[cluster]\nentry_points = ${JSON.stringify(entry)}\n${values["proxy-toml"]!.replaceAll("\\n", "\n")}\n[log]\nlevel = "info"\n`);
  const built = await Bun.file(join(ROOT, "dist/predixy")).exists();
  const cmd = built ? [join(ROOT, "dist/predixy"), "-c", cfg] : [process.execPath, join(ROOT, "src/main.ts"), "-c", cfg];
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe", cwd: ROOT });
  let logs = "";
  void (async () => { for await (const c of proc.stderr) logs += new TextDecoder().decode(c); })();
  for (let i = 0; i < 300 && !(await answersPing(opt.port)); i++) await Bun.sleep(100);
  return {
    pid: proc.pid, logs: () => logs,
    async stop() { proc.kill("SIGTERM"); const k = setTimeout(() => proc.kill("SIGKILL"), 15_000); await proc.exited; clearTimeout(k); },
  };
}

function maxOf(xs: number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  return m;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

// ---- the run ----

let cluster: ClusterHandle | null = null;
if (!values["reuse-cluster"]) {
  cluster = await startCluster({
    basePort: opt.basePort, masters: opt.masters, replicasPerMaster: opt.replicas,
    dir: values["cluster-dir"]!, nodeTimeoutMs: opt.nodeTimeout,
  });
}
const entry = Array.from({ length: 3 }, (_, i) => `127.0.0.1:${opt.basePort + i}`);
const proxy = await startProxy(entry);
const before = await clusterSlots(opt.basePort);
// The victim: the master of the first range (its replica takes over).
const victimPort = before[0].port;
victimSlots = new Set(before.filter((r) => r.port === victimPort).flatMap((r) => Array.from({ length: r.to - r.from + 1 }, (_, i) => r.from + i)));
const victimPid = Number(/process_id:(\d+)/.exec(await redisCli(victimPort, ["info", "server"]))![1]);

const clients = Array.from({ length: opt.clients }, (_, i) => new LoadClient(i, opt.keys, sink, opt.maxOutstanding));
await Promise.all(clients.map((c) => c.connect(opt.port)));
let rssPeakKB = 0;
const rssTimer = setInterval(() => { rssPeakKB = Math.max(rssPeakKB, statusKB(proxy.pid, "VmRSS") || 0); }, 100);

t0 = performance.now();
let faultAt = NaN, healedAt = NaN;
const perClient = opt.rate / opt.clients;
let due = 0;
const tick = setInterval(() => {
  const now = performance.now();
  const want = Math.floor(((now - t0) / 1000) * perClient);
  const n = want - due;
  due = want;
  if (n > 0) for (const c of clients) c.send(n, now);
}, 5);

async function fault(): Promise<void> {
  await Bun.sleep(opt.faultAt * 1000);
  faultAt = performance.now();
  console.error(`[${secs(faultAt)}] fault: ${opt.fault} master 127.0.0.1:${victimPort} (pid ${victimPid})`);
  const other = (await clusterSlots(opt.basePort)).find((r) => r.port !== victimPort)!.port;
  if (opt.fault === "kill") process.kill(victimPid, "SIGKILL");
  else if (opt.fault === "stop") {
    process.kill(victimPid, "SIGSTOP");
    setTimeout(() => process.kill(victimPid, "SIGCONT"), opt.stopSeconds * 1000);
  } else if (opt.fault === "failover") {
    const replica = (await redisCli(victimPort, ["cluster", "replicas", (await redisCli(victimPort, ["cluster", "myid"]))])).split(" ")[1]?.split(":")[1]?.split("@")[0];
    await redisCli(Number(replica), ["cluster", "failover"]);
  } else return;
  // Healed: some other node reports the victim's first slot on another master.
  for (;;) {
    const owner = await clusterSlots(other).then((rs) => rs.find((r) => r.from <= before[0].from && before[0].from <= r.to)?.port, () => undefined);
    if (owner !== undefined && owner !== victimPort) break;
    if (opt.fault === "stop" && performance.now() - faultAt > opt.stopSeconds * 1000 + 500) break;
    await Bun.sleep(50);
  }
  healedAt = performance.now();
  console.error(`[${secs(healedAt)}] healed after ${((healedAt - faultAt) / 1000).toFixed(2)} s`);
}
const faulted = fault();
await Bun.sleep(opt.duration * 1000);
clearInterval(tick);
await faulted;
// Every command answered (bounded), then every key read back and checked.
for (let i = 0; i < 300 && clients.some((c) => c.outstanding > 0 && !c.closed); i++) await Bun.sleep(100);
recording = false;
const answeredInLoad = clients.reduce((n, c) => n + c.answered, 0);
for (const c of clients) c.verifyAll(performance.now());
for (let i = 0; i < 600 && clients.some((c) => c.outstanding > 0 && !c.closed); i++) await Bun.sleep(100);
clearInterval(rssTimer);
const hwmKB = statusKB(proxy.pid, "VmHWM");

// ---- report ----

function secs(t: number): string {
  return ((t - t0) / 1000).toFixed(1);
}
const sent = clients.reduce((n, c) => n + c.sent, 0), answered = clients.reduce((n, c) => n + c.answered, 0);
const unanswered = clients.reduce((n, c) => n + c.outstanding, 0), skipped = clients.reduce((n, c) => n + c.skipped, 0);
const pause = Math.max(...clients.map((c) => c.longestPause));
const all = windows.flat();
const during = Number.isNaN(faultAt) ? [] : windows.slice(Math.floor((faultAt - t0) / WINDOW_MS), Math.ceil(((Number.isNaN(healedAt) ? faultAt : healedAt) - t0) / WINDOW_MS) + 2).flat();
console.log(`\n## failover-load: ${opt.fault} at ${opt.faultAt} s, ${opt.rate} commands/s over ${opt.clients} clients, ${opt.masters} x ${opt.replicas} cluster (node timeout ${opt.nodeTimeout} ms)\n`);
console.log(`- commands sent ${sent}, answered ${answeredInLoad}, unanswered at the end ${unanswered}, sends skipped (client backlog) ${skipped}; keys read back and checked ${answered - answeredInLoad}`);
console.log(`- failover: ${Number.isNaN(healedAt) ? "n/a" : `${((healedAt - faultAt) / 1000).toFixed(2)} s from the fault until another master served the victim's slots`}`);
console.log(`- longest client pause (commands outstanding, no reply): ${(pause / 1000).toFixed(2)} s`);
console.log(`- latency ms, whole run: p50 ${pct(all, 0.5).toFixed(2)} p99 ${pct(all, 0.99).toFixed(2)} max ${maxOf(all).toFixed(0)}`);
if (during.length) console.log(`- latency ms, fault to heal + 1 s: p50 ${pct(during, 0.5).toFixed(2)} p99 ${pct(during, 0.99).toFixed(2)} max ${maxOf(during).toFixed(0)}`);
console.log(`- predixy RSS peak: ${(rssPeakKB / 1024).toFixed(0)} MB sampled, VmHWM ${(hwmKB / 1024).toFixed(0)} MB`);
console.log(`- wrong replies (lost writes, stale reads, wrong counters): ${wrong.length}`);
for (const w of wrong.slice(0, 10)) console.log(`  - ${w}`);
console.log(`- errors by kind (on the victim's slots / elsewhere):`);
if (errors.size === 0) console.log("  - none");
for (const [kind, e] of errors) console.log(`  - ${e.count} × ${kind} (${e.onVictim} / ${e.count - e.onVictim}; ${Object.entries(e.byOp).map(([o, n]) => `${o} ${n}`).join(", ")}); e.g. "${e.example}"`);
console.log(`\nper second: t p50 p99 max count`);
windows.forEach((w, i) => { if (w) console.log(`${i} ${pct(w, 0.5).toFixed(2)} ${pct(w, 0.99).toFixed(2)} ${maxOf(w).toFixed(0)} ${w.length}`); });

for (const c of clients) c.close();
await proxy.stop();
if (process.env.FAILOVER_LOGS) console.error(proxy.logs());
if (cluster) await cluster.stop();
process.exit(wrong.length > 0 ? 1 : 0);
