// A throwaway local Redis Cluster of daemonized redis-server nodes: start, wait until settled, stop.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface ClusterOptions {
  /** Nodes use basePort .. basePort + masters*(1+replicas) - 1; bus port = port + 10000. */
  basePort: number;
  /** At least 3: `redis-cli --cluster create` refuses fewer. */
  masters: number;
  replicasPerMaster: number;
  /** Holds node dirs, pid files, logs, nodes.conf; created, and wiped of old node state first. */
  dir: string;
  /** Default "127.0.0.1". */
  host?: string;
  /** If set: requirepass + masterauth on every node. */
  password?: string;
  /** cluster-node-timeout (default 3000): how long a silent node takes to be failed over. */
  nodeTimeoutMs?: number;
  /**
   * If set: the nodes listen with TLS only (tls-port on the node ports, port 0), and use TLS
   * for the cluster bus and replication, with client certificates required.
   */
  tls?: ClusterTls;
}

/** PEM files for a TLS cluster: every node uses the same certificate (server and client use). */
export interface ClusterTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** How to reach the nodes with redis-cli. */
interface Access {
  password?: string;
  tls?: ClusterTls;
}

export interface ClusterNode {
  host: string;
  port: number;
  /** "host:port" */
  addr: string;
  pid: number;
}

export interface ClusterHandle {
  /** Absolute form of ClusterOptions.dir. */
  dir: string;
  /** All nodes in port order. */
  nodes: ClusterNode[];
  /** "host:port" of every node. */
  entryPoints: string[];
  /** Kills every node (SIGTERM, then SIGKILL after a grace period); resolves once the ports are free. */
  stop(): Promise<void>;
}

const DEFAULT_HOST = "127.0.0.1";
const BUS_OFFSET = 10000;
const START_TIMEOUT_MS = 60_000;
const CLI_TIMEOUT_MS = 15_000;
const TERM_GRACE_MS = 5_000;
const KILL_GRACE_MS = 2_000;
const PORT_FREE_TIMEOUT_MS = 5_000;
const POLL_MS = 25;
const SETTLE_POLL_MS = 50;
/** Written by startCluster so `stop`/`status` know host and password without flags. */
const META_FILE = "cluster.json";

/** What startCluster records in `dir` beside the node dirs. */
export interface ClusterMeta {
  host: string;
  ports: number[];
  masters: number;
  replicasPerMaster: number;
  password?: string;
  tls?: ClusterTls;
}

/**
 * Starts masters*(1+replicasPerMaster) nodes, joins them with `redis-cli --cluster create`, and
 * resolves once every node agrees on a full slot map and every replica's link to its master is up.
 * On failure the nodes it started are stopped and the error carries the tail of the relevant log.
 */
export async function startCluster(opts: ClusterOptions): Promise<ClusterHandle> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const host = opts.host ?? DEFAULT_HOST;
  const { basePort, masters, replicasPerMaster: replicas, password, tls } = opts;
  const access: Access = { password, tls };
  // redis-server chdirs into --dir before opening --logfile, so relative paths would break.
  const dir = resolve(opts.dir);
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`startCluster: masters must be >= 3 (got ${masters})`);
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`startCluster: replicasPerMaster must be >= 0 (got ${replicas})`);
  const total = masters * (1 + replicas);
  const ports = Array.from({ length: total }, (_, i) => basePort + i);
  if (basePort < 1 || ports[total - 1] + BUS_OFFSET > 65535) {
    throw new Error(`startCluster: ports ${basePort}..${ports[total - 1]} (+${BUS_OFFSET} bus) out of range`);
  }

  // Old nodes recorded in dir go first, wherever they listen: wiping their pid files would orphan them.
  await stopCluster(dir);
  await ensurePortsFree(host, ports, dir);
  await wipeNodeState(dir);
  await mkdir(dir, { recursive: true });
  const meta: ClusterMeta = { host, ports, masters, replicasPerMaster: replicas, ...(password ? { password } : {}), ...(tls ? { tls } : {}) };
  await writeFile(join(dir, META_FILE), JSON.stringify(meta, null, 2) + "\n");

  const nodes: ClusterNode[] = [];
  try {
    // Settle every start before judging, so a failure never leaves a sibling half-started and unrecorded.
    const started = await Promise.allSettled(ports.map((p) => startNode(dir, host, p, access, deadline, opts.nodeTimeoutMs ?? 3000)));
    for (const s of started) if (s.status === "rejected") throw s.reason;
    for (const s of started) if (s.status === "fulfilled") nodes.push(s.value);
    const addrs = ports.map((p) => `${host}:${p}`);
    const create = ["--cluster", "create", ...addrs, "--cluster-replicas", String(replicas), "--cluster-yes"];
    const r = await run(["redis-cli", ...cliFlags(access), ...create], remaining(deadline, "cluster create"));
    if (r.code !== 0) throw new Error(`redis-cli --cluster create failed (exit ${r.code}):\n${tail(r.stdout + r.stderr, 25)}`);
    await waitSettled(dir, host, ports, masters, replicas, access, deadline);
  } catch (e) {
    await stopCluster(dir).catch(() => {}); // logs stay for the post-mortem; the start error is the news
    throw e;
  }
  return {
    dir,
    nodes,
    entryPoints: nodes.map((n) => n.addr),
    stop: () => stopPids(host, nodes.map((n) => ({ pid: n.pid, port: n.port }))),
  };
}

/** Stops the nodes recorded in `dir`'s pid files (a previous startCluster, maybe another process's). */
export async function stopCluster(dir: string): Promise<void> {
  const meta = await readMeta(dir);
  const host = meta?.host ?? DEFAULT_HOST;
  const recorded: { pid: number; port: number }[] = [];
  for (const port of await nodePorts(dir)) {
    const pid = await readPid(join(dir, String(port), "redis.pid"));
    if (pid !== undefined && (await isRedisOnPort(pid, port))) recorded.push({ pid, port });
  }
  await stopPids(host, recorded);
}

/** Runs `redis-cli -h host -p port ARGS`; returns trimmed stdout. Throws (with stderr) on non-zero exit.
 *  redis-cli exits 0 on an error *reply*: that comes back as the returned text. */
export async function redisCli(port: number, args: string[], opts: { host?: string } & Access = {}): Promise<string> {
  const cmd = ["redis-cli", "-h", opts.host ?? DEFAULT_HOST, "-p", String(port), ...cliFlags(opts), ...args];
  const r = await run(cmd, CLI_TIMEOUT_MS);
  if (r.code !== 0) {
    throw new Error(`redis-cli -p ${port} ${args.join(" ")} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout.trim();
}

/** Resolves once every node on `ports` reports cluster_state:ok, all 16384 slots assigned, and the
 *  same slot → master map; throws after timeoutMs naming the first node still out of line. */
export async function waitClusterOk(ports: number[], timeoutMs: number, host = DEFAULT_HOST, password?: string, tls?: ClusterTls): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(ports.map((p) => clusterView(host, p, { password, tls })));
    const problem = slotProblem(ports, views);
    if (problem === undefined) return;
    if (Date.now() >= deadline) throw new Error(`cluster not ok after ${timeoutMs}ms: ${problem}`);
    await Bun.sleep(SETTLE_POLL_MS);
  }
}

// ---- nodes ----

/** redis-cli's flags for a password and TLS. */
function cliFlags(a: Access): string[] {
  const out: string[] = [];
  if (a.password) out.push("-a", a.password, "--no-auth-warning");
  if (a.tls) out.push("--tls", "--cacert", a.tls.caFile, "--cert", a.tls.certFile, "--key", a.tls.keyFile);
  return out;
}

async function startNode(dir: string, host: string, port: number, access: Access, deadline: number, nodeTimeoutMs: number): Promise<ClusterNode> {
  const { password, tls } = access;
  const nodeDir = join(dir, String(port));
  await mkdir(nodeDir, { recursive: true });
  const pidFile = join(nodeDir, "redis.pid");
  const args = [
    "redis-server",
    ...(tls ? ["--port", "0", "--tls-port", String(port), "--tls-cluster", "yes", "--tls-replication", "yes",
      "--tls-cert-file", tls.certFile, "--tls-key-file", tls.keyFile, "--tls-ca-cert-file", tls.caFile] : ["--port", String(port)]),
    "--bind", host,
    "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", String(nodeTimeoutMs),
    "--dir", nodeDir, "--daemonize", "yes", "--pidfile", pidFile, "--logfile", join(nodeDir, "redis.log"),
    "--save", "", "--appendonly", "no", "--protected-mode", "no",
    // Replicas would otherwise wait 5s for more replicas before a diskless full sync starts.
    "--repl-diskless-sync-delay", "0",
  ];
  if (password) args.push("--requirepass", password, "--masterauth", password);
  // With --daemonize the parent exits once forked; errors before that (bad flag) land on stderr.
  const r = await run(args, remaining(deadline, `start node ${port}`));
  if (r.code !== 0) throw new Error(`redis-server on port ${port} exited ${r.code}:\n${tail(r.stderr + r.stdout, 15)}`);

  for (;;) {
    const pid = await readPid(pidFile);
    if (pid !== undefined && (await answersPing(port, { host, ...access }))) return { host, port, addr: `${host}:${port}`, pid };
    // A node that fails to listen dies before writing its pid file; its log's first line names it.
    const logPid = pid ?? (await pidFromLog(join(nodeDir, "redis.log")));
    if (logPid !== undefined && !(await isAlive(logPid))) {
      throw new Error(`redis-server on port ${port} died during start-up:\n${await logTail(dir, port)}`);
    }
    if (Date.now() >= deadline) throw new Error(`redis-server on port ${port} not answering PING:\n${await logTail(dir, port)}`);
    await Bun.sleep(POLL_MS);
  }
}

/** Whether the server on `port` answers PING with PONG (false while it cannot be reached). */
export async function answersPing(port: number, opts: { host?: string } & Access = {}): Promise<boolean> {
  try {
    return (await redisCli(port, ["ping"], opts)) === "PONG";
  } catch {
    return false;
  }
}

/** SIGTERM each live node, SIGKILL the ones still up after the grace period, then wait for the ports. */
async function stopPids(host: string, nodes: { pid: number; port: number }[]): Promise<void> {
  await Promise.all(nodes.map(async ({ pid, port }) => {
    if (!(await isRedisOnPort(pid, port))) return;
    signal(pid, "SIGTERM");
    if (await waitDead(pid, TERM_GRACE_MS)) return;
    signal(pid, "SIGKILL");
    if (!(await waitDead(pid, KILL_GRACE_MS))) throw new Error(`redis-server pid ${pid} (port ${port}) survived SIGKILL`);
  }));
  const ports = nodes.map((n) => n.port);
  const deadline = Date.now() + PORT_FREE_TIMEOUT_MS;
  for (;;) {
    const busy = await busyPorts(host, ports);
    if (busy.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`ports still in use after stopping the cluster: ${busy.join(", ")}`);
    await Bun.sleep(POLL_MS);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: that is what we wanted.
  }
}

async function waitDead(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await Bun.sleep(POLL_MS);
  }
  return true;
}

/** Alive and not a zombie: a daemonized node is re-parented, and a container's pid 1 may never reap it. */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    try {
      process.kill(pid, 0);
      return process.platform !== "linux"; // no /proc entry on Linux means gone
    } catch {
      return false;
    }
  }
}

/** Guards against pid reuse: redis-server retitles itself "redis-server host:port [cluster]". */
async function isRedisOnPort(pid: number, port: number): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ");
    return cmdline.includes("redis-server") && cmdline.includes(`:${port}`);
  } catch {
    return process.platform !== "linux"; // without /proc, trust the pid file
  }
}

// ---- ports and files ----

/** Ports (client or bus) that cannot be bound on host right now. */
async function busyPorts(host: string, ports: number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const p of ports) for (const q of [p, p + BUS_OFFSET]) if (!canBind(host, q)) busy.push(q);
  return busy;
}

/** Only EADDRINUSE counts as busy; other bind errors (foreign host, privileged port) are left for
 *  redis-server to report in its log. */
function canBind(host: string, port: number): boolean {
  try {
    Bun.listen({ hostname: host, port, socket: { data() {} } }).stop(true);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "EADDRINUSE";
  }
}

async function ensurePortsFree(host: string, ports: number[], dir: string): Promise<void> {
  const busy = await busyPorts(host, ports);
  if (busy.length === 0) return;
  const owners = await run(["ss", "-ltnpH"], 5_000).then((r) => r.stdout, () => "");
  const lines = owners.split("\n").filter((l) => busy.some((p) => new RegExp(`:${p}\\s`).test(l)));
  throw new Error(
    `cannot start cluster: port(s) ${busy.join(", ")} on ${host} in use by something not recorded in ${dir}` +
      (lines.length ? `:\n${lines.join("\n")}` : "") + ephemeralOverlap(busy),
  );
}

/** Outgoing connections take local ports from this range: test ports inside it are taken at random. */
function ephemeralOverlap(ports: number[]): string {
  let range: number[];
  try {
    range = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  } catch {
    return "";
  }
  if (range.length !== 2 || !ports.some((p) => p >= range[0] && p <= range[1])) return "";
  return `\n(this host's ephemeral port range is ${range[0]}-${range[1]}: outgoing connections can take these ports)`;
}

/** Node dirs are named by port; only those (and the meta file) are ours to remove. */
async function nodePorts(dir: string): Promise<number[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && /^\d+$/.test(e.name)).map((e) => Number(e.name)).sort((a, b) => a - b);
}

async function wipeNodeState(dir: string): Promise<void> {
  for (const port of await nodePorts(dir)) await rm(join(dir, String(port)), { recursive: true, force: true });
  await rm(join(dir, META_FILE), { force: true });
}

export async function readMeta(dir: string): Promise<ClusterMeta | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, META_FILE), "utf8")) as ClusterMeta;
  } catch {
    return undefined;
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function pidFromLog(file: string): Promise<number | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  const m = [...text.matchAll(/pid=(\d+), just started/g)].at(-1);
  return m ? Number(m[1]) : undefined;
}

async function logTail(dir: string, port: number): Promise<string> {
  const file = join(dir, String(port), "redis.log");
  return readFile(file, "utf8").then((t) => `--- ${file} (tail) ---\n${tail(t, 20)}`, () => `(no log at ${file})`);
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

// ---- cluster state ----

/** What one node says about the cluster; `error` when it could not be asked. */
interface ClusterView {
  port: number;
  error?: string;
  state?: string;
  slotsAssigned?: number;
  knownNodes?: number;
  /** Sorted "masterId slots…" for every master owning slots. */
  slotMap?: string;
  /** Sorted "id role masterId" for every node: equal views agree on who replicates whom. */
  roles?: string;
}

async function clusterView(host: string, port: number, access: Access): Promise<ClusterView> {
  try {
    const [info, nodes] = await Promise.all([
      redisCli(port, ["cluster", "info"], { host, ...access }),
      redisCli(port, ["cluster", "nodes"], { host, ...access }),
    ]);
    const field = (k: string) => info.match(new RegExp(`^${k}:(\\S+)`, "m"))?.[1];
    const slotMap: string[] = [];
    const roles: string[] = [];
    for (const line of nodes.split("\n")) {
      const f = line.trim().split(" ");
      if (f.length < 8) continue;
      const [id, , flags, masterId] = f;
      const role = flags.includes("master") ? "master" : flags.includes("slave") ? "replica" : flags;
      roles.push(`${id} ${role} ${masterId}`);
      // Slot fields; "[slot->-id]" entries are migrations in flight, not ownership.
      const slots = f.slice(8).filter((s) => !s.startsWith("["));
      if (role === "master" && slots.length > 0) slotMap.push(`${id} ${slots.join(" ")}`);
    }
    return {
      port,
      state: field("cluster_state"),
      slotsAssigned: Number(field("cluster_slots_assigned")),
      knownNodes: Number(field("cluster_known_nodes")),
      slotMap: slotMap.sort().join(" | "),
      roles: roles.sort().join(" | "),
    };
  } catch (e) {
    return { port, error: (e as Error).message };
  }
}

/** Why these views are not one settled full slot map; undefined when they are. */
function slotProblem(ports: number[], views: ClusterView[]): string | undefined {
  for (const v of views) {
    if (v.error) return `port ${v.port}: ${v.error}`;
    if (v.state !== "ok") return `port ${v.port}: cluster_state:${v.state}`;
    if (v.slotsAssigned !== 16384) return `port ${v.port}: cluster_slots_assigned:${v.slotsAssigned}`;
  }
  const differ = views.find((v) => v.slotMap !== views[0].slotMap);
  return differ ? `ports ${ports[0]} and ${differ.port} disagree on the slot map` : undefined;
}

/** waitClusterOk plus: every node knows every node and agrees on roles, and every replica's link is up. */
async function waitSettled(
  dir: string, host: string, ports: number[], masters: number, replicas: number, access: Access, deadline: number,
): Promise<void> {
  let problem = "";
  for (;;) {
    const views = await Promise.all(ports.map((p) => clusterView(host, p, access)));
    problem = slotProblem(ports, views) ?? "";
    if (!problem) {
      const lagging = views.find((v) => v.knownNodes !== ports.length || v.roles !== views[0].roles);
      if (lagging) problem = `port ${lagging.port} knows ${lagging.knownNodes}/${ports.length} nodes or disagrees on roles`;
    }
    if (!problem) problem = await replicationProblem(host, ports, masters, replicas, access);
    if (!problem) return;
    if (Date.now() >= deadline) {
      const port = Number(problem.match(/port (\d+)/)?.[1] ?? ports[0]);
      throw new Error(`cluster did not settle within ${START_TIMEOUT_MS}ms: ${problem}\n${await logTail(dir, port)}`);
    }
    await Bun.sleep(SETTLE_POLL_MS);
  }
}

async function replicationProblem(host: string, ports: number[], masters: number, replicas: number, access: Access): Promise<string> {
  const infos = await Promise.all(ports.map((p) => redisCli(p, ["info", "replication"], { host, ...access }).catch((e: Error) => e)));
  let masterCount = 0;
  for (let i = 0; i < ports.length; i++) {
    const info = infos[i];
    if (info instanceof Error) return `port ${ports[i]}: ${info.message}`;
    if (/^role:master/m.test(info)) masterCount++;
    else if (!/^master_link_status:up/m.test(info)) return `port ${ports[i]}: replica link to master not up yet`;
  }
  return masterCount === masters ? "" : `${masterCount} masters, expected ${masters} (x${replicas} replicas)`;
}

// ---- processes ----

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, killing it after `timeoutMs`; never hangs a test run. */
async function run(cmd: string[], timeoutMs: number): Promise<RunResult> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (timedOut) throw new Error(`${cmd.slice(0, 4).join(" ")} … timed out after ${timeoutMs}ms\n${tail(stdout + stderr, 15)}`);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

function remaining(deadline: number, what: string): number {
  const ms = deadline - Date.now();
  if (ms <= 0) throw new Error(`startCluster timed out (${START_TIMEOUT_MS}ms) before: ${what}`);
  return ms;
}
