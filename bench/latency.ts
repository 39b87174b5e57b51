// Open-loop latency benchmark (`make bench-latency`): a fixed command rate, latency from each command's scheduled send.
//
// Targets (the cluster itself through a cluster-aware client, predixy, any other endpoint) take
// turns, run after run; medians over the repeats are reported with each proxy's CPU and RSS.
// It measures, it does not judge: exit 0 unless something failed to run.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import calculateSlot from "cluster-key-slot";
import { answersPing, redisCli, startCluster } from "../test/helpers/redis-cluster.ts";
import type { GenConfig, GenResult } from "./latency-gen.ts";
import { printReport, type RunRecord } from "./latency-report.ts";
import { addSparse, newHistogram, percentiles } from "../src/metrics/histogram.ts";
import { summarize } from "./open-loop.ts";
import { cpuStallUs, hostBusyPct, hostStealPct, hostTicks, ProcSampler, statusKB } from "./proc-stats.ts";
import { canBind, drainTail, listenerPid, Owned, stopGently } from "./procs.ts";
import { countSyscalls, type SyscallCounts } from "./syscalls.ts";

const ROOT = resolve(import.meta.dir, "..");
const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 60_000;
/** Past warm-up + duration + drain, a run's generators are killed and the run fails. */
const RUN_GRACE_MS = 30_000;
const GO_DELAY_MS = 300;

const USAGE = `usage: bun bench/latency.ts [options]

Open loop: N clients, each at a random phase, send on a fixed schedule whatever the replies do;
a command's latency counts from when it was due, so a stall shows in every command it delays.

  --rate R[,R...]         total commands/s, one cell per rate (default 40000)
  --pipeline K[,K...]     commands per client tick, sent in one write (default 1,16)
  --clients N             clients (default 100); with the direct target each holds one
                          connection per master, through a proxy one connection
  --duration S            measured seconds per run (default 20)
  --warmup S              seconds sent before each run's window, not measured (default 3)
  --repeat R              runs per (rate, pipeline, target); targets take turns, medians are
                          reported (default 3)
  --quick                 smoke test: --repeat 1 --duration 5 --warmup 1
  --set-ratio F           share of SETs, the rest GETs (default 0.2)
  --value-size B          SET value bytes (default 64, as prefilled)
  --keyspace K            keys key:000000000000 .. K-1, prefilled (default 1000000)
  --late-ms MS            a send later than this behind schedule counts as late (default 1)
  --drain S               after the window, wait this long for outstanding replies; those still
                          missing count as missed (default 2)
  --max-in-flight N       per connection; a command due beyond it is dropped, counted missed
                          (default 10000)
  --generators G          generator processes sharing the clients (default 1)
  --pacer auto|on|off     wake each generator on time with a worker thread sleeping on a futex
                          (at most every 200 µs), rather than relying on a 1 ms timer and the
                          replies; it costs CPU. auto: on when a generator has at most 10,000
                          ticks/s (pipelined runs), where the 1 ms timer would make sends late
                          (default auto)
  --seed S                phases and keys (default 1)

  --target NAME=HOST:PORT another endpoint to measure, e.g. another proxy (repeatable)
  --pid NAME=PID          its pid for CPU/RSS (default: looked up with ss; none if not visible)
  --no-direct             skip the direct-to-cluster target
  --no-predixy            do not start predixy
  --exe PATH              predixy executable (default dist/predixy, else bun src/main.ts)
  --port P                predixy's port (default 7777)
  --base-port P           cluster on P.. (default 7000)   --masters M (9)   --replicas R (1)
  --cluster-dir DIR       node dirs and logs (default .cluster-bench)
  --reuse-cluster         use the cluster answering on --base-port, and leave it up
  --keep-cluster          do not stop a cluster this run started
  --no-prefill            do not write the keyspace first (it must be there: GETs must hit)
  --syscalls              also count each proxy's read, write and epoll_wait calls per command over
                          the window (perf stat on the syscall tracepoints; needs perf and root)
  --json FILE             also write every run, machine-readably
  --markdown              print the summary as Markdown, for bench/RESULTS.md
`;

export interface Options {
  rates: number[]; pipelines: number[]; clients: number; durationS: number; warmupS: number; repeat: number;
  setRatio: number; valueSize: number; keyspace: number; lateMs: number; drainS: number; maxInFlight: number;
  generators: number; pacer: "auto" | "on" | "off"; seed: number;
  targets: { name: string; host: string; port: number }[]; pids: Map<string, number>;
  direct: boolean; predixy: boolean; exe: string | null; port: number;
  basePort: number; masters: number; replicas: number; clusterDir: string; reuseCluster: boolean; keepCluster: boolean;
  prefill: boolean; syscalls: boolean; json: string | null; markdown: boolean;
}

interface Target { name: string; host: string; port: number; cluster: boolean; pid: number | null }

/** Something failed to run: the message is the report; the process exits 1. */
class BenchError extends Error {}

function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      rate: { type: "string", default: "40000" }, pipeline: { type: "string", default: "1,16" },
      clients: { type: "string", default: "100" }, duration: { type: "string", default: "20" },
      warmup: { type: "string", default: "3" }, repeat: { type: "string", default: "3" }, quick: { type: "boolean", default: false },
      "set-ratio": { type: "string", default: "0.2" }, "value-size": { type: "string", default: "64" },
      keyspace: { type: "string", default: "1000000" }, "late-ms": { type: "string", default: "1" },
      drain: { type: "string", default: "2" }, "max-in-flight": { type: "string", default: "10000" },
      generators: { type: "string", default: "1" }, pacer: { type: "string", default: "auto" }, seed: { type: "string", default: "1" },
      target: { type: "string", multiple: true, default: [] }, pid: { type: "string", multiple: true, default: [] },
      "no-direct": { type: "boolean", default: false }, "no-predixy": { type: "boolean", default: false },
      exe: { type: "string" }, port: { type: "string", default: "7777" },
      "base-port": { type: "string", default: "7000" }, masters: { type: "string", default: "9" }, replicas: { type: "string", default: "1" },
      "cluster-dir": { type: "string", default: ".cluster-bench" }, "reuse-cluster": { type: "boolean", default: false },
      "keep-cluster": { type: "boolean", default: false }, "no-prefill": { type: "boolean", default: false },
      syscalls: { type: "boolean", default: false }, json: { type: "string" }, markdown: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false },
    },
  });
  if (v.help) { process.stdout.write(USAGE); process.exit(0); }
  const num = (name: string, s: string, min: number, max = Infinity, integer = true): number => {
    const n = Number(s);
    if (s.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      throw new BenchError(`--${name}: expected ${integer ? "an integer" : "a number"} in [${min}, ${max}], got "${s}"`);
    }
    return n;
  };
  const list = (name: string, s: string) => s.split(",").map((x) => num(name, x, 1));
  const named = (flag: string, s: string): [string, string] => {
    const i = s.indexOf("=");
    if (i < 1) throw new BenchError(`--${flag}: expected NAME=VALUE, got "${s}"`);
    return [s.slice(0, i), s.slice(i + 1)];
  };
  const targets = v.target!.map((s) => {
    const [name, addr] = named("target", s);
    const m = /^(.+):(\d+)$/.exec(addr);
    if (!m) throw new BenchError(`--target ${name}: expected HOST:PORT, got "${addr}"`);
    return { name, host: m[1], port: num("target", m[2], 1, 65535) };
  });
  const pids = new Map(v.pid!.map((s) => { const [name, pid] = named("pid", s); return [name, num("pid", pid, 1)]; }));
  const o: Options = {
    rates: list("rate", v.rate!), pipelines: list("pipeline", v.pipeline!), clients: num("clients", v.clients!, 1),
    durationS: v.quick ? 5 : num("duration", v.duration!, 0.1, 3600, false), warmupS: v.quick ? 1 : num("warmup", v.warmup!, 0, 600, false),
    repeat: v.quick ? 1 : num("repeat", v.repeat!, 1), setRatio: num("set-ratio", v["set-ratio"]!, 0, 1, false),
    valueSize: num("value-size", v["value-size"]!, 1), keyspace: num("keyspace", v.keyspace!, 1, 1e12 - 1),
    lateMs: num("late-ms", v["late-ms"]!, 0, Infinity, false), drainS: num("drain", v.drain!, 0, 600, false),
    maxInFlight: num("max-in-flight", v["max-in-flight"]!, 1), generators: num("generators", v.generators!, 1),
    pacer: pacerMode(v.pacer!), seed: num("seed", v.seed!, 0, 2 ** 32 - 1),
    targets, pids, direct: !v["no-direct"], predixy: !v["no-predixy"], exe: v.exe ? resolve(v.exe) : null,
    port: num("port", v.port!, 1, 65535), basePort: num("base-port", v["base-port"]!, 1, 55535),
    masters: num("masters", v.masters!, 3), replicas: num("replicas", v.replicas!, 0),
    clusterDir: resolve(ROOT, v["cluster-dir"]!), reuseCluster: v["reuse-cluster"]!, keepCluster: v["keep-cluster"]!,
    prefill: !v["no-prefill"], syscalls: v.syscalls!, json: v.json ? resolve(v.json) : null, markdown: v.markdown!,
  };
  if (o.generators > o.clients) throw new BenchError(`--generators (${o.generators}) cannot exceed --clients (${o.clients})`);
  const names = [...(o.direct ? ["direct"] : []), ...(o.predixy ? ["predixy"] : []), ...targets.map((t) => t.name)];
  if (new Set(names).size !== names.length) throw new BenchError(`target names must differ: ${names.join(", ")}`);
  if (names.length === 0) throw new BenchError("no targets left");
  for (const n of pids.keys()) if (!names.includes(n)) throw new BenchError(`--pid ${n}: no such target`);
  return o;
}

function pacerMode(s: string): Options["pacer"] {
  if (s === "auto" || s === "on" || s === "off") return s;
  throw new BenchError(`--pacer: expected auto, on or off, got "${s}"`);
}

/** --pacer auto: below this many ticks/s per generator, replies and a 1 ms timer leave sends late. */
const PACER_AUTO_TICKS = 10_000;

// ---- processes we own: tracked so that cleanup, on error or Ctrl-C, leaves nothing behind ----

const owned = new Owned(log);

function log(msg: string): void {
  process.stderr.write(`[latency] ${msg}\n`);
}

// ---- cluster and prefill ----

/** Master ports and their slot ranges, from CLUSTER NODES. */
async function clusterMasters(port: number): Promise<{ port: number; ranges: [number, number][] }[]> {
  const masters = [];
  for (const line of (await redisCli(port, ["cluster", "nodes"])).split("\n")) {
    const f = line.trim().split(" ");
    if (f.length < 9 || !f[2].split(",").includes("master") || f[2].includes("fail")) continue;
    const addr = f[1].split("@")[0];
    const ranges = f.slice(8).filter((s) => !s.startsWith("[")).map((s) => {
      const [lo, hi] = s.split("-").map(Number);
      return [lo, hi ?? lo] as [number, number];
    });
    masters.push({ port: Number(addr.slice(addr.lastIndexOf(":") + 1)), ranges });
  }
  return masters.sort((a, b) => a.port - b.port);
}

async function clusterUp(o: Options): Promise<string[]> {
  const ok = await redisCli(o.basePort, ["cluster", "info"]).then((s) => s.includes("cluster_state:ok"), () => false);
  if (o.reuseCluster && ok) {
    log(`reusing the cluster on ${HOST}:${o.basePort}`);
    return (await clusterMasters(o.basePort)).map((m) => `${HOST}:${m.port}`);
  }
  const total = o.masters * (1 + o.replicas);
  log(`starting ${o.masters} masters x ${o.replicas} replica(s) on ${o.basePort}-${o.basePort + total - 1} in ${o.clusterDir}`);
  const handle = await startCluster({ basePort: o.basePort, masters: o.masters, replicasPerMaster: o.replicas, dir: o.clusterDir, host: HOST })
    .catch((e: Error) => {
      if (/in use/.test(e.message)) e.message += `\n(a cluster already up there? --reuse-cluster; else --base-port)`;
      throw e;
    });
  if (!o.keepCluster) owned.cleanups.push(() => { log("stopping the cluster"); return handle.stop(); });
  return handle.entryPoints;
}

/** SETs key:000000000000 .. keyspace-1 to "x" * value-size on their masters (redis-cli --pipe), then waits for the replicas. */
async function prefill(o: Options, tmp: string): Promise<void> {
  const t0 = performance.now();
  const masters = await clusterMasters(o.basePort);
  const owner = new Int16Array(16384).fill(-1);
  masters.forEach((m, i) => { for (const [lo, hi] of m.ranges) owner.fill(i, lo, hi + 1); });
  if (owner.includes(-1)) throw new BenchError("prefill: some slots have no master");
  const files = masters.map((m) => join(tmp, `prefill-${m.port}.resp`));
  const sinks = files.map((f) => Bun.file(f).writer({ highWaterMark: 1 << 20 }));
  const tail = `\r\n$${o.valueSize}\r\n${"x".repeat(o.valueSize)}\r\n`;
  for (let i = 0; i < o.keyspace; i++) {
    const key = "key:" + String(i).padStart(12, "0");
    sinks[owner[calculateSlot(key)]].write(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}${tail}`);
  }
  await Promise.all(sinks.map((s) => s.end()));
  await Promise.all(masters.map(async (m, i) => {
    const p = Bun.spawn(["redis-cli", "-h", HOST, "-p", String(m.port), "--pipe"], {
      stdin: Bun.file(files[i]), stdout: "pipe", stderr: "pipe", timeout: 300_000, killSignal: "SIGKILL",
    });
    owned.live.add(p);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    owned.live.delete(p);
    if (code !== 0 || !/errors: 0,/.test(out)) throw new BenchError(`prefill of ${m.port} failed (exit ${code}): ${out}${err}`);
  }));
  for (const f of files) rmSync(f, { force: true });
  // Replicas still catching up would slow whichever runs come first.
  for (const deadline = Date.now() + 120_000; ;) {
    const infos = await Promise.all(masters.map((m) => redisCli(m.port, ["info", "replication"])));
    const behind = infos.some((s) => {
      const offset = Number(s.match(/^master_repl_offset:(\d+)/m)?.[1] ?? 0);
      return [...s.matchAll(/^slave\d+:.*offset=(\d+)/gm)].some((r) => Number(r[1]) < offset);
    });
    if (!behind) break;
    if (Date.now() > deadline) throw new BenchError("replicas still catching up after 120 s");
    await Bun.sleep(250);
  }
  log(`prefilled ${o.keyspace} keys in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
}

// ---- predixy ----

/** The predixy this run started, with its output's tail for a post-mortem. */
let predixyProc: { proc: Subprocess; out: { text: string } } | null = null;

async function predixyUp(o: Options, entryPoints: string[], tmp: string): Promise<Target> {
  const config = join(tmp, "predixy.toml");
  writeFileSync(config, [
    "[server]", `bind = "${HOST}"`, `port = ${o.port}`, "",
    "[cluster]", `entry_points = ${JSON.stringify(entryPoints)}`, "",
    "[log]", `level = "warning"`, "", "[admin]", "port = 0", "",
  ].join("\n"));
  const exe = o.exe ?? join(ROOT, "dist/predixy");
  // Without a build, Bun runs main.ts in its own process: proc.pid is still the one to sample.
  const argv = (await Bun.file(exe).exists()) ? [exe, "-c", config] : [process.execPath, join(ROOT, "src/main.ts"), "-c", config];
  log(`starting predixy: ${argv.join(" ")}`);
  const proc = Bun.spawn(argv, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const out = { text: "" };
  drainTail(proc.stdout, out);
  drainTail(proc.stderr, out);
  owned.cleanups.push(() => stopGently(proc));
  predixyProc = { proc, out };
  for (const deadline = Date.now() + 30_000; !(await answersPing(o.port, { host: HOST }));) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new BenchError("predixy exited during start-up");
    if (Date.now() > deadline) throw new BenchError("predixy did not answer PING within 30 s");
    await Bun.sleep(50);
  }
  return { name: "predixy", host: HOST, port: o.port, cluster: false, pid: proc.pid };
}

// ---- one run: generators on a shared schedule, the target's CPU and RSS sampled over the window ----

/** Reads a child's stdout line by line. */
function lines(stream: ReadableStream<Uint8Array>): () => Promise<string | null> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  return async () => {
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl >= 0) { const l = buf.slice(0, nl); buf = buf.slice(nl + 1); return l; }
      const { value, done } = await reader.read();
      if (done) return null;
      buf += dec.decode(value, { stream: true });
    }
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new BenchError(`${what}: no answer within ${ms / 1000} s`)), ms); })])
    .finally(() => clearTimeout(timer));
}

async function runOnce(o: Options, t: Target, rate: number, pipeline: number, rep: number): Promise<RunRecord> {
  const pacer = o.pacer === "on" || (o.pacer === "auto" && rate / pipeline / o.generators <= PACER_AUTO_TICKS);
  const gens = Array.from({ length: o.generators }, (_, g) => {
    const first = Math.floor((g * o.clients) / o.generators), next = Math.floor(((g + 1) * o.clients) / o.generators);
    const cfg: GenConfig = {
      host: t.host, port: t.port, cluster: t.cluster, clients: o.clients, first, count: next - first, rate, pipeline, seed: o.seed + rep,
      warmupMs: o.warmupS * 1000, durationMs: o.durationS * 1000, drainMs: o.drainS * 1000, keyspace: o.keyspace,
      valueSize: o.valueSize, setRatio: o.setRatio, lateMs: o.lateMs, maxInFlight: o.maxInFlight, pacer,
    };
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "latency-gen.ts"), JSON.stringify(cfg)], {
      cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe",
    });
    owned.live.add(proc);
    const err = { text: "" };
    drainTail(proc.stderr, err);
    return { proc, next: lines(proc.stdout), err };
  });
  const failed = (g: (typeof gens)[number], what: string) =>
    new BenchError(`generator for ${t.name}: ${what} (exit ${g.proc.exitCode ?? "-"}) ${g.err.text.trim()}`);
  try {
    for (const g of gens) {
      const l = await withTimeout(g.next(), READY_TIMEOUT_MS, `generator for ${t.name} connecting`);
      if (!l?.startsWith("ready ")) throw failed(g, "did not get ready");
    }
    const epoch = Date.now() + GO_DELAY_MS;
    for (const g of gens) { g.proc.stdin.write(`go ${epoch}\n`); await g.proc.stdin.flush(); }
    // The target's and the generators' CPU, and the host's, over the window only.
    const windowStart = epoch + o.warmupS * 1000;
    await Bun.sleep(windowStart - Date.now());
    const sampler = t.pid ? new ProcSampler(t.pid) : null;
    const counting = t.pid && o.syscalls ? countSyscalls(t.pid) : null;
    const genSamplers = gens.map((g) => new ProcSampler(g.proc.pid));
    const host0 = hostTicks(), stall0 = cpuStallUs(), t0 = performance.now();
    await Bun.sleep(windowStart + o.durationS * 1000 - Date.now());
    const stall = (cpuStallUs() - stall0) / ((performance.now() - t0) * 10);
    const sampled = sampler?.stop() ?? { cpuPct: null, rssMaxMB: null };
    const genCpu = genSamplers.map((s) => s.stop().cpuPct ?? 0).reduce((a, b) => a + b, 0);
    const hostCpuPct = hostBusyPct(host0), stealPct = hostStealPct(host0);
    const sys = counting ? await counting.stop() : null;
    const results = await Promise.all(gens.map(async (g) => {
      const l = await withTimeout(g.next(), o.drainS * 1000 + RUN_GRACE_MS, `generator for ${t.name} finishing`);
      if (!l?.startsWith("result ")) throw failed(g, "gave no result");
      return JSON.parse(l.slice(7)) as GenResult;
    }));
    if (predixyProc && t.name === "predixy" && predixyProc.proc.exitCode !== null) throw new BenchError("predixy died during the run");
    const r = record(o, t, rate, pipeline, rep, results, sampled, genCpu, hostCpuPct);
    const perCmd = sys && r.achieved > 0
      ? Object.fromEntries(Object.entries(sys).map(([k, n]) => [k, n / (r.achieved * o.durationS)])) as SyscallCounts : null;
    return { ...r, pacer, cpuStallPct: Number.isFinite(stall) ? stall : null, stealPct, syscallsPerCmd: perCmd };
  } finally {
    for (const g of gens) { g.proc.kill("SIGKILL"); owned.live.delete(g.proc); }
  }
}

function record(
  o: Options, t: Target, rate: number, pipeline: number, rep: number, rs: GenResult[],
  sampled: { cpuPct: number | null; rssMaxMB: number | null }, genCpuPct: number, hostCpuPct: number | null,
): Omit<RunRecord, "pacer" | "cpuStallPct" | "stealPct" | "syscallsPerCmd"> {
  const lat = newHistogram(), svc = newHistogram(), late = newHistogram();
  const sum = (f: (r: GenResult) => number) => rs.reduce((a, r) => a + f(r), 0);
  const dense = (s: GenResult["latency"]) => ({ idx: Uint16Array.from(s.idx), n: Float64Array.from(s.n) });
  for (const r of rs) { addSparse(lat, dense(r.latency)); addSparse(svc, dense(r.service)); addSparse(late, dense(r.lateness)); }
  const replies = sum((r) => r.repliesInWindow);
  const achieved = replies / o.durationS;
  const due = sum((r) => r.due), answered = sum((r) => r.answered);
  const [s50, s99] = percentiles(svc, [50, 99]).map((us) => us / 1000);
  const [l50, l99] = percentiles(late, [50, 99]).map((us) => us / 1000);
  return {
    target: t.name, rate, pipeline, rep, latency: summarize(lat, Math.max(...rs.map((r) => r.maxLatencyUs))),
    serviceP50: s50, serviceP99: s99, latenessP50: l50, latenessP99: l99, latenessMax: Math.max(...rs.map((r) => r.maxLatenessUs)) / 1000,
    achieved, due, answered, missed: due - answered, dropped: sum((r) => r.dropped), unsent: sum((r) => r.unsent), late: sum((r) => r.late),
    errors: sum((r) => r.errors), nulls: sum((r) => r.nulls), connections: sum((r) => r.connections),
    cpuPct: sampled.cpuPct, usPerCmd: sampled.cpuPct === null || replies === 0 ? null : (sampled.cpuPct / 100) * o.durationS * 1e6 / replies,
    rssMaxMB: sampled.rssMaxMB, genCpuPct, hostCpuPct,
    connErrors: rs.flatMap((r) => r.connErrors).slice(0, 5), firstError: rs.find((r) => r.firstError)?.firstError ?? null,
  };
}

// ---- the plan: every repeat runs every cell; within a cell the targets take turns going first ----

async function benchmark(o: Options, targets: Target[]): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  const cells = o.rates.flatMap((rate) => o.pipelines.map((pipeline) => ({ rate, pipeline })));
  for (let rep = 0; rep < o.repeat; rep++) {
    for (const { rate, pipeline } of cells) {
      const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
      for (const t of order) {
        const r = await runOnce(o, t, rate, pipeline, rep);
        runs.push(r);
        const f = (x: number) => x.toFixed(2);
        log(`${rate}/s P${pipeline} ${t.name.padEnd(10)} ${rep + 1}/${o.repeat}: p50 ${f(r.latency.p50)} p99 ${f(r.latency.p99)} ` +
          `p99.9 ${f(r.latency.p999)} max ${f(r.latency.max)} ms, ${Math.round(r.achieved)}/s, late ${r.late}, missed ${r.missed}` +
          (r.cpuPct !== null ? `, CPU ${r.cpuPct.toFixed(0)}% ${r.usPerCmd!.toFixed(1)} µs/cmd, RSS ${r.rssMaxMB!.toFixed(0)} MB` : "") +
          (r.syscallsPerCmd ? `, per cmd ${f(r.syscallsPerCmd.reads)} reads ${f(r.syscallsPerCmd.writes)} writes ${f(r.syscallsPerCmd.polls)} polls` : "") +
          `, gen CPU ${r.genCpuPct.toFixed(0)}% lateness p99 ${f(r.latenessP99)} ms` +
          (r.hostCpuPct !== null ? `, host ${r.hostCpuPct.toFixed(0)}%` : "") +
          (r.cpuStallPct !== null ? `, CPU stall ${r.cpuStallPct.toFixed(0)}%` : "") +
          (r.stealPct !== null ? `, steal ${r.stealPct.toFixed(0)}%` : "") +
          (r.errors ? `, ${r.errors} errors (${r.firstError})` : "") + (r.connErrors.length ? `, lost: ${r.connErrors.join("; ")}` : ""));
      }
    }
  }
  return runs;
}

async function main(): Promise<number> {
  const t0 = performance.now();
  let o: Options;
  try {
    o = parseOptions(Bun.argv.slice(2));
  } catch (e) {
    log(`${(e as Error).message} (see --help)`);
    return 2;
  }
  try {
    if (o.predixy && !canBind(o.port)) throw new BenchError(`predixy's port ${o.port} is in use (--port, or --no-predixy --target predixy=${HOST}:${o.port})`);
    const tmp = mkdtempSync(join(tmpdir(), "predixy-latency-"));
    owned.cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
    const entryPoints = await clusterUp(o);
    if (o.prefill) await prefill(o, tmp);
    const targets: Target[] = [];
    if (o.direct) targets.push({ name: "direct", host: HOST, port: o.basePort, cluster: true, pid: null });
    if (o.predixy) targets.push(await predixyUp(o, entryPoints, tmp));
    for (const x of o.targets) {
      if (!(await answersPing(x.port, { host: x.host }))) throw new BenchError(`--target ${x.name}: nothing answers PING on ${x.host}:${x.port}`);
      const pid = o.pids.get(x.name) ?? (await listenerPid(x.port));
      log(`target ${x.name} on ${x.host}:${x.port}` + (pid ? ` (pid ${pid})` : " (pid unknown: no CPU/RSS)"));
      targets.push({ ...x, cluster: false, pid });
    }
    const runs = await benchmark(o, targets);
    const hwm = new Map(targets.filter((t) => t.pid).map((t) => [t.name, statusKB(t.pid!, "VmHWM") / 1024]));
    printReport(o, runs, targets.map((t) => t.name), hwm, (performance.now() - t0) / 1000);
    if (o.json) {
      writeFileSync(o.json, JSON.stringify({ options: { ...o, pids: Object.fromEntries(o.pids) }, runs }, null, 2));
      log(`wrote ${o.json}`);
    }
    return 0;
  } catch (e) {
    if (owned.interrupted) return 130;
    const err = e as Error;
    log(`FAILED: ${err instanceof BenchError || err?.constructor === Error ? err.message : (err?.stack ?? err)}`);
    const out = predixyProc?.out.text.trimEnd();
    if (out) log(`predixy output (tail):\n${out.split("\n").slice(-30).join("\n")}`);
    return 1;
  } finally {
    await owned.cleanup();
    log(`done in ${((performance.now() - t0) / 1000).toFixed(0)}s`);
  }
}

process.exit(await main());
