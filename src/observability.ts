// Wires the metrics views for main.ts: recorder settings, snapshots, the worker group, CONFIG, admin HTTP.

import { getLogger } from "@logtape/logtape";
import { startAdmin, type AdminServer } from "./admin/server.ts";
import type { BackendNode } from "./backend/backend-node.ts";
import type { ClientConn } from "./client/client-conn.ts";
import type { Topology } from "./cluster/topology.ts";
import { commandIdLimit } from "./commands/command-table.ts";
import type { Config } from "./config/config.ts";
import { LiveSettings } from "./config/live-settings.ts";
import { setupLogging } from "./logging.ts";
import { Group, type GroupOp } from "./metrics/group.ts";
import { hotKeys } from "./metrics/hot-keys.ts";
import type { InfoContext } from "./metrics/info.ts";
import { ProcessSampler } from "./metrics/process-sampler.ts";
import { metrics } from "./metrics/recorder.ts";
import { slowlog } from "./metrics/slowlog.ts";
import { mergeSnapshots, takeSnapshot, type GroupView, type NodeState, type SnapshotSources } from "./metrics/snapshot.ts";
import type { Stats } from "./metrics/stats.ts";
import { infoText, type AdminContext } from "./router/admin-commands.ts";
import { workerId } from "./workers.ts";

const log = getLogger(["predixy", "admin"]);

/** Live state only main.ts holds. */
export interface LiveState {
  clients(): Set<ClientConn>;
  draining(): boolean;
}

export interface Observability {
  admin: AdminContext;
  group: Group;
  /** Commands were learned from the cluster: make room for their ids. */
  commandsLearned(): void;
  /** Starts the admin HTTP server if configured; false (logged) when it cannot listen. */
  startAdmin(): boolean;
  stop(): void;
}

export function startObservability(cfg: Config, configFile: string, stats: Stats, topology: Topology, live: LiveState): Observability {
  const m = cfg.metrics;
  metrics.enabled = m.enabled;
  metrics.setSlowlog(m.slowlogLogSlowerThan);
  metrics.ensureCommands(commandIdLimit());
  slowlog.setMaxLen(m.slowlogMaxLen);
  hotKeys.configure(m.hotkeys, m.hotkeysSampleRate);
  const sampler = new ProcessSampler(stats);
  sampler.start();

  const sources: SnapshotSources = {
    worker: workerId, stats, sampler,
    nodes: () => nodeStates(topology),
    topology: () => ({
      ok: topology.lastRefreshOk, refreshes: topology.refreshes, refreshFailures: topology.refreshFailures,
      changes: topology.changes, coveredSlots: topology.table.coveredSlots,
    }),
    clients: () => {
      const all = live.clients();
      let pending = 0, outputBytes = 0, inputBytes = 0, blocked = 0;
      for (const c of all) {
        pending += c.pendingCommands; outputBytes += c.outputBytes; inputBytes += c.inputBytes;
        if (c.session?.blocked) blocked++;
      }
      return { connected: all.size, blocked, pending, outputBytes, inputBytes };
    },
    draining: live.draining,
  };

  const settings = new LiveSettings(cfg, {
    setLogLevel: (level) => setupLogging(level),
    setSlowlogThreshold: (us) => metrics.setSlowlog(us),
    setSlowlogMaxLen: (n) => slowlog.setMaxLen(n),
    setLatencyTracking: (on) => { metrics.enabled = on; },
  }, configFile);
  const applyLocal = (op: GroupOp) => {
    if (op.op === "config") settings.set(op.name, op.value);
    else if (op.op === "slowlog-reset") slowlog.reset();
    else {
      metrics.reset();
      stats.reset();
      hotKeys.reset();
    }
  };
  const group = new Group((detail) => takeSnapshot(sources, detail), applyLocal);
  const single = cfg.performance.workerThreads === 1;
  const view = (detail = true): GroupView | Promise<GroupView> =>
    single ? mergeSnapshots([takeSnapshot(sources, detail)]) : group.gather(detail).then(mergeSnapshots);
  const info: InfoContext = {
    port: cfg.server.port, configFile, maxClients: cfg.server.maxClients, worker: workerId, pid: process.pid,
    get percentiles() { return cfg.metrics.latencyPercentiles; },
  };
  const notReady = (): string | null => {
    if (live.draining()) return "draining (shutting down)";
    if (!topology.lastRefreshOk) return "the cluster is unreachable (the last topology refresh failed)";
    if (topology.table.masters.length === 0) return "no topology yet";
    return null;
  };

  let server: AdminServer | null = null;
  return {
    admin: { view, apply: (op) => group.apply(op), settings, info, infoText: (args) => infoText({ view, info }, args) },
    group,
    commandsLearned: () => metrics.ensureCommands(commandIdLimit()),
    startAdmin() {
      if (cfg.admin.port === 0) return true;
      try {
        server = startAdmin({ bind: cfg.admin.bind, port: cfg.admin.port, view: async () => view(), notReady, info });
      } catch (err) {
        const e = err as Error & { code?: string };
        log.fatal("cannot listen on {bind}:{port} (admin): {why}", {
          bind: cfg.admin.bind, port: cfg.admin.port, why: e.code === "EADDRINUSE" ? "address already in use" : e.message,
        });
        return false;
      }
      log.info("admin HTTP on http://{bind}:{port}/ (metrics, healthz, readyz, cluster, info, dashboard)", { bind: cfg.admin.bind, port: server.port });
      return true;
    },
    stop() {
      sampler.stop();
      server?.stop();
    },
  };
}

/** Every known node: masters with their slot ranges, replicas with their master, others as seen. */
function nodeStates(topology: Topology): NodeState[] {
  const t = topology.table;
  const ranges: [number, number][][] = t.masters.map(() => []);
  let start = 0;
  for (let s = 1; s <= 16384; s++) {
    if (s === 16384 || t.owner[s] !== t.owner[start]) {
      const i = t.owner[start];
      if (i < t.masters.length) ranges[i].push([start, s - 1]);
      start = s;
    }
  }
  const out: NodeState[] = [];
  const seen = new Set<BackendNode>();
  const add = (n: BackendNode, role: NodeState["role"], master: string, slots: [number, number][]) => {
    seen.add(n);
    let conns = 0, inFlight = 0;
    n.forEachConn((c) => { conns++; inFlight += c.inFlight; });
    out.push({ addr: n.addr, role, master, slots, up: n.available, conns, inFlight });
  };
  t.masters.forEach((mst, i) => {
    add(mst, "master", "", ranges[i]);
    for (const r of t.replicas[i]) add(r, "replica", mst.addr, []);
  });
  for (const n of topology.allNodes()) if (!seen.has(n)) add(n, "unknown", "", []);
  return out;
}
