// Entry point: argv → config → logging → topology → router → listener; signals and sweeps.

import { readFileSync } from "node:fs";
import { getLogger } from "@logtape/logtape";
import { BackendNode, formatAddr } from "./backend/backend-node.ts";
import { HealthCheck } from "./backend/health-check.ts";
import { query, type ControlAuth } from "./cluster/control-client.ts";
import { Topology } from "./cluster/topology.ts";
import { COMMANDS } from "./commands/command-table.ts";
import { listen, type Listening } from "./client/listener.ts";
import { fitMaxMemory } from "./client/memory-budget.ts";
import { ConfigError, loadConfig, type Config } from "./config/config.ts";
import { parseCliArgs, UsageError, USAGE } from "./config/cli-args.ts";
import { lifecycle } from "./lifecycle.ts";
import { setupLogging } from "./logging.ts";
import { Stats } from "./metrics/stats.ts";
import { encodeCommand, RespError } from "./resp/reply-value.ts";
import { internalRequest, Kind } from "./router/request.ts";
import { reload, onReload } from "./reload.ts";
import { Router } from "./router/router.ts";
import { VERSION } from "./version.ts";
import { exitWithParent, startWorkers, workerId } from "./workers.ts";

const log = getLogger(["predixy"]);

/** Exit codes: 2 = bad usage or config, 1 = could not start. */
async function main(argv: string[]): Promise<number> {
  let cfg: Config;
  let configPath: string;
  try {
    const action = parseCliArgs(argv);
    if (action.kind === "help") { process.stdout.write(USAGE); return 0; }
    if (action.kind === "version") { process.stdout.write(`predixy ${VERSION}\n`); return 0; }
    configPath = action.configPath;
    cfg = await loadConfig(configPath);
    if (action.check) { process.stdout.write(`${action.configPath}: OK\n`); return 0; }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`predixy: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(USAGE);
      return 2;
    }
    throw err;
  }
  setupLogging(cfg.log.level);
  return serve(cfg, configPath);
}

async function serve(cfg: Config, configPath: string): Promise<number> {
  // Until start-up is done, a SIGHUP is logged and dropped (its default action would end the process).
  let onHangup = () => log.info("SIGHUP during start-up: ignored");
  process.on("SIGHUP", () => onHangup());
  const stats = new Stats();
  let router: Router | null = null;
  // Shared by every node: a reload changes new connections' AUTH and connect timeout in place.
  const nodeOptions = {
    poolSize: cfg.pool.size,
    bufferSize: cfg.performance.bufferSize,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    authRequest: backendAuth(cfg),
  };
  let firstTable: (() => void) | null = null;
  const topology = new Topology({
    entryPoints: cfg.cluster.entryPoints,
    auth: controlAuth(cfg),
    refreshIntervalMs: cfg.cluster.refreshIntervalMs,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    makeNode: (host, port) => new BackendNode(host, port, nodeOptions, router!),
    slotsMoved: (inFlight, unsent) => router!.slotsMoved(inFlight, unsent),
    installed: (_table, changed, first) => {
      if (changed) router!.tableChanged();
      if (first) firstTable?.();
    },
  });
  router = new Router(topology, routerOptions(cfg), stats);
  router.reads.configure(cfg.cluster.readFrom, cfg.cluster.maxReplicaLag, cfg.cluster.healthCheckIntervalMs);
  const health = new HealthCheck(() => topology.allNodes(), healthOptions(cfg), {
    onStalled: (node) => router!.nodeStalled(node),
    onPoll: () => router!.reads.poll(topology.table),
    onNodeDown: () => topology.requestRefresh(),
  });

  // The cluster may be down or unreachable at start-up: serve anyway (commands wait for it, up
  // to retry_timeout_ms) and keep asking. What needs a table waits for the first one.
  firstTable = () => {
    lifecycle.topologyKnown = true;
    for (const m of topology.table.masters) m.warm(cfg.pool.minIdle);
    void learnCommands(topology, controlAuth(cfg), cfg.cluster.connectTimeoutMs);
  };
  if (!(await topology.start())) {
    log.error("no entry point answered CLUSTER SLOTS ({entries}); serving anyway: commands wait for the cluster up to retry_timeout_ms, and it is asked again every second", {
      entries: cfg.cluster.entryPoints.map((e) => formatAddr(e.host, e.port)).join(", "),
    });
  }

  let listening: Listening;
  try {
    listening = listen(listenOptions(cfg, topology), router, stats);
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = e.code === "EADDRINUSE" ? "address already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    log.fatal("cannot listen on {bind}:{port}: {why}", { bind: cfg.server.bind, port: cfg.server.port, why });
    return 1;
  }
  health.start();

  log.info("predixy {version} worker {worker} listening on {bind}:{port}, {masters} masters, pool {size}/node", {
    version: VERSION, worker: workerId, bind: cfg.server.bind, port: listening.server.port,
    masters: topology.table.masters.length, size: cfg.pool.size,
  });
  // The first process starts the others once it is itself listening (so a bad port fails once).
  const workers = workerId === 0 && cfg.performance.workerThreads > 1 ? startWorkers(cfg.performance.workerThreads) : null;
  if (workerId > 0) exitWithParent();

  // SIGHUP: each part applies what it can of the new file (reload.ts); workers reload their own.
  onReload((next) => {
    if (next.log.level !== cfg.log.level) setupLogging(next.log.level);
    nodeOptions.authRequest = backendAuth(next);
    nodeOptions.connectTimeoutMs = next.cluster.connectTimeoutMs;
    topology.configure({
      entryPoints: next.cluster.entryPoints, auth: controlAuth(next),
      refreshIntervalMs: next.cluster.refreshIntervalMs, connectTimeoutMs: next.cluster.connectTimeoutMs,
    });
    router!.configure(routerOptions(next));
    router!.reads.configure(next.cluster.readFrom, next.cluster.maxReplicaLag, next.cluster.healthCheckIntervalMs);
    health.configure(healthOptions(next));
    listening.configure(listenOptions(next, topology));
  });
  let reloading = Promise.resolve();
  onHangup = () => {
    log.info("SIGHUP: reloading {path}", { path: configPath });
    workers?.signal("SIGHUP");
    // One reload at a time, in order; one that fails does not stop the next.
    reloading = reloading
      .then(async () => { cfg = await reload(configPath, cfg); })
      .catch((err: Error) => log.error("reload failed: {err}", { err: err?.stack ?? err }));
  };

  const signals = stopSignals();
  await signals.first;
  lifecycle.draining = true;
  workers?.signal("SIGTERM");
  // Stop accepting; every client gets the replies of what it sent before the signal, then is closed.
  listening.drain();
  const drainMs = cfg.server.drainTimeoutMs;
  const drainEnds = performance.now() + drainMs;
  log.info("shutting down: not accepting; waiting up to {ms} ms for {n} clients to be answered (a second signal stops at once)", {
    ms: drainMs, n: listening.clients.size,
  });
  const second = signals.second;
  const outcome = await Promise.race([
    untilEmpty(listening.clients).then(() => "drained"), sleep(drainMs).then(() => "deadline"), second.then(() => "signal"),
  ]);
  if (outcome === "deadline" && listening.clients.size > 0) {
    log.warn("drain_timeout_ms ({ms}) passed: closing {n} clients with replies still owed", { ms: drainMs, n: listening.clients.size });
  }
  if (workers !== null) {
    // The workers drain their own clients, on the same deadline (they exit when this process does).
    if (outcome === "signal") workers.signal("SIGTERM");
    else await Promise.race([workers.exited, sleep(Math.max(0, drainEnds - performance.now()) + 1000), second]);
  }
  router.stop();
  health.stop();
  topology.stop();
  listening.server.stop(true);
  for (const c of listening.clients) c.close();
  for (const n of topology.allNodes()) n.closeAll("shutting down");
  return 0;
}

function backendAuth(cfg: Config) {
  const { username, password } = cfg.cluster;
  return password ? internalRequest(Kind.AUTH, encodeCommand(username ? ["AUTH", username, password] : ["AUTH", password])) : null;
}

function controlAuth(cfg: Config): ControlAuth | null {
  return cfg.cluster.password ? { username: cfg.cluster.username, password: cfg.cluster.password } : null;
}

function routerOptions(cfg: Config) {
  return {
    maxRedirects: cfg.cluster.maxRedirects,
    retryTimeoutMs: cfg.cluster.retryTimeoutMs,
    password: cfg.server.password,
    announceHost: cfg.server.announceHost,
    announcePort: cfg.server.announcePort,
  };
}

function healthOptions(cfg: Config) {
  return {
    intervalMs: cfg.cluster.healthCheckIntervalMs,
    timeoutMs: cfg.cluster.healthCheckTimeoutMs,
    commandTimeoutMs: cfg.cluster.commandTimeoutMs,
  };
}

function listenOptions(cfg: Config, topology: Topology) {
  const nodes = Math.max([...topology.allNodes()].length, cfg.cluster.entryPoints.length);
  return {
    bind: cfg.server.bind, port: cfg.server.port, maxClients: fitMaxClients(cfg, nodes),
    idleTimeoutMs: cfg.server.clientIdleTimeoutMs, writeTimeoutMs: cfg.server.clientWriteTimeoutMs, reusePort: cfg.performance.workerThreads > 1,
    batchSize: cfg.performance.batchSize, maxInputBytes: cfg.performance.maxClientInputBytes, maxOutputBytes: cfg.performance.maxClientOutputBytes,
    bufferSize: cfg.performance.bufferSize, password: cfg.server.password, maxMemory: fitMaxMemory(cfg.performance.maxMemory),
  };
}

/**
 * Like Redis, lowers max_clients to what the open-file limit leaves after backend connections,
 * so that a client past it gets an error reply instead of a failed accept (which would hang it
 * and leave the proxy unable to open backend connections).
 */
function fitMaxClients(cfg: Config, nodes: number): number {
  let limit: number | null = null;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m) limit = Number(m[1]);
  } catch { /* not Linux: keep the configured value */ }
  const reserved = 64 + nodes * (cfg.pool.size + 1);
  if (limit === null || cfg.server.maxClients + reserved <= limit) return cfg.server.maxClients;
  const fit = Math.max(1, limit - reserved);
  log.warn("max_clients lowered from {configured} to {fit}: the open-file limit is {limit} and {reserved} are kept for backends (raise it: ulimit -n, LimitNOFILE=)", {
    configured: cfg.server.maxClients, fit, limit, reserved,
  });
  return fit;
}

/** The first SIGINT/SIGTERM starts the drain; the second ends it at once. */
function stopSignals(): { first: Promise<void>; second: Promise<void> } {
  const first = Promise.withResolvers<void>(), second = Promise.withResolvers<void>();
  let count = 0;
  const on = (sig: string) => {
    log.info("{sig}", { sig });
    (++count === 1 ? first : second).resolve();
  };
  process.on("SIGINT", () => on("SIGINT"));
  process.on("SIGTERM", () => on("SIGTERM"));
  return { first: first.promise, second: second.promise };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function untilEmpty(set: Set<unknown>): Promise<void> {
  while (set.size > 0) await sleep(10);
}

/**
 * Module commands, and commands newer than the built-in table, become routable by the key specs
 * the cluster itself reports. Best effort: without it the built-in table still serves.
 */
async function learnCommands(topology: Topology, auth: ControlAuth | null, timeoutMs: number): Promise<void> {
  const m = topology.table.masters[0];
  try {
    const [reply] = await query(m.host, m.port, [["COMMAND"]], auth, Math.max(timeoutMs, 5000));
    if (reply instanceof RespError) throw new Error(reply.message);
    const added = COMMANDS.learn(reply);
    if (added.length > 0) log.info("learned {count} commands from {addr}: {names}", { count: added.length, addr: m.addr, names: added.join(" ") });
  } catch (err) {
    log.warn("could not read COMMAND from {addr}: {err}; using the built-in command table", { addr: m.addr, err: (err as Error).message });
  }
}

process.on("uncaughtException", (err) => log.error("uncaught exception: {err}", { err: err?.stack ?? err }));
process.on("unhandledRejection", (err) => log.error("unhandled rejection: {err}", { err: (err as Error)?.stack ?? err }));

const code = await main(process.argv.slice(2));
process.exit(code);
