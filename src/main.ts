// Entry point: argv → config → logging → topology → router → listener; signals and sweeps.

import { readFileSync } from "node:fs";
import { getLogger } from "@logtape/logtape";
import { BackendNode } from "./backend/backend-node.ts";
import { query, type ControlAuth } from "./cluster/control-client.ts";
import { Topology } from "./cluster/topology.ts";
import { COMMANDS } from "./commands/command-table.ts";
import { listen } from "./client/listener.ts";
import { ConfigError, loadConfig, type Config } from "./config/config.ts";
import { parseCliArgs, UsageError, USAGE, type CliAction } from "./config/cli-args.ts";
import { setupLogging } from "./logging.ts";
import { startObservability } from "./observability.ts";
import { Stats } from "./metrics/stats.ts";
import { pingAddress, pingProxy } from "./ping.ts";
import { encodeCommand, RespError } from "./resp/reply-value.ts";
import { internalRequest, Kind } from "./router/request.ts";
import { Router } from "./router/router.ts";
import { BUILD_COMMIT, VERSION, versionLine } from "./version.ts";
import { exitWithParent, startWorkers, workerId } from "./workers.ts";

const log = getLogger(["predixy"]);

/**
 * Exit codes: 2 = bad usage or config, 1 = could not start. `--ping`: 0 = PONG, 1 = anything
 * else, a bad config included (Docker reserves a health check's status 2).
 */
async function main(argv: string[]): Promise<number> {
  let cfg: Config;
  let action: CliAction | undefined;
  try {
    action = parseCliArgs(argv, process.env);
    if (action.kind === "help") { process.stdout.write(USAGE); return 0; }
    if (action.kind === "version") { process.stdout.write(versionLine()); return 0; }
    cfg = await loadConfig(action.configPath);
    if (action.kind === "ping") return ping(cfg);
    configPath = action.configPath;
    if (action.check) { process.stdout.write(`${action.configPath}: OK\n`); return 0; }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`predixy: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(USAGE);
      return action?.kind === "ping" ? 1 : 2;
    }
    throw err;
  }
  setupLogging(cfg.log.level, cfg.log.format);
  return serve(cfg);
}

async function ping(cfg: Config): Promise<number> {
  const addr = `${pingAddress(cfg.server.bind)}:${cfg.server.port}`;
  const why = await pingProxy(cfg);
  if (why === "") { process.stdout.write(`PONG from ${addr}\n`); return 0; }
  process.stderr.write(`predixy: no PONG from ${addr}: ${why}\n`);
  return 1;
}

let configPath = "";

async function serve(cfg: Config): Promise<number> {
  const stats = new Stats();
  const { username, password } = cfg.cluster;
  const authRequest = password
    ? internalRequest(Kind.AUTH, encodeCommand(username ? ["AUTH", username, password] : ["AUTH", password]))
    : null;
  const helloRequest = internalRequest(Kind.AUTH,
    encodeCommand(password ? ["HELLO", "3", "AUTH", username || "default", password] : ["HELLO", "3"]));
  let router: Router | null = null;
  const auth = password ? { username, password } : null;
  const topology = new Topology({
    entryPoints: cfg.cluster.entryPoints,
    auth,
    refreshIntervalMs: cfg.cluster.refreshIntervalMs,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    makeNode: (host, port) => new BackendNode(host, port, {
      poolSize: cfg.pool.size,
      bufferSize: cfg.performance.bufferSize,
      connectTimeoutMs: cfg.cluster.connectTimeoutMs,
      authRequest,
      helloRequest,
      maxIdle: cfg.pool.maxIdle,
      maxPinned: cfg.pool.maxPinned,
    }, router!),
    slotsMoved: (inFlight, unsent) => router!.slotsMoved(inFlight, unsent),
    tableChanged: () => router?.tableChanged(),
  });
  // Every view reads live state through `obs`, wired before anything listens.
  let listening: ReturnType<typeof listen> | null = null;
  let draining = false;
  const obs = startObservability(cfg, configPath, stats, topology, {
    clients: () => listening?.clients ?? new Set(),
    draining: () => draining,
  });
  router = new Router(topology, {
    maxRedirects: cfg.cluster.maxRedirects,
    retryTimeoutMs: cfg.cluster.retryTimeoutMs,
    password: cfg.server.password,
    auth,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    clients: () => listening?.clients ?? [],
    announceHost: cfg.server.announceHost,
    announcePort: cfg.server.announcePort,
    admin: obs.admin,
  }, stats);

  if (!(await topology.start())) {
    log.fatal("no entry point answered CLUSTER SLOTS: {entries}", {
      entries: cfg.cluster.entryPoints.map((e) => `${e.host}:${e.port}`).join(", "),
    });
    return 1;
  }
  for (const m of topology.table.masters) m.warm(cfg.pool.minIdle);
  await learnCommands(topology, auth, cfg.cluster.connectTimeoutMs);
  obs.commandsLearned();

  try {
    listening = listen({
      bind: cfg.server.bind, port: cfg.server.port, maxClients: fitMaxClients(cfg, [...topology.allNodes()].length),
      idleTimeoutMs: cfg.server.clientIdleTimeoutMs, writeTimeoutMs: cfg.server.clientWriteTimeoutMs, reusePort: cfg.performance.workerThreads > 1,
      batchSize: cfg.performance.batchSize, maxInputBytes: cfg.performance.maxClientInputBytes, maxOutputBytes: cfg.performance.maxClientOutputBytes,
      maxPubsubBytes: cfg.performance.maxPubsubOutputBytes,
      bufferSize: cfg.performance.bufferSize, password: cfg.server.password,
    }, router, stats);
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = e.code === "EADDRINUSE" ? "address already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    log.fatal("cannot listen on {bind}:{port}: {why}", { bind: cfg.server.bind, port: cfg.server.port, why });
    return 1;
  }

  // Requests stuck on a node that stopped answering fail, and the connection is rebuilt.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const n of topology.allNodes()) {
      n.forEachConn((c) => c.checkStalled(now, cfg.cluster.commandTimeoutMs));
      n.pinned.forEachLent((c) => c.checkStalled(now, cfg.cluster.commandTimeoutMs));
    }
  }, Math.max(50, Math.min(1000, cfg.cluster.commandTimeoutMs / 4)));

  log.info("predixy {version} ({commit}) worker {worker} listening on {bind}:{port}, {masters} masters, pool {size}/node", {
    version: VERSION, commit: BUILD_COMMIT || "from source", worker: workerId, bind: cfg.server.bind, port: listening.server.port,
    masters: topology.table.masters.length, size: cfg.pool.size,
  });
  // The first process starts the others once it is itself listening (so a bad port fails once).
  // systemd's ExecReload and `kill -HUP` mean "reload"; SIGHUP's default action would end the
  // process. Until the config can be reloaded live, say what to do instead.
  process.on("SIGHUP", () => log.warn("SIGHUP: reloading the configuration is not supported yet; restart predixy to apply changes"));
  const workers = workerId === 0 && cfg.performance.workerThreads > 1
    ? startWorkers(cfg.performance.workerThreads, (id, msg) => obs.group.onWorkerMessage(id, msg))
    : null;
  if (workers !== null) obs.group.attachWorkers(workers);
  if (workerId > 0) {
    obs.group.attachParent();
    exitWithParent();
  }
  // Only the first process serves admin HTTP; its views cover every worker.
  if (workerId === 0 && !obs.startAdmin()) {
    workers?.stop();
    listening.server.stop(true);
    return 1;
  }

  await nextSignal();
  // Readiness fails from here on, so a load balancer stops sending clients while they drain.
  draining = true;
  workers?.stop();
  // Stop accepting, let every client have the replies of what it already sent, then close.
  listening.server.stop(false);
  for (const c of listening.clients) c.finish();
  const drainMs = cfg.cluster.commandTimeoutMs;
  log.info("shutting down: waiting up to {ms} ms for the replies of {n} clients (a second signal stops at once)", {
    ms: drainMs, n: listening.clients.size,
  });
  await Promise.race([untilEmpty(listening.clients), sleep(drainMs), nextSignal()]);
  router.stop();
  clearInterval(sweep);
  obs.stop();
  topology.stop();
  listening.server.stop(true);
  for (const c of listening.clients) c.close();
  for (const n of topology.allNodes()) n.closeAll("shutting down");
  return 0;
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

function nextSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const on = (sig: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      log.info("{sig}", { sig });
      resolve();
    };
    const onInt = () => on("SIGINT");
    const onTerm = () => on("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
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
