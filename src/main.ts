// Entry point: argv → config → logging → topology → router → listener; signals and sweeps.

import { readFileSync } from "node:fs";
import { getLogger } from "@logtape/logtape";
import type { TLSOptions } from "bun";
import type { Acl } from "./acl/acl.ts";
import { BUILTIN_ACL_DATA, mergeAclData } from "./acl/acl-table.ts";
import { fromCommandReply, type CommandAclData } from "./acl/command-info.ts";
import { AclConfigError, applyCommandPolicy, backendCredentials, buildAcl } from "./acl/from-config.ts";
import { BackendNode, formatAddr } from "./backend/backend-node.ts";
import { HealthCheck } from "./backend/health-check.ts";
import { query, type ControlAuth } from "./cluster/control-client.ts";
import { Topology } from "./cluster/topology.ts";
import { COMMANDS } from "./commands/command-table.ts";
import { listen, type Listening } from "./client/listener.ts";
import { fitMaxMemory } from "./client/memory-budget.ts";
import { ConfigError, loadConfig, secretWarnings, type Config } from "./config/config.ts";
import { parseCliArgs, UsageError, USAGE, type CliAction } from "./config/cli-args.ts";
import { setupLogging } from "./logging.ts";
import { startObservability } from "./observability.ts";
import { Stats } from "./metrics/stats.ts";
import { pingProxy, pingTarget } from "./ping.ts";
import { encodeCommand, RespError } from "./resp/reply-value.ts";
import { onReload, reload } from "./reload.ts";
import { internalRequest, Kind, type Request } from "./router/request.ts";
import { Router, type RouterOptions } from "./router/router.ts";
import { retained } from "./stream/upload.ts";
import { backendTls, type BackendTls } from "./tls/backend-tls.ts";
import { serverTlsOptions } from "./tls/server-tls.ts";
import { collectWhenQuiet } from "./util/quiet-gc.ts";
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
  const target = pingTarget(cfg);
  if (typeof target === "string") { process.stderr.write(`predixy: --ping: ${target}\n`); return 1; }
  const addr = `${formatAddr(target.host, target.port)}${target.tls ? " (TLS)" : ""}`;
  const why = await pingProxy(cfg);
  if (why === "") { process.stdout.write(`PONG from ${addr}\n`); return 0; }
  process.stderr.write(`predixy: no PONG from ${addr}: ${why}\n`);
  return 1;
}

let configPath = "";

async function serve(cfg: Config, tls: Tls): Promise<number> {
  // Until start-up is done, a SIGHUP is logged and dropped (its default action would end the process).
  let onHangup = () => log.info("SIGHUP during start-up: ignored");
  process.on("SIGHUP", () => onHangup());
  const stats = new Stats();
  const creds = backendCredentials(cfg).list;
  // Shared with every node (and its pinned pool): a reload replaces the default credential's entries in place.
  const authRequests = creds.map((c) => authRequest(c));
  const helloRequests = creds.map((c) => helloRequest(c));
  let auth = controlAuth(cfg);

  // The cluster's own command table first: rules may name module commands, and key specs and
  // categories are then those of the Redis version actually running. Best effort: the cluster
  // may be down at start-up, and predixy serves anyway.
  const commandReply = await learnCommands(cfg, auth, tls.cluster);
  const aclData = commandReply ? mergeAclData(BUILTIN_ACL_DATA, fromCommandReply(commandReply)) : undefined;
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
  const nodeOptions = {
    poolSize: cfg.pool.size,
    bufferSize: cfg.performance.bufferSize,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    authRequests,
    helloRequests,
    tls: tls.cluster,
    maxIdle: cfg.pool.maxIdle,
    maxPinned: cfg.pool.maxPinned,
  };
  let firstTable: (() => void) | null = null;
  const topology = new Topology({
    entryPoints: cfg.cluster.entryPoints,
    auth,
    tls: tls.cluster,
    refreshIntervalMs: cfg.cluster.refreshIntervalMs,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    makeNode: (host, port) => new BackendNode(host, port, nodeOptions, router!),
    slotsMoved: (inFlight, unsent) => router!.slotsMoved(inFlight, unsent),
    tableChanged: () => router?.tableChanged(),
    installed: (_table, changed, first) => {
      if (changed) router?.wakeParked();
      if (first) firstTable?.();
    },
  });
  // Every view reads live state through `obs`, wired before anything listens.
  let listening: Listening | null = null;
  // Readiness fails once set, so a load balancer stops sending clients while they drain.
  let draining = false;
  const obs = startObservability(cfg, configPath, stats, topology, {
    clients: () => listening?.clients ?? new Set(),
    draining: () => draining,
  });
  retained.max = cfg.performance.streamRetainBytes;
  router = new Router(topology, routerOptions(cfg, acl, auth, tls, obs.admin, () => listening?.clients ?? []), stats);
  router.reads.configure(cfg.cluster.readFrom, cfg.cluster.maxReplicaLag, cfg.cluster.healthCheckIntervalMs);
  const health = new HealthCheck(() => topology.allNodes(), healthOptions(cfg), {
    onStalled: (node) => router!.nodeStalled(node),
    onPoll: () => router!.reads.poll(topology.table),
    onNodeDown: () => topology.requestRefresh(),
  });

  // The cluster may be down or unreachable at start-up: serve anyway (commands wait for it, up
  // to retry_timeout_ms) and keep asking. What needs a table waits for the first one.
  firstTable = () => {
    for (const m of topology.table.masters) m.warm(cfg.pool.minIdle);
  };
  if (!(await topology.start())) {
    const entries = cfg.cluster.entryPoints.map((e) => formatAddr(e.host, e.port)).join(", ");
    // Refused credentials or certificates are this config's fault, not an outage: waiting would not mend them.
    if (topology.lastErrors.length > 0 && topology.lastErrors.every((e) => CONFIG_FAULT.test(e))) {
      log.fatal("no entry point answered CLUSTER SLOTS ({entries}): {errors}", { entries, errors: topology.lastErrors.join("; ") });
      topology.stop();
      return 1;
    }
    log.error("no entry point answered CLUSTER SLOTS ({entries}); serving anyway: commands wait for the cluster up to retry_timeout_ms, and it is asked again every second", { entries });
  }
  obs.commandsLearned();

  try {
    listening = listen(listenOptions(cfg, tls, acl, topology), router, stats);
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = e.code === "EADDRINUSE" ? "address already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    log.fatal("cannot listen on {bind}:{port}: {why}", { bind: cfg.server.bind, port: [cfg.server.port, cfg.tls.port].filter((p) => p > 0).join(","), why });
    return 1;
  }
  health.start();
  const stopQuietGc = collectWhenQuiet(stats);

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

  // SIGHUP (systemctl reload): the file is read again and each part applies what it can
  // (reload.ts); workers reload their own. TLS certificates are read again at every SIGHUP.
  const live = listening;
  onReload((next, prev) => {
    if (next.log.level !== prev.log.level || next.log.format !== prev.log.format) setupLogging(next.log.level, next.log.format);
    if (next.cluster.username !== prev.cluster.username || next.cluster.password !== prev.cluster.password) {
      // The default credential is always the first (acl/from-config.ts): new connections use it.
      const c = { username: next.cluster.username, password: next.cluster.password };
      authRequests[0] = authRequest(c);
      helloRequests[0] = helloRequest(c);
      auth = controlAuth(next);
    }
    if (next.server.password !== prev.server.password) acl = buildAcl(next, COMMANDS, aclData, stats);
    nodeOptions.connectTimeoutMs = next.cluster.connectTimeoutMs;
    topology.configure({
      entryPoints: next.cluster.entryPoints, auth,
      refreshIntervalMs: next.cluster.refreshIntervalMs, connectTimeoutMs: next.cluster.connectTimeoutMs,
    });
    router!.configure(routerOptions(next, acl, auth, tls, obs.admin, () => live.clients));
    router!.reads.configure(next.cluster.readFrom, next.cluster.maxReplicaLag, next.cluster.healthCheckIntervalMs);
    health.configure(healthOptions(next));
    live.configure(listenOptions(next, tls, acl, topology));
    retained.max = next.performance.streamRetainBytes;
  });
  onReload((next) => {
    if (!next.tls.port) return;
    try {
      live.reloadTls(serverTlsOptions(next.tls));
      log.info("SIGHUP: TLS certificates reloaded from {cert}", { cert: next.tls.certFile });
    } catch (err) {
      log.error("SIGHUP: TLS certificates not reloaded, the old ones stay in use: {err}", { err: (err as Error).message });
    }
  });
  let reloading = Promise.resolve();
  onHangup = () => {
    log.info("SIGHUP: reloading {path}", { path: configPath });
    workers?.signal("SIGHUP");
    // One reload at a time, in order; one that fails does not stop the next. The config object
    // is updated in place: what reads it (CONFIG GET, INFO) sees the new values.
    reloading = reloading
      .then(async () => {
        const applied = await reload(configPath, cfg);
        if (applied !== cfg) for (const [section, values] of Object.entries(applied)) Object.assign((cfg as unknown as Record<string, object>)[section], values);
      })
      .catch((err: Error) => log.error("reload failed: {err}", { err: err?.stack ?? err }));
  };

  const signals = stopSignals();
  await signals.first;
  onHangup = () => log.info("SIGHUP while shutting down: ignored");
  draining = true;
  workers?.stop();
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
  stopQuietGc();
  obs.stop();
  topology.stop();
  for (const s of listening.servers) s.stop(true);
  for (const c of listening.clients) c.close();
  for (const n of topology.allNodes()) n.closeAll("shutting down");
  return 0;
}

/** A topology query's error that no wait mends: the node refused predixy's credentials or certificate. */
const CONFIG_FAULT = /TLS certificate refused|AUTH failed|WRONGPASS|NOPERM/;

function authRequest(c: { username: string; password: string }): Request | null {
  return c.password ? internalRequest(Kind.AUTH, encodeCommand(c.username ? ["AUTH", c.username, c.password] : ["AUTH", c.password])) : null;
}

function helloRequest(c: { username: string; password: string }): Request {
  return internalRequest(Kind.AUTH, encodeCommand(c.password ? ["HELLO", "3", "AUTH", c.username || "default", c.password] : ["HELLO", "3"]));
}

function controlAuth(cfg: Config): ControlAuth | null {
  return cfg.cluster.password ? { username: cfg.cluster.username, password: cfg.cluster.password } : null;
}

function routerOptions(cfg: Config, acl: Acl, auth: ControlAuth | null, tls: Tls, admin: RouterOptions["admin"], clients: RouterOptions["clients"]): RouterOptions {
  return {
    maxRedirects: cfg.cluster.maxRedirects,
    retryTimeoutMs: cfg.cluster.retryTimeoutMs,
    acl,
    auth,
    connectTimeoutMs: cfg.cluster.connectTimeoutMs,
    tls: tls.cluster,
    clients,
    announceHost: cfg.server.announceHost,
    announcePort: cfg.server.announcePort,
    admin,
  };
}

function healthOptions(cfg: Config) {
  return {
    intervalMs: cfg.cluster.healthCheckIntervalMs,
    timeoutMs: cfg.cluster.healthCheckTimeoutMs,
    commandTimeoutMs: cfg.cluster.commandTimeoutMs,
  };
}

function listenOptions(cfg: Config, tls: Tls, acl: Acl, topology: Topology) {
  const nodes = Math.max([...topology.allNodes()].length, cfg.cluster.entryPoints.length);
  return {
    bind: cfg.server.bind, port: cfg.server.port, tlsPort: cfg.tls.port, tls: tls.server, authClients: cfg.tls.authClients,
    maxClients: fitMaxClients(cfg, nodes),
    idleTimeoutMs: cfg.server.clientIdleTimeoutMs, writeTimeoutMs: cfg.server.clientWriteTimeoutMs, reusePort: cfg.performance.workerThreads > 1,
    batchSize: cfg.performance.batchSize, maxInputBytes: cfg.performance.maxClientInputBytes, maxOutputBytes: cfg.performance.maxClientOutputBytes,
    maxPubsubBytes: cfg.performance.maxPubsubOutputBytes, uploadStallMs: cfg.cluster.commandTimeoutMs,
    bufferSize: cfg.performance.bufferSize, acl, maxMemory: fitMaxMemory(cfg.performance.maxMemory),
  };
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
