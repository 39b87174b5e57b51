// Entry point: argv → config → logging → topology → router → listener; signals and sweeps.

import { readFileSync } from "node:fs";
import { getLogger } from "@logtape/logtape";
import type { TLSOptions } from "bun";
import type { Acl } from "./acl/acl.ts";
import { BUILTIN_ACL_DATA, mergeAclData } from "./acl/acl-table.ts";
import { fromCommandReply, type CommandAclData } from "./acl/command-info.ts";
import { AclConfigError, applyCommandPolicy, backendCredentials, buildAcl } from "./acl/from-config.ts";
import { BackendNode } from "./backend/backend-node.ts";
import { query, type ControlAuth } from "./cluster/control-client.ts";
import { Topology } from "./cluster/topology.ts";
import { COMMANDS } from "./commands/command-table.ts";
import { listen } from "./client/listener.ts";
import { ConfigError, loadConfig, secretWarnings, type Config } from "./config/config.ts";
import { parseCliArgs, UsageError, USAGE, type CliAction } from "./config/cli-args.ts";
import { setupLogging } from "./logging.ts";
import { startObservability } from "./observability.ts";
import { Stats } from "./metrics/stats.ts";
import { pingAddress, pingProxy } from "./ping.ts";
import { encodeCommand, RespError } from "./resp/reply-value.ts";
import { internalRequest, Kind } from "./router/request.ts";
import { Router } from "./router/router.ts";
import { retained } from "./stream/upload.ts";
import { backendTls, type BackendTls } from "./tls/backend-tls.ts";
import { serverTlsOptions } from "./tls/server-tls.ts";
import { BUILD_COMMIT, VERSION, versionLine } from "./version.ts";
import { exitWithParent, startWorkers, workerId } from "./workers.ts";

const log = getLogger(["predixy"]);

/**
 * Exit codes: 2 = bad usage or config, 1 = could not start. `--ping`: 0 = PONG, 1 = anything
 * else, a bad config included (Docker reserves a health check's status 2).
 */
async function main(argv: string[]): Promise<number> {
  let cfg: Config, tls: Tls;
  let action: CliAction | undefined;
  try {
    action = parseCliArgs(argv, process.env);
    if (action.kind === "help") { process.stdout.write(USAGE); return 0; }
    if (action.kind === "version") { process.stdout.write(versionLine()); return 0; }
    cfg = await loadConfig(action.configPath);
    if (action.kind === "ping") return ping(cfg);
    configPath = action.configPath;
    tls = readTls(cfg);
    if (action.check) {
      // Without the cluster: rules and policy are checked against the built-in command table.
      const { warnings } = security(cfg, null, new Stats(), true);
      for (const w of [...secretWarnings(configPath, await Bun.file(configPath).text()), ...warnings]) process.stdout.write(`warning: ${w}\n`);
      process.stdout.write(`${configPath}: OK\n`);
      return 0;
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`predixy: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(USAGE);
      return action?.kind === "ping" ? 1 : 2;
    }
    throw err;
  }
  setupLogging(cfg.log.level, cfg.log.format);
  for (const w of secretWarnings(configPath, await Bun.file(configPath).text())) log.warn("{warning}", { warning: w });
  return serve(cfg, tls);
}

interface Tls {
  cluster: BackendTls | null;
  server: TLSOptions | null;
}

/** The TLS files, read (and so checked) before anything starts. Throws ConfigError naming the key. */
function readTls(cfg: Config): Tls {
  try {
    return {
      cluster: cfg.cluster.tls ? backendTls({
        caFile: cfg.cluster.tlsCaFile, certFile: cfg.cluster.tlsCertFile, keyFile: cfg.cluster.tlsKeyFile,
        serverName: cfg.cluster.tlsServerName, verify: cfg.cluster.tlsVerify,
      }) : null,
      server: cfg.tls.port ? serverTlsOptions(cfg.tls) : null,
    };
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/**
 * [commands] applied to the command table and the users built over it. `commandReply`: the
 * cluster's COMMAND (module and newer commands, their categories and key specs). `check`:
 * names unknown to the built-in table are warnings (the cluster may know them at start-up).
 * Throws ConfigError.
 */
function security(cfg: Config, commandReply: unknown, stats: Stats, check: boolean): { acl: Acl | null; warnings: string[] } {
  const warnings: string[] = [];
  let problems = applyCommandPolicy(COMMANDS, cfg.commands);
  if (check) {
    warnings.push(...problems.filter((p) => p.includes("unknown command")).map((p) => `${p} (not in the built-in table; checked again at start-up against the cluster's COMMAND)`));
    problems = problems.filter((p) => !p.includes("unknown command"));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const data: Record<string, CommandAclData> | undefined = commandReply ? mergeAclData(BUILTIN_ACL_DATA, fromCommandReply(commandReply)) : undefined;
  try {
    const acl = buildAcl(cfg, COMMANDS, data, stats);
    for (const u of acl.users.values()) if (!u.enabled) warnings.push(`user "${u.name}" is off: no one can log in as it (add "on" to its rules)`);
    return { acl, warnings };
  } catch (err) {
    if (!(err instanceof AclConfigError)) throw err;
    if (check && err.message.includes("Unknown command or category")) {
      warnings.push(`${err.message} (checked again at start-up against the cluster's COMMAND)`);
      return { acl: null, warnings };
    }
    throw new ConfigError(`users: ${err.message}`);
  }
}

async function ping(cfg: Config): Promise<number> {
  const addr = `${pingAddress(cfg.server.bind)}:${cfg.server.port}`;
  const why = await pingProxy(cfg);
  if (why === "") { process.stdout.write(`PONG from ${addr}\n`); return 0; }
  process.stderr.write(`predixy: no PONG from ${addr}: ${why}\n`);
  return 1;
}

let configPath = "";

async function serve(cfg: Config, tls: Tls): Promise<number> {
  const stats = new Stats();
  const creds = backendCredentials(cfg).list;
  const authRequests = creds.map(({ username, password }) => password
    ? internalRequest(Kind.AUTH, encodeCommand(username ? ["AUTH", username, password] : ["AUTH", password]))
    : null);
  const helloRequests = creds.map(({ username, password }) => internalRequest(Kind.AUTH,
    encodeCommand(password ? ["HELLO", "3", "AUTH", username || "default", password] : ["HELLO", "3"])));
  const { username, password } = cfg.cluster;
  const auth = password ? { username, password } : null;

  // The cluster's own command table first: rules may name module commands, and key specs and
  // categories are then those of the Redis version actually running.
  const commandReply = await learnCommands(cfg, auth, tls.cluster);
  let acl: Acl;
  try {
    acl = security(cfg, commandReply, stats, false).acl!;
    await checkCredentials(cfg, creds.slice(1), tls.cluster);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.fatal("{err}", { err: err.message });
    return 2;
  }

  let router: Router | null = null;
  const topology = new Topology({
    entryPoints: cfg.cluster.entryPoints,
    auth,
    tls: tls.cluster,
    refreshIntervalMs: cfg.cluster.refreshIntervalMs,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    makeNode: (host, port) => new BackendNode(host, port, {
      poolSize: cfg.pool.size,
      bufferSize: cfg.performance.bufferSize,
      connectTimeoutMs: cfg.cluster.connectTimeoutMs,
      authRequests,
      helloRequests,
      tls: tls.cluster,
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
  retained.max = cfg.performance.streamRetainBytes;
  router = new Router(topology, {
    maxRedirects: cfg.cluster.maxRedirects,
    retryTimeoutMs: cfg.cluster.retryTimeoutMs,
    acl,
    auth,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    tls: tls.cluster,
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
  obs.commandsLearned();

  try {
    listening = listen({
      bind: cfg.server.bind, port: cfg.server.port, tlsPort: cfg.tls.port, tls: tls.server, authClients: cfg.tls.authClients,
      maxClients: fitMaxClients(cfg, [...topology.allNodes()].length),
      idleTimeoutMs: cfg.server.clientIdleTimeoutMs, writeTimeoutMs: cfg.server.clientWriteTimeoutMs, reusePort: cfg.performance.workerThreads > 1,
      batchSize: cfg.performance.batchSize, maxInputBytes: cfg.performance.maxClientInputBytes, maxOutputBytes: cfg.performance.maxClientOutputBytes,
      maxPubsubBytes: cfg.performance.maxPubsubOutputBytes, uploadStallMs: cfg.cluster.commandTimeoutMs,
      bufferSize: cfg.performance.bufferSize, acl,
    }, router, stats);
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = e.code === "EADDRINUSE" ? "address already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    log.fatal("cannot listen on {bind}:{port}: {why}", { bind: cfg.server.bind, port: [cfg.server.port, cfg.tls.port].filter((p) => p > 0).join(","), why });
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
    version: VERSION, commit: BUILD_COMMIT || "from source", worker: workerId, bind: cfg.server.bind,
    port: [cfg.server.port && `${cfg.server.port}`, cfg.tls.port && `${cfg.tls.port} (TLS)`].filter(Boolean).join(" and "),
    masters: topology.table.masters.length, size: cfg.pool.size,
  });
  // The first process starts the others once it is itself listening (so a bad port fails once).
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
    for (const s of listening.servers) s.stop(true);
    return 1;
  }

  // SIGHUP (systemctl reload): certificates and keys are read again; connected clients keep their
  // sessions. The rest of the configuration needs a restart until it can be reloaded live.
  const live = listening;
  const onHup = () => {
    workers?.signal("SIGHUP");
    log.warn("SIGHUP: only TLS certificates are reloaded; restart predixy to apply other changes");
    if (!cfg.tls.port) return;
    try {
      live.reloadTls(serverTlsOptions(cfg.tls));
      log.info("SIGHUP: TLS certificates reloaded from {cert}", { cert: cfg.tls.certFile });
    } catch (err) {
      log.error("SIGHUP: TLS certificates not reloaded, the old ones stay in use: {err}", { err: (err as Error).message });
    }
  };
  process.on("SIGHUP", onHup);

  await nextSignal();
  process.off("SIGHUP", onHup);
  // Readiness fails from here on, so a load balancer stops sending clients while they drain.
  draining = true;
  workers?.stop();
  // Stop accepting, let every client have the replies of what it already sent, then close.
  for (const s of listening.servers) s.stop(false);
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
  for (const s of listening.servers) s.stop(true);
  for (const c of listening.clients) c.close();
  for (const n of topology.allNodes()) n.closeAll("shutting down");
  return 0;
}

/**
 * Each user's own backend credentials are tried once at start-up on an entry point: a wrong
 * one would otherwise surface as that user's connections failing, and the node backing off
 * for everyone. Throws ConfigError naming the user.
 */
async function checkCredentials(cfg: Config, creds: { username: string; password: string }[], tls: BackendTls | null): Promise<void> {
  const e = cfg.cluster.entryPoints[0];
  for (const c of creds) {
    try {
      await query(e.host, e.port, [["PING"]], c, Math.max(cfg.cluster.connectTimeoutMs, 5000), tls);
    } catch (err) {
      const users = cfg.users.filter((u) => u.clusterUsername === c.username && u.clusterPassword === c.password).map((u) => u.name);
      const msg = (err as Error).message;
      if (msg.startsWith("AUTH failed")) throw new ConfigError(`users ${users.join(", ")}: cluster_username/cluster_password refused by ${e.host}:${e.port}: ${msg}`);
      log.warn("could not check the backend credentials of users {users} on {addr}: {err}", { users: users.join(", "), addr: `${e.host}:${e.port}`, err: msg });
    }
  }
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
 * the cluster itself reports; the reply (null if no entry point gave one) also carries the ACL
 * categories and key specs users are checked with. Best effort: the built-in tables still serve.
 */
async function learnCommands(cfg: Config, auth: ControlAuth | null, tls: BackendTls | null): Promise<unknown> {
  const errors: string[] = [];
  for (const e of cfg.cluster.entryPoints) {
    try {
      const [reply] = await query(e.host, e.port, [["COMMAND"]], auth, Math.max(cfg.cluster.connectTimeoutMs, 5000), tls);
      if (reply instanceof RespError) throw new Error(reply.message);
      const added = COMMANDS.learn(reply);
      if (added.length > 0) log.info("learned {count} commands from {addr}: {names}", { count: added.length, addr: `${e.host}:${e.port}`, names: added.join(" ") });
      return reply;
    } catch (err) {
      errors.push(`${e.host}:${e.port}: ${(err as Error).message}`);
    }
  }
  log.warn("could not read COMMAND ({errors}); using the built-in command table", { errors: errors.join("; ") });
  return null;
}

process.on("uncaughtException", (err) => log.error("uncaught exception: {err}", { err: err?.stack ?? err }));
process.on("unhandledRejection", (err) => log.error("unhandled rejection: {err}", { err: (err as Error)?.stack ?? err }));

const code = await main(process.argv.slice(2));
process.exit(code);
