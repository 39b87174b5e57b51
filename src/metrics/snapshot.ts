// A process' figures as one plain, cloneable object, and the sum of several (the worker group's view).

import { commandIdLimit, specById } from "../commands/command-table.ts";
import { addSparse, mergeInto, newHistogram, toSparse, type SparseHistogram } from "./histogram.ts";
import { hotKeys, type HotKey } from "./hot-keys.ts";
import type { ProcessSampler } from "./process-sampler.ts";
import { ERROR_KINDS, metrics } from "./recorder.ts";
import { slowlog, type SlowEntry } from "./slowlog.ts";
import type { Stats } from "./stats.ts";

/** A backend node as the topology and connections see it (gauges, read when a snapshot is taken). */
export interface NodeState {
  addr: string;
  role: "master" | "replica" | "unknown";
  /** A replica's master; "" for a master. */
  master: string;
  /** Slot ranges a master serves, [first, last]. */
  slots: [number, number][];
  /** False while connects to it fail (backing off). */
  up: boolean;
  /** Open shared connections. */
  conns: number;
  /** Commands written or queued, not answered yet. */
  inFlight: number;
}

export interface TopologyState {
  /** The last refresh obtained a table. */
  ok: boolean;
  refreshes: number;
  refreshFailures: number;
  changes: number;
  coveredSlots: number;
}

export interface ClientState {
  connected: number;
  /** In a blocking call or WAIT. */
  blocked: number;
  /** Commands read and not answered yet, over all clients. */
  pending: number;
  /** Reply bytes queued, over all clients. */
  outputBytes: number;
  /** Bytes of unfinished requests held, over all clients. */
  inputBytes: number;
}

/** What a snapshot reads beyond the recorders: wired by main.ts. */
export interface SnapshotSources {
  worker: number;
  stats: Stats;
  sampler: ProcessSampler;
  nodes(): NodeState[];
  topology(): TopologyState;
  clients(): ClientState;
  draining(): boolean;
}

export interface CommandFigures {
  name: string;
  calls: number;
  usec: number;
  failed: number;
  rejected: number;
  redirects: number;
  retries: number;
  /** By ErrorKind. */
  errors: number[];
}

export interface NodeFigures extends NodeState {
  pinned: number;
  calls: number;
  errors: number[];
  ups: number;
  downs: number;
  bytesIn: number;
  bytesOut: number;
}

export interface ProcessFigures {
  worker: number;
  pid: number;
  startedAt: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** ArrayBuffer bytes: connection buffers, mostly. */
  buffers: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  loopDelayMeanUs: number;
  loopDelayMaxUs: number;
  opsPerSec: number;
  inKbps: number;
  outKbps: number;
  connectedClients: number;
}

/** One process' figures; histograms sparse so that it travels between processes cheaply. */
export interface Snapshot {
  takenAt: number;
  process: ProcessFigures;
  stats: Record<string, number>;
  clients: ClientState;
  topology: TopologyState;
  draining: boolean;
  totalErrorReplies: number;
  commands: (CommandFigures & { hist: SparseHistogram })[];
  all: SparseHistogram;
  errorstats: [string, number][];
  nodes: (NodeFigures & { hist: SparseHistogram })[];
  slowlog: SlowEntry[];
  hotkeys: { calls: HotKey[]; bytes: HotKey[] } | null;
}

/**
 * This process' figures. Without `detail`, the per-command histograms, the slowlog and the hot
 * keys are left out (INFO's default sections, which clients such as ioredis send on every
 * connect, need none of them): a snapshot then costs a tenth as much.
 */
export function takeSnapshot(src: SnapshotSources, detail = true): Snapshot {
  const m = metrics;
  const commands: Snapshot["commands"] = [];
  // Every command together: summed here rather than recorded, to keep the hot path to one histogram.
  const all = newHistogram();
  const limit = Math.min(commandIdLimit(), m.cmdCalls.length);
  for (let id = 1; id < limit; id++) {
    const failedOrRejected = m.cmdFailed[id] + m.cmdRejected[id];
    if (m.cmdCalls[id] === 0 && failedOrRejected === 0) continue;
    const h = detail ? m.cmdHist[id] : undefined;
    if (h !== undefined) mergeInto(all, h);
    commands.push({
      name: specById(id)!.name, calls: m.cmdCalls[id], usec: m.cmdUsec[id], failed: m.cmdFailed[id], rejected: m.cmdRejected[id],
      redirects: m.cmdRedirects[id], retries: m.cmdRetries[id],
      errors: Array.from(m.cmdErrors.subarray(id * ERROR_KINDS, (id + 1) * ERROR_KINDS)),
      hist: h === undefined ? NO_SAMPLES : toSparse(h),
    });
  }
  const states = new Map(src.nodes().map((n) => [n.addr, n]));
  const nodes: Snapshot["nodes"] = [];
  m.nodeAddrs.forEach((addr, id) => {
    const st = states.get(addr);
    // A node that left the table stays listed while it has figures to show.
    if (st === undefined && m.nodeCalls[id] === 0) return;
    nodes.push({
      ...(st ?? { addr, role: "unknown" as const, master: "", slots: [], up: false, conns: 0, inFlight: 0 }),
      pinned: m.nodePinned[id], calls: m.nodeCalls[id],
      errors: Array.from(m.nodeErrors.subarray(id * ERROR_KINDS, (id + 1) * ERROR_KINDS)),
      ups: m.nodeUps[id], downs: m.nodeDowns[id], bytesIn: m.nodeBytesIn[id], bytesOut: m.nodeBytesOut[id],
      hist: toSparse(m.nodeHist[id]),
    });
  });
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  const rates = src.sampler.read();
  const s = src.stats;
  const clients = src.clients();
  return {
    takenAt: Date.now(),
    process: {
      worker: src.worker, pid: process.pid, startedAt: s.startedAt, rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal,
      buffers: mem.arrayBuffers, cpuUserUs: cpu.user, cpuSystemUs: cpu.system,
      loopDelayMeanUs: rates.loopDelayMeanUs, loopDelayMaxUs: rates.loopDelayMaxUs,
      opsPerSec: rates.opsPerSec, inKbps: rates.inKbps, outKbps: rates.outKbps, connectedClients: clients.connected,
    },
    stats: {
      total_connections_received: s.totalConnections, rejected_connections: s.rejectedConnections,
      total_commands_processed: s.commands, protocol_errors: s.protocolErrors,
      client_query_buffer_limit_disconnections: s.inputLimitDisconnections,
      client_output_buffer_limit_disconnections: s.outputLimitDisconnections,
      cluster_redirects: s.redirects, cluster_retries: s.retries,
      streamed_uploads: s.streamedUploads, streamed_replies: s.streamedReplies, slowlog_dropped: slowlog.dropped,
      total_net_input_bytes: s.bytesIn, total_net_output_bytes: s.bytesOut,
      // The memory budget (client/memory-budget.ts) and commands waiting for a node (router/retry.ts).
      mem_clients_normal: s.clientMemory, maxmemory_clients: s.maxClientMemory,
      evicted_clients: s.evictedClients, client_memory_pauses: s.memoryPauses,
      clients_paused_for_memory: s.clientsPausedForMemory, parked_commands: s.parkedCommands,
    },
    clients,
    topology: src.topology(),
    draining: src.draining(),
    totalErrorReplies: m.totalErrorReplies,
    commands,
    all: toSparse(all),
    errorstats: [...m.errorPrefixes.entries()],
    nodes,
    slowlog: detail ? slowlog.get(-1) : [],
    hotkeys: detail && hotKeys.k > 0 ? { calls: hotKeys.top("calls"), bytes: hotKeys.top("bytes") } : null,
  };
}

const NO_SAMPLES: SparseHistogram = { idx: new Uint16Array(0), n: new Float64Array(0) };
/** An empty histogram shared by every command without samples in a view: read, never written. */
const NO_DENSE = newHistogram();

/** The group's figures: sums over processes, histograms dense. */
export interface GroupView {
  takenAt: number;
  processes: ProcessFigures[];
  stats: Record<string, number>;
  clients: ClientState;
  /** The first process' topology state (each keeps its own; they converge). */
  topology: TopologyState;
  draining: boolean;
  totalErrorReplies: number;
  commands: (CommandFigures & { hist: Float64Array })[];
  all: Float64Array;
  errorstats: [string, number][];
  nodes: (NodeFigures & { hist: Float64Array })[];
  slowlog: SlowEntry[];
  hotkeys: { calls: HotKey[]; bytes: HotKey[] } | null;
}

const sumInto = (a: number[], b: number[]) => b.forEach((x, i) => { a[i] = (a[i] ?? 0) + x; });

/** Sums snapshots (the first is the reference for topology and node roles). */
export function mergeSnapshots(snaps: Snapshot[]): GroupView {
  const first = snaps[0];
  const stats: Record<string, number> = {};
  const clients: ClientState = { connected: 0, blocked: 0, pending: 0, outputBytes: 0, inputBytes: 0 };
  const commands = new Map<string, CommandFigures & { hist: Float64Array }>();
  const nodes = new Map<string, NodeFigures & { hist: Float64Array }>();
  const errorstats = new Map<string, number>();
  const all = newHistogram();
  const slow: SlowEntry[] = [];
  const hot = { calls: new Map<string, HotKey>(), bytes: new Map<string, HotKey>() };
  let totalErrorReplies = 0;
  for (const s of snaps) {
    for (const [k, v] of Object.entries(s.stats)) stats[k] = (stats[k] ?? 0) + v;
    clients.connected += s.clients.connected;
    clients.blocked += s.clients.blocked;
    clients.pending += s.clients.pending;
    clients.outputBytes += s.clients.outputBytes;
    clients.inputBytes += s.clients.inputBytes;
    totalErrorReplies += s.totalErrorReplies;
    addSparse(all, s.all);
    for (const c of s.commands) {
      let t = commands.get(c.name);
      if (t === undefined) {
        t = { ...c, errors: c.errors.slice(), hist: NO_DENSE };
        commands.set(c.name, t);
      } else {
        t.calls += c.calls; t.usec += c.usec; t.failed += c.failed; t.rejected += c.rejected;
        t.redirects += c.redirects; t.retries += c.retries;
        sumInto(t.errors, c.errors);
      }
      // Dense histograms only for commands with samples here (snapshots without detail have none).
      if (c.hist.idx.length > 0) {
        if (t.hist === NO_DENSE) t.hist = newHistogram();
        addSparse(t.hist, c.hist);
      }
    }
    for (const n of s.nodes) {
      let t = nodes.get(n.addr);
      if (t === undefined) {
        t = { ...n, slots: n.slots, errors: n.errors.slice(), hist: newHistogram() };
        nodes.set(n.addr, t);
      } else {
        t.conns += n.conns; t.inFlight += n.inFlight; t.pinned += n.pinned; t.calls += n.calls;
        t.ups += n.ups; t.downs += n.downs; t.bytesIn += n.bytesIn; t.bytesOut += n.bytesOut;
        t.up &&= n.up;
        sumInto(t.errors, n.errors);
      }
      addSparse(t.hist, n.hist);
    }
    for (const [k, v] of s.errorstats) errorstats.set(k, (errorstats.get(k) ?? 0) + v);
    // Ids are per process: with workers, worker w's entry i becomes i * 64 + w, unique in the group.
    for (const e of s.slowlog) slow.push(snaps.length === 1 ? e : { ...e, id: e.id * 64 + s.process.worker });
    if (s.hotkeys) {
      for (const by of ["calls", "bytes"] as const) {
        for (const h of s.hotkeys[by]) {
          const t = hot[by].get(h.key);
          if (t) { t.value += h.value; t.error += h.error; } else hot[by].set(h.key, { ...h });
        }
      }
    }
  }
  slow.sort((a, b) => b.time - a.time || b.id - a.id);
  const top = (m: Map<string, HotKey>) => [...m.values()].sort((a, b) => b.value - a.value);
  return {
    takenAt: Math.max(...snaps.map((s) => s.takenAt)),
    processes: snaps.map((s) => s.process),
    stats, clients, topology: first.topology, draining: snaps.some((s) => s.draining), totalErrorReplies,
    commands: [...commands.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    all,
    errorstats: [...errorstats.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    nodes: [...nodes.values()].sort(byRoleThenAddr),
    slowlog: slow,
    hotkeys: first.hotkeys ? { calls: top(hot.calls), bytes: top(hot.bytes) } : null,
  };
}

/** Masters (by first slot) each followed by its replicas. */
function byRoleThenAddr(a: NodeFigures, b: NodeFigures): number {
  const key = (n: NodeFigures) => n.role === "master" ? `${n.addr}` : `${n.master}~${n.addr}`;
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}
