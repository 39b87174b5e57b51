// End-to-end benchmark (`make bench`): redis-benchmark through predixy vs. straight at the cluster.
//
// Proxy and direct runs are interleaved and repeated; medians are reported, with predixy's CPU and
// RSS sampled from /proc. It measures, it does not judge: exit 0 unless something failed to run.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import calculateSlot from "cluster-key-slot";
import { answersPing, redisCli as cliPlain, startCluster, type ClusterHandle, type ClusterTls } from "../test/helpers/redis-cluster.ts";
import { makeTestPki } from "../test/helpers/tls-certs.ts";
import { fmtInt, maxOf, report, secs } from "./e2e-report.ts";
import { hostBusyPct, hostStealPct, hostTicks, ProcSampler, statusKB } from "./proc-stats.ts";
import { canBind, drainTail, listenerPid, Owned, stopGently } from "./procs.ts";

const ROOT = resolve(import.meta.dir, "..");
const HOST = "127.0.0.1";
const PROXY_START_MS = 30_000;

const USAGE = `usage: bun bench/e2e.ts [options]

  --pipelines 1,16        pipeline depths (-P)
  --tests set,get,mset,mget  tests, run in this order: redis-benchmark's -t tests, and mget (MGET of
                          10 keys; split across slots through the proxy, one hash tag direct)
  --requests N[,N...]     requests per run (-n), one for all depths or one per depth
                          (default 200000 x min(depth, 10): 200000 at P1, 2000000 at P16)
  --seconds S             instead: size -n per depth, test and leg so a run lasts about
                          S seconds, from that warm-up's rate
  --repeat R              runs per (depth, test, leg); medians are reported (default 3)
  --clients C             -c (default 100)      --keyspace K   -r (default 1000000)
  --data-size D           -d (default 64)       --extra-args "..."  more redis-benchmark flags
  --run-timeout S         kill a redis-benchmark run after S seconds, and fail (default 120)
  --quick                 smoke test: --repeat 1 and a tenth of the default requests
  --base-port P           cluster on P.. (default 7000)  --masters M (9)  --replicas R (1)
  --cluster-dir DIR       node dirs and logs (default .cluster-bench)
  --reuse-cluster         use the cluster already answering on --base-port, and leave it up
  --keep-cluster          do not stop a cluster this run started
  --workers N             the proxy's performance.worker_threads (default 1); CPU and RSS are summed over its processes
  --no-prefill            skip writing key:000000000000.. into the cluster before the runs
  --port P                proxy port (default 7777)
  --proxy-cmd "CMD"       start this instead of dist/predixy (or bun src/main.ts); {config} and
                          {port} are substituted; run via sh -c "exec CMD"
  --proxy-port P          benchmark an already running proxy on P; nothing is started
  --proxy-pid PID         its pid, for CPU/RSS (default: looked up with ss)
  --ab-metrics            compare the proxy with its recording on (the "proxy" leg) and off (the
                          "direct" leg, then also through the proxy), switched by CONFIG SET
                          latency-tracking before each run: the cost of [metrics], interleaved
  --admin-port P          serve the proxy's admin HTTP on P and scrape /metrics once a second during
                          the runs, as Prometheus would (default: no admin server)
  --acl-user              the proxy leg runs as a user with key patterns (~key:* and two more,
                          +@all): the cost of the per-command ACL check (AUTH via --user/-a)
  --tls                   TLS everywhere: the cluster TLS-only (tls-port, tls-cluster, client
                          certificates), predixy with [tls] on --port and TLS to the nodes, and
                          redis-benchmark --tls on both legs (test CA in <cluster-dir>/pki)
  --json FILE             also write every run, machine-readably
  --markdown              print the summary as Markdown for bench/RESULTS.md
`;

export type Leg = "proxy" | "direct";

export interface Options {
  pipelines: number[]; tests: string[]; requests: number[] | null; seconds: number | null;
  repeat: number; clients: number; keyspace: number; dataSize: number; extraArgs: string[];
  runTimeoutS: number; quick: boolean; basePort: number; masters: number; replicas: number;
  clusterDir: string; reuseCluster: boolean; keepCluster: boolean; workers: number; prefill: boolean; port: number;
  proxyCmd: string | null; proxyPort: number | null; proxyPid: number | null;
  json: string | null; markdown: boolean; abMetrics: boolean; adminPort: number; aclUser: boolean; tls: boolean;
}

/** One redis-benchmark run, plus what the sampler saw of the proxy during it. */
export interface Run {
  n: number; rps: number; avgMs: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number;
  wallS: number; cpuPct: number | null; rssMaxMB: number | null; hitPct: number | null;
  /** Whole machine, all cores: near 100 means everything (cluster, client, proxy) shared saturated cores. */
  hostCpuPct: number | null;
  /** % of the host's CPU time the hypervisor took meanwhile (steal). */
  hostStealPct: number | null;
}

export interface Row {
  pipeline: number; test: string;
  commands: Record<Leg, string>;
  runs: Record<Leg, Run[]>;
}

/** Something failed to run: the message is the report; the process exits 1. */
class BenchError extends Error {}

// ---- options ----

function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      pipelines: { type: "string", default: "1,16" }, tests: { type: "string", default: "set,get,mset,mget" },
      requests: { type: "string" }, seconds: { type: "string" }, repeat: { type: "string", default: "3" },
      clients: { type: "string", default: "100" }, keyspace: { type: "string", default: "1000000" },
      "data-size": { type: "string", default: "64" }, "extra-args": { type: "string", default: "" },
      "run-timeout": { type: "string", default: "120" }, quick: { type: "boolean", default: false },
      "base-port": { type: "string", default: "7000" }, masters: { type: "string", default: "9" },
      replicas: { type: "string", default: "1" }, "cluster-dir": { type: "string", default: ".cluster-bench" },
      "reuse-cluster": { type: "boolean", default: false }, "keep-cluster": { type: "boolean", default: false },
      workers: { type: "string", default: "1" },
      "no-prefill": { type: "boolean", default: false }, port: { type: "string", default: "7777" },
      "proxy-cmd": { type: "string" }, "proxy-port": { type: "string" }, "proxy-pid": { type: "string" },
      json: { type: "string" }, markdown: { type: "boolean", default: false }, help: { type: "boolean", default: false },
      "ab-metrics": { type: "boolean", default: false }, "admin-port": { type: "string", default: "0" },
      "acl-user": { type: "boolean", default: false }, tls: { type: "boolean", default: false },
    },
  });
  if (v.help) { process.stdout.write(USAGE); process.exit(0); }
  const int = (name: string, s: string, min = 1): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new BenchError(`--${name}: expected an integer >= ${min}, got "${s}"`);
    return n;
  };
  const list = (name: string, s: string) => s.split(",").map((x) => int(name, x.trim()));
  const pipelines = list("pipelines", v.pipelines!);
  const requests = v.requests ? list("requests", v.requests) : null;
  if (requests && requests.length !== 1 && requests.length !== pipelines.length) {
    throw new BenchError(`--requests: give one count, or one per pipeline depth (${pipelines.length})`);
  }
  const seconds = v.seconds ? Number(v.seconds) : null;
  if (seconds !== null && !(seconds > 0)) throw new BenchError(`--seconds: expected a positive number`);
  return {
    pipelines, tests: v.tests!.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean),
    requests, seconds, repeat: v.quick ? 1 : int("repeat", v.repeat!), clients: int("clients", v.clients!),
    keyspace: int("keyspace", v.keyspace!), dataSize: int("data-size", v["data-size"]!),
    extraArgs: v["extra-args"]!.split(/\s+/).filter(Boolean), runTimeoutS: int("run-timeout", v["run-timeout"]!),
    quick: v.quick!, basePort: int("base-port", v["base-port"]!), masters: int("masters", v.masters!, 3),
    replicas: int("replicas", v.replicas!, 0), clusterDir: resolve(ROOT, v["cluster-dir"]!),
    reuseCluster: v["reuse-cluster"]!, keepCluster: v["keep-cluster"]!, workers: int("workers", v.workers!), prefill: !v["no-prefill"],
    port: int("port", v.port!), proxyCmd: v["proxy-cmd"] ?? null,
    proxyPort: v["proxy-port"] ? int("proxy-port", v["proxy-port"]) : null,
    proxyPid: v["proxy-pid"] ? int("proxy-pid", v["proxy-pid"]) : null,
    json: v.json ? resolve(v.json) : null, markdown: v.markdown!, abMetrics: v["ab-metrics"]!, adminPort: int("admin-port", v["admin-port"]!, 0),
    aclUser: v["acl-user"]!, tls: v.tls!,
  };
}

/** -n for a depth: --requests, else 200000 per depth up to 10 (P1 → 200k, P16 → 2M), /10 with --quick. */
function requestsFor(o: Options, depthIndex: number): number {
  if (o.requests) return o.requests[o.requests.length === 1 ? 0 : depthIndex];
  const n = 200_000 * Math.min(o.pipelines[depthIndex], 10);
  return o.quick ? n / 10 : n;
}

// ---- TLS (--tls): every redis-cli and redis-benchmark talks TLS with the test CA's client certificate ----

let clusterTls: ClusterTls | undefined;
let tlsFlags: string[] = [];

function redisCli(port: number, args: string[]): Promise<string> {
  return cliPlain(port, args, { tls: clusterTls });
}

async function setUpTls(o: Options): Promise<void> {
  const dir = join(o.clusterDir, "pki");
  const pki = existsSync(join(dir, "ca.crt"))
    ? { caCert: join(dir, "ca.crt"), clientCert: join(dir, "client.crt"), clientKey: join(dir, "client.key"), serverCert: join(dir, "server.crt"), serverKey: join(dir, "server.key") }
    : await makeTestPki(dir);
  clusterTls = { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert };
  tlsFlags = ["--tls", "--cacert", pki.caCert, "--cert", pki.clientCert, "--key", pki.clientKey];
}

// ---- processes we own: tracked so that cleanup, on error or Ctrl-C, leaves nothing behind ----

const owned = new Owned(log);

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

const ping = (port: number) => answersPing(port, { tls: clusterTls });

// ---- cluster ----

interface Master { port: number; ranges: [number, number][] }

/** Masters owning slots, from CLUSTER NODES on `port`. */
async function clusterMasters(port: number): Promise<Master[]> {
  const masters: Master[] = [];
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

async function clusterOk(port: number): Promise<boolean> {
  try { return (await redisCli(port, ["cluster", "info"])).includes("cluster_state:ok"); } catch { return false; }
}

/** Entry points of a usable cluster: the running one with --reuse-cluster, else a fresh one. */
async function clusterUp(o: Options): Promise<string[]> {
  if (o.reuseCluster && (await clusterOk(o.basePort))) {
    log(`reusing the cluster on ${HOST}:${o.basePort}`);
    return (await clusterMasters(o.basePort)).map((m) => `${HOST}:${m.port}`);
  }
  const total = o.masters * (1 + o.replicas);
  log(`starting ${o.masters} masters x ${o.replicas} replica(s) on ${o.basePort}-${o.basePort + total - 1} in ${o.clusterDir}`);
  const t0 = performance.now();
  const handle: ClusterHandle = await startCluster({
    basePort: o.basePort, masters: o.masters, replicasPerMaster: o.replicas, dir: o.clusterDir, host: HOST, tls: clusterTls,
  }).catch((e: Error) => {
    if (/in use/.test(e.message)) e.message += `\n(a cluster already up there? --reuse-cluster; else --base-port)`;
    throw e;
  });
  if (!o.keepCluster) owned.cleanups.push(() => { log("stopping the cluster"); return handle.stop(); });
  log(`cluster up in ${secs(t0)}s`);
  return handle.entryPoints;
}

/**
 * The hash tag redis-benchmark --cluster puts in keys sent to each master ("key:{06S}:…"):
 * found by letting it write one key per master and reading the key names back.
 */
async function directTags(masters: Master[]): Promise<string[]> {
  const probe = Bun.spawn(["redis-benchmark", ...tlsFlags, "--cluster", "-h", HOST, "-p", String(masters[0].port), "-c", String(masters.length),
    "-n", String(masters.length * 100), "-r", "1", "-t", "set", "-q"], { stdout: "ignore", stderr: "ignore" });
  await probe.exited;
  return Promise.all(masters.map(async (m) => {
    const out = await new Response(Bun.spawn(["redis-cli", ...tlsFlags, "-h", HOST, "-p", String(m.port), "--scan", "--pattern", "key:{*"]).stdout).text();
    // Two-character tags are padded with '}': "key:{8M}}:000000000000".
    const tag = /^key:(\{.+):\d{12}$/m.exec(out)?.[1];
    if (!tag) throw new BenchError(`prefill: no redis-benchmark key found on master ${m.port}`);
    return tag;
  }));
}

/**
 * Writes key:000000000000 .. key:<keyspace-1> (redis-benchmark's -r key names, value "x" * -d)
 * straight to the owning masters, so proxy GETs hit from the first run on; and the same key
 * space under each master's --cluster hash tag, so direct GETs hit too (a miss is a cheaper
 * reply: without this the direct GET leg would be flattered).
 */
async function prefill(o: Options, masters: Master[], tmp: string): Promise<void> {
  const t0 = performance.now();
  const owner = new Int16Array(16384).fill(-1);
  masters.forEach((m, i) => { for (const [lo, hi] of m.ranges) owner.fill(i, lo, hi + 1); });
  if (owner.includes(-1)) throw new BenchError("prefill: some slots have no master");
  const tags = await directTags(masters);
  const files = masters.map((m) => join(tmp, `prefill-${m.port}.resp`));
  const sinks = files.map((f) => Bun.file(f).writer({ highWaterMark: 1 << 20 }));
  const tail = `\r\n$${o.dataSize}\r\n${"x".repeat(o.dataSize)}\r\n`;
  for (let i = 0; i < o.keyspace; i++) {
    const n = String(i).padStart(12, "0");
    const key = "key:" + n;
    sinks[owner[calculateSlot(key)]].write(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}${tail}`);
    for (let m = 0; m < masters.length; m++) {
      const tagged = `key:${tags[m]}:${n}`;
      sinks[m].write(`*3\r\n$3\r\nSET\r\n$${tagged.length}\r\n${tagged}${tail}`);
    }
  }
  await Promise.all(sinks.map((s) => s.end()));
  await Promise.all(masters.map(async (m, i) => {
    const p = Bun.spawn(["redis-cli", ...tlsFlags, "-h", HOST, "-p", String(m.port), "--pipe"], {
      stdin: Bun.file(files[i]), stdout: "pipe", stderr: "pipe", timeout: o.runTimeoutS * 1000, killSignal: "SIGKILL",
    });
    owned.live.add(p);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    owned.live.delete(p);
    if (code !== 0 || !/errors: 0,/.test(out)) throw new BenchError(`prefill of ${m.port} failed (exit ${code}): ${out}${err}`);
  }));
  for (const f of files) rmSync(f, { force: true });
  log(`prefilled ${o.keyspace} keys for the proxy and ${o.keyspace} per master for direct runs in ${secs(t0)}s`);
}

/**
 * Waits until every replica has applied its master's whole stream: right after the prefill the
 * replicas are still busy catching up, which would slow whichever runs come first.
 */
async function replicasCaughtUp(masters: Master[], timeoutS: number): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const infos = await Promise.all(masters.map((m) => redisCli(m.port, ["info", "replication"])));
    const behind = infos.filter((s) => {
      const offset = Number(s.match(/^master_repl_offset:(\d+)/m)?.[1] ?? 0);
      const replicas = [...s.matchAll(/^slave\d+:.*offset=(\d+)/gm)].map((m) => Number(m[1]));
      return replicas.some((r) => r < offset);
    }).length;
    if (behind === 0) break;
    if (performance.now() - t0 > timeoutS * 1000) throw new BenchError(`replicas of ${behind} masters still catching up after ${timeoutS}s`);
    await Bun.sleep(250);
  }
  log(`replicas caught up in ${secs(t0)}s`);
}

/** Sum of keyspace_hits / keyspace_misses over the masters. */
async function hitCounters(masters: Master[]): Promise<[number, number]> {
  const infos = await Promise.all(masters.map((m) => redisCli(m.port, ["info", "stats"])));
  let hits = 0, misses = 0;
  for (const s of infos) {
    hits += Number(s.match(/^keyspace_hits:(\d+)/m)?.[1] ?? 0);
    misses += Number(s.match(/^keyspace_misses:(\d+)/m)?.[1] ?? 0);
  }
  return [hits, misses];
}

// ---- proxy ----

export interface Proxy { port: number; pid: number | null; proc: Subprocess | null; cmd: string; out: { text: string } }

function proxyCommand(o: Options, config: string): string[] {
  if (o.proxyCmd) return ["sh", "-c", "exec " + o.proxyCmd.replaceAll("{config}", config).replaceAll("{port}", String(o.port))];
  const dist = join(ROOT, "dist/predixy");
  if (existsSync(dist)) return [dist, "-c", config];
  // Bun runs main.ts in its own process: proc.pid is the one to sample.
  return [process.execPath, join(ROOT, "src/main.ts"), "-c", config];
}

/** Writes the config, starts the proxy, and resolves once it answers PING. */
async function proxyUp(o: Options, entryPoints: string[], tmp: string): Promise<Proxy> {
  if (o.proxyPort !== null) {
    if (!(await ping(o.proxyPort))) throw new BenchError(`nothing answers PING on ${HOST}:${o.proxyPort}`);
    const pid = o.proxyPid ?? (await listenerPid(o.proxyPort));
    log(`using the proxy on ${HOST}:${o.proxyPort}` + (pid ? ` (pid ${pid})` : " (pid unknown: no CPU/RSS)"));
    return { port: o.proxyPort, pid, proc: null, cmd: `(already running on ${o.proxyPort})`, out: { text: "" } };
  }
  const config = join(tmp, "predixy.toml");
  const t = clusterTls;
  writeFileSync(config, [
    "[server]", `bind = "${HOST}"`, `port = ${t ? 0 : o.port}`, "",
    "[cluster]", `entry_points = ${JSON.stringify(entryPoints)}`,
    ...(t ? ["tls = true", `tls_ca_file = "${t.caFile}"`, `tls_cert_file = "${t.certFile}"`, `tls_key_file = "${t.keyFile}"`] : []), "",
    ...(t ? ["[tls]", `port = ${o.port}`, `cert_file = "${t.certFile}"`, `key_file = "${t.keyFile}"`, `ca_file = "${t.caFile}"`, ""] : []),
    // Three patterns, the matching one last: each command's key is globbed three times.
    ...(o.aclUser ? ["[[users]]", `name = "bench"`, `password = "bench"`, `rules = "on +@all &* ~other:* ~{tag}:* ~key:*"`, ""] : []),
    "[performance]", `worker_threads = ${o.workers}`, "",
    "[log]", `level = "warning"`, "",
    "[admin]", `port = ${o.adminPort}`, "",
    // --ab-metrics switches the recording with CONFIG SET, which the default command policy denies.
    ...(o.abMetrics ? ["[commands]", "deny = []", ""] : []),
  ].join("\n"));
  const argv = proxyCommand(o, config);
  const cmd = argv.join(" ");
  log(`starting the proxy: ${cmd}`);
  // Not in `live`: cleanup stops it gently (stopGently), not with SIGKILL.
  const proc = Bun.spawn(argv, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const proxy: Proxy = { port: o.port, pid: proc.pid, proc, cmd, out: { text: "" } };
  drainTail(proc.stdout, proxy.out);
  drainTail(proc.stderr, proxy.out);
  owned.cleanups.push(() => stopGently(proc));
  const deadline = Date.now() + PROXY_START_MS;
  while (!(await ping(o.port))) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new BenchError(`the proxy exited during start-up`);
    if (Date.now() > deadline) throw new BenchError(`the proxy did not answer PING within ${PROXY_START_MS / 1000}s`);
    await Bun.sleep(50);
  }
  if (o.adminPort > 0) {
    // As a Prometheus server would: one scrape a second, the body read whole.
    const scrape = setInterval(() => void fetch(`http://${HOST}:${o.adminPort}/metrics`).then((r) => r.text(), () => ""), 1000);
    owned.cleanups.push(() => clearInterval(scrape));
  }
  return proxy;
}

function proxyDied(p: Proxy): string | null {
  if (!p.proc || (p.proc.exitCode === null && p.proc.signalCode === null)) return null;
  return `the proxy died (exit ${p.proc.exitCode ?? "-"}, signal ${p.proc.signalCode ?? "-"})`;
}

// ---- redis-benchmark ----

/** Keys per MSET (redis-benchmark's own `-t mset`) and per MGET (ours, below). */
const MULTI_KEYS = 10;

function benchArgs(o: Options, leg: Leg, proxy: Proxy, depth: number, test: string, n: number): string[] {
  // --ab-metrics: both legs go through the proxy, so both send what the proxy leg sends.
  const via = o.abMetrics ? "proxy" : leg;
  const target = via === "proxy" ? ["-h", HOST, "-p", String(proxy.port)] : ["--cluster", "-h", HOST, "-p", String(o.basePort)];
  const user = via === "proxy" && o.aclUser ? ["--user", "bench", "-a", "bench"] : [];
  return ["redis-benchmark", ...tlsFlags, ...target, ...user, "-c", String(o.clients), "-n", String(n),
    "-r", String(o.keyspace), "-d", String(o.dataSize), "-P", String(depth), ...o.extraArgs, "--csv", "-q", ...testArgs(test, via)];
}

/**
 * `-t test`, or for mget a command of our own: 10 random keys, which through the proxy lie in
 * 10 slots (split), and straight at the cluster share the master's hash tag (one slot per
 * command: the fastest the cluster can serve them), as redis-benchmark's own MSET does.
 */
function testArgs(test: string, leg: Leg): string[] {
  if (test !== "mget") return ["-t", test];
  return ["MGET", ...Array<string>(MULTI_KEYS).fill(leg === "proxy" ? "key:__rand_int__" : "key:{tag}:__rand_int__")];
}

/** Tests whose replies carry the prefilled values: their hit rate is measured. */
const READS = new Set(["get", "mget"]);

async function setRecording(port: number, on: boolean): Promise<void> {
  const r = Bun.spawnSync(["redis-cli", "-h", HOST, "-p", String(port), "CONFIG", "SET", "latency-tracking", on ? "yes" : "no"]);
  if (r.stdout.toString().trim() !== "OK") throw new BenchError(`CONFIG SET latency-tracking failed: ${r.stdout}${r.stderr}`);
}

/** Runs redis-benchmark once; a proxy death, a timeout, an error reply or a non-zero exit throws. */
async function runOnce(o: Options, argv: string[], test: string, leg: Leg, proxy: Proxy, masters: Master[]): Promise<Run> {
  const counting = READS.has(test) && masters.length > 0;
  const before = counting ? await hitCounters(masters) : null;
  const sampler = (leg === "proxy" || o.abMetrics) && proxy.pid ? new ProcSampler(proxy.pid) : null;
  // --ab-metrics: both legs go through the proxy, the "direct" one with recording off.
  if (o.abMetrics) await setRecording(proxy.port, leg === "proxy");
  const t0 = performance.now();
  const host0 = hostTicks();
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", timeout: o.runTimeoutS * 1000, killSignal: "SIGKILL" });
  owned.live.add(p);
  // redis-benchmark can wait forever on a dead server: stop waiting when the proxy goes.
  if (leg === "proxy" && proxy.proc) void proxy.proc.exited.then(() => p.kill("SIGKILL"));
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  owned.live.delete(p);
  const wallS = (performance.now() - t0) / 1000;
  const sampled = sampler?.stop() ?? { cpuPct: null, rssMaxMB: null };
  const hostCpuPct = hostBusyPct(host0), stealPct = hostStealPct(host0);
  // A killed proxy resets redis-benchmark's connections before Bun reaps it: give the exit a moment.
  if (leg === "proxy" && code !== 0 && proxy.proc) await Promise.race([proxy.proc.exited, Bun.sleep(1_000)]);
  const died = leg === "proxy" ? proxyDied(proxy) : null;
  if (died) throw new BenchError(died);
  const what = `${argv.join(" ")}\n${(out + err).trim().split("\n").slice(-15).join("\n")}`;
  if (p.signalCode === "SIGKILL") throw new BenchError(`redis-benchmark killed after ${o.runTimeoutS}s (--run-timeout): ${what}`);
  if (code !== 0 || /Error/.test(err)) throw new BenchError(`redis-benchmark failed (exit ${code}): ${what}`);
  const row = parseCsv(out);
  if (!row || !(row.rps > 0)) throw new BenchError(`no ${test} result in redis-benchmark's output: ${what}`);
  let hitPct: number | null = null;
  if (before) {
    const [h, m] = await hitCounters(masters);
    const total = h - before[0] + (m - before[1]);
    hitPct = total > 0 ? ((h - before[0]) / total) * 100 : null;
  }
  return { n: Number(argv[argv.indexOf("-n") + 1]), ...row, wallS, ...sampled, hitPct, hostCpuPct, hostStealPct: stealPct };
}

/**
 * The one result row of a run's `--csv` output (its header names the columns; cluster mode adds
 * a preamble). Its name is the test's ("SET", "MSET (10 keys)") or the custom command's.
 */
function parseCsv(out: string): Pick<Run, "rps" | "avgMs" | "p50Ms" | "p95Ms" | "p99Ms" | "maxMs"> | null {
  const lines = out.split("\n").map((l) => l.trim());
  const h = lines.findIndex((l) => l.startsWith('"test"'));
  if (h < 0) return null;
  const cols = lines[h].split(",").map((c) => c.replaceAll('"', ""));
  for (const l of lines.slice(h + 1)) {
    const cells = l.split(",").map((c) => c.replaceAll('"', ""));
    if (cells.length < cols.length) continue;
    const get = (name: string) => Number(cells[cols.indexOf(name)]);
    return { rps: get("rps"), avgMs: get("avg_latency_ms"), p50Ms: get("p50_latency_ms"),
      p95Ms: get("p95_latency_ms"), p99Ms: get("p99_latency_ms"), maxMs: get("max_latency_ms") };
  }
  return null;
}

// ---- the plan: per depth a warm-up, then R rounds of every test, legs alternating first ----

async function benchmark(o: Options, proxy: Proxy, masters: Master[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [di, depth] of o.pipelines.entries()) {
    const base = requestsFor(o, di);
    // A 10-key command is ~10 commands' work: a tenth as many keep the runs as long as SET's.
    const baseFor = (test: string) => (test === "mset" || test === "mget" ? Math.max(10_000, base / MULTI_KEYS) : base);
    const depthRows = o.tests.map((test): Row => ({
      pipeline: depth, test, commands: { proxy: "", direct: "" }, runs: { proxy: [], direct: [] },
    }));
    // Warm-up of each test on each leg: connections, the proxy's JIT, and (with --seconds) the rate
    // that sizes -n. Not reported.
    for (const row of depthRows) {
      for (const leg of ["proxy", "direct"] as Leg[]) {
        const warmN = Math.max(10_000, Math.round(baseFor(row.test) / 10));
        const w = await runOnce(o, benchArgs(o, leg, proxy, depth, row.test, warmN), row.test, leg, proxy, []);
        const n = o.seconds ? Math.max(10_000, Math.round((w.rps * o.seconds) / 10_000) * 10_000) : baseFor(row.test);
        row.commands[leg] = benchArgs(o, leg, proxy, depth, row.test, n).join(" ");
        log(`P${depth} ${row.test} ${leg} warm-up: ${fmtInt(w.rps)}/s` + (o.seconds ? ` → -n ${n}` : ""));
      }
    }
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const row of depthRows) {
        for (const leg of (rep % 2 === 0 ? ["proxy", "direct"] : ["direct", "proxy"]) as Leg[]) {
          const r = await runOnce(o, row.commands[leg].split(" "), row.test, leg, proxy, masters);
          row.runs[leg].push(r);
          log(`P${depth} ${row.test} ${leg.padEnd(6)} ${rep + 1}/${o.repeat}: ${fmtInt(r.rps).padStart(9)}/s ` +
            `p50 ${r.p50Ms} p99 ${r.p99Ms} ms, ${r.wallS.toFixed(1)}s` +
            (r.cpuPct !== null ? `, proxy CPU ${r.cpuPct.toFixed(0)}%` : "") +
            (r.rssMaxMB !== null ? `, RSS ${r.rssMaxMB.toFixed(0)} MB` : "") +
            (r.hitPct !== null ? `, hits ${r.hitPct.toFixed(0)}%` : "") +
            (r.hostCpuPct !== null ? `, host CPU ${r.hostCpuPct.toFixed(0)}%` : "") +
            (r.hostStealPct !== null ? `, steal ${r.hostStealPct.toFixed(0)}%` : ""));
        }
      }
    }
    rows.push(...depthRows);
  }
  return rows;
}

// ---- main ----

async function main(): Promise<number> {
  const t0 = performance.now();
  let o: Options;
  try {
    o = parseOptions(Bun.argv.slice(2));
  } catch (e) {
    log(`${(e as Error).message} (see --help)`);
    return 2;
  }
  let proxy: Proxy | null = null;
  try {
    // Fail before the cluster's start-up, not after.
    if (o.proxyPort === null && !canBind(o.port)) {
      throw new BenchError(`proxy port ${o.port} is in use (use --port, or --proxy-port to bench what listens there)`);
    }
    const tmp = mkdtempSync(join(tmpdir(), "predixy-bench-"));
    owned.cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
    if (o.tls) await setUpTls(o);
    const entryPoints = await clusterUp(o);
    const masters = await clusterMasters(o.basePort);
    proxy = await proxyUp(o, entryPoints, tmp);
    if (o.prefill) {
      await prefill(o, masters, tmp);
      await replicasCaughtUp(masters, o.runTimeoutS);
    }
    const rows = await benchmark(o, proxy, masters);
    const hwm = proxy.pid ? statusKB(proxy.pid, "VmHWM") : NaN;
    const peak = {
      hwmMB: Number.isFinite(hwm) ? hwm / 1024 : null,
      rssMaxMB: maxOf(rows.flatMap((r) => r.runs.proxy.map((x) => x.rssMaxMB))),
    };
    report(o, rows, proxy, peak, (performance.now() - t0) / 1000);
    if (o.json) log(`wrote ${o.json}`);
    return 0;
  } catch (e) {
    if (owned.interrupted) return 130;
    // The cluster helper's errors are plain Errors with the story in the message; others are bugs.
    const err = e as Error;
    log(`FAILED: ${err instanceof BenchError || err?.constructor === Error ? err.message : (err?.stack ?? err)}`);
    if (proxy?.proc) {
      const out = proxy.out.text.trimEnd();
      log(out ? `proxy output (tail):\n${out.split("\n").slice(-30).join("\n")}` : "the proxy wrote nothing");
    } else if (proxy && !(await ping(proxy.port))) {
      log(`the proxy on ${HOST}:${proxy.port} no longer answers PING`);
    }
    return 1;
  } finally {
    await owned.cleanup();
    log(`done in ${secs(t0)}s`);
  }
}

process.exit(await main());
