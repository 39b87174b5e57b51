// Entry point: argv → config → logging → topology → router → listener; signals and sweeps.

import { getLogger } from "@logtape/logtape";
import { BackendNode } from "./backend/backend-node.ts";
import { query, type ControlAuth } from "./cluster/control-client.ts";
import { Topology } from "./cluster/topology.ts";
import { COMMANDS } from "./commands/command-table.ts";
import { listen } from "./client/listener.ts";
import { ConfigError, loadConfig, type Config } from "./config/config.ts";
import { parseCliArgs, UsageError, USAGE } from "./config/cli-args.ts";
import { setupLogging } from "./logging.ts";
import { Stats } from "./metrics/stats.ts";
import { encodeCommand, RespError } from "./resp/reply-value.ts";
import { internalRequest, Kind } from "./router/request.ts";
import { Router } from "./router/router.ts";
import { VERSION } from "./version.ts";
import { exitWithParent, startWorkers, workerId } from "./workers.ts";

const log = getLogger(["predixy"]);

/** Exit codes: 2 = bad usage or config, 1 = could not start. */
async function main(argv: string[]): Promise<number> {
  let cfg: Config;
  try {
    const action = parseCliArgs(argv);
    if (action.kind === "help") { process.stdout.write(USAGE); return 0; }
    if (action.kind === "version") { process.stdout.write(`predixy ${VERSION}\n`); return 0; }
    cfg = await loadConfig(action.configPath);
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
  return serve(cfg);
}

async function serve(cfg: Config): Promise<number> {
  const stats = new Stats();
  const { username, password } = cfg.cluster;
  const authRequest = password
    ? internalRequest(Kind.AUTH, encodeCommand(username ? ["AUTH", username, password] : ["AUTH", password]))
    : null;
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
    }, router!),
  });
  router = new Router(topology, {
    maxRedirects: cfg.cluster.maxRedirects,
    retryTimeoutMs: cfg.cluster.retryTimeoutMs,
    password: cfg.server.password,
  }, stats);

  if (!(await topology.start())) {
    log.fatal("no entry point answered CLUSTER SLOTS: {entries}", {
      entries: cfg.cluster.entryPoints.map((e) => `${e.host}:${e.port}`).join(", "),
    });
    return 1;
  }
  for (const m of topology.table.masters) m.warm(cfg.pool.minIdle);
  await learnCommands(topology, auth, cfg.cluster.connectTimeoutMs);

  let listening;
  try {
    listening = listen({
      bind: cfg.server.bind, port: cfg.server.port, maxClients: cfg.server.maxClients,
      idleTimeoutMs: cfg.server.clientIdleTimeoutMs, reusePort: cfg.performance.workerThreads > 1,
      batchSize: cfg.performance.batchSize, maxOutputBytes: cfg.performance.maxClientOutputBytes,
      bufferSize: cfg.performance.bufferSize, password: cfg.server.password,
    }, router, stats);
  } catch (err) {
    log.fatal("cannot listen on {bind}:{port}: {err}", { bind: cfg.server.bind, port: cfg.server.port, err: (err as Error).message });
    return 1;
  }

  // Requests stuck on a node that stopped answering fail, and the connection is rebuilt.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const n of topology.allNodes()) n.forEachConn((c) => c.checkStalled(now, cfg.cluster.commandTimeoutMs));
  }, Math.max(50, Math.min(1000, cfg.cluster.commandTimeoutMs / 4)));

  log.info("predixy {version} worker {worker} listening on {bind}:{port}, {masters} masters, pool {size}/node", {
    version: VERSION, worker: workerId, bind: cfg.server.bind, port: listening.server.port,
    masters: topology.table.masters.length, size: cfg.pool.size,
  });
  // The first process starts the others once it is itself listening (so a bad port fails once).
  const workers = workerId === 0 && cfg.performance.workerThreads > 1 ? startWorkers(cfg.performance.workerThreads) : null;
  if (workerId > 0) exitWithParent();

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => { log.info("{sig}: shutting down", { sig }); resolve(); };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  workers?.stop();
  router.stop();
  clearInterval(sweep);
  topology.stop();
  listening.server.stop(true);
  for (const c of listening.clients) c.close();
  for (const n of topology.allNodes()) n.closeAll("shutting down");
  return 0;
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
