// INFO as Redis formats it, built section by section from the group's view.

import { VERSION } from "../version.ts";
import { percentile, percentiles, totalCount } from "./histogram.ts";
import { ERROR_KIND_NAMES } from "./recorder.ts";
import type { GroupView, NodeFigures } from "./snapshot.ts";

export type InfoRows = [string, string | number][];

/** Settings INFO shows that are not figures. */
export interface InfoContext {
  port: number;
  configFile: string;
  maxClients: number;
  /** latency-tracking-info-percentiles, e.g. [50, 99, 99.9]. */
  percentiles: number[];
  /** The process answering (with workers, the one the client's connection landed on). */
  worker: number;
  pid: number;
}

/** A section: rows from the view. */
export type InfoSection = (v: GroupView, ctx: InfoContext) => InfoRows;

const human = (n: number) =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)}G` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)}M` : `${(n / 1024).toFixed(2)}K`;
const sum = (v: GroupView, f: (p: GroupView["processes"][number]) => number) => v.processes.reduce((a, p) => a + f(p), 0);

export const INFO_SECTIONS: Record<string, InfoSection> = {
  server: (v, ctx) => {
    const first = v.processes[0];
    const uptime = Math.max(0, Math.floor((v.takenAt - first.startedAt) / 1000));
    return [
      ["redis_version", "7.0.0"], ["predixy_version", VERSION], ["redis_mode", "standalone"],
      ["arch_bits", 64], ["multiplexing_api", "epoll"], ["process_id", first.pid],
      ["worker_processes", v.processes.length], ["worker_id", ctx.worker], ["worker_process_id", ctx.pid], ["tcp_port", ctx.port],
      ["uptime_in_seconds", uptime], ["uptime_in_days", Math.floor(uptime / 86400)], ["config_file", ctx.configFile],
    ];
  },
  // blocked_clients: in a blocking call or WAIT, each on a pinned connection of its own.
  clients: (v, ctx) => [
    ["connected_clients", v.clients.connected], ["maxclients", ctx.maxClients * v.processes.length],
    ["blocked_clients", v.clients.blocked], ["tracking_clients", 0],
    ["pending_commands", v.clients.pending], ["clients_output_bytes", v.clients.outputBytes],
    ["clients_input_bytes", v.clients.inputBytes],
    ["clients_paused_for_memory", v.stats.clients_paused_for_memory], ["parked_commands", v.stats.parked_commands],
  ],
  // used_memory is the proxy's resident set: what redis-cli --stat and dashboards read.
  memory: (v) => {
    const rss = sum(v, (p) => p.rss);
    return [
      ["used_memory", rss], ["used_memory_human", human(rss)], ["used_memory_rss", rss], ["used_memory_rss_human", human(rss)],
      ["used_memory_heap", sum(v, (p) => p.heapUsed)], ["used_memory_heap_total", sum(v, (p) => p.heapTotal)],
      ["used_memory_buffers", sum(v, (p) => p.buffers)], ["maxmemory", 0],
      // What clients make predixy hold, and its budget (performance.max_memory), as Redis 7 names them.
      ["mem_clients_normal", v.stats.mem_clients_normal], ["maxmemory_clients", v.stats.maxmemory_clients],
    ];
  },
  persistence: () => [["loading", 0]],
  stats: (v) => {
    const s = v.stats;
    return [
      ["total_connections_received", s.total_connections_received], ["total_commands_processed", s.total_commands_processed],
      ["instantaneous_ops_per_sec", sum(v, (p) => p.opsPerSec)],
      ["total_net_input_bytes", s.total_net_input_bytes], ["total_net_output_bytes", s.total_net_output_bytes],
      ["instantaneous_input_kbps", sum(v, (p) => p.inKbps).toFixed(2)], ["instantaneous_output_kbps", sum(v, (p) => p.outKbps).toFixed(2)],
      ["rejected_connections", s.rejected_connections], ["total_error_replies", v.totalErrorReplies],
      ["protocol_errors", s.protocol_errors],
      ["client_query_buffer_limit_disconnections", s.client_query_buffer_limit_disconnections],
      ["client_output_buffer_limit_disconnections", s.client_output_buffer_limit_disconnections],
      ["evicted_clients", s.evicted_clients], ["client_memory_pauses", s.client_memory_pauses],
      ["cluster_redirects", s.cluster_redirects], ["cluster_retries", s.cluster_retries],
      ["streamed_uploads", s.streamed_uploads], ["streamed_replies", s.streamed_replies],
      ["slowlog_dropped", s.slowlog_dropped],
      ["topology_refreshes", v.topology.refreshes], ["topology_refresh_failures", v.topology.refreshFailures],
      ["topology_changes", v.topology.changes],
      ["eventloop_delay_mean_usec", Math.max(...v.processes.map((p) => p.loopDelayMeanUs))],
      ["eventloop_delay_max_usec", Math.max(...v.processes.map((p) => p.loopDelayMaxUs))],
    ];
  },
  cpu: (v) => [
    ["used_cpu_sys", (sum(v, (p) => p.cpuSystemUs) / 1e6).toFixed(6)],
    ["used_cpu_user", (sum(v, (p) => p.cpuUserUs) / 1e6).toFixed(6)],
  ],
  commandstats: (v) => v.commands.filter((c) => c.calls + c.rejected > 0).map((c) => [
    `cmdstat_${c.name}`,
    `calls=${c.calls},usec=${Math.round(c.usec)},usec_per_call=${(c.calls ? c.usec / c.calls : 0).toFixed(2)},` +
      `rejected_calls=${c.rejected},failed_calls=${c.failed}`,
  ]),
  errorstats: (v) => v.errorstats.map(([prefix, n]) => [`errorstat_${prefix}`, `count=${n}`]),
  latencystats: (v, ctx) => v.commands.filter((c) => c.calls > 0).map((c) => [
    `latency_percentiles_usec_${c.name}`,
    percentiles(c.hist, ctx.percentiles).map((x, i) => `p${ctx.percentiles[i]}=${x.toFixed(3)}`).join(","),
  ]),
  // cluster_enabled:1, as the cluster façade answers CLUSTER SLOTS and friends (router/cluster-facade.ts).
  cluster: (v) => [
    ["cluster_enabled", 1], ["cluster_state", v.topology.ok && v.topology.coveredSlots === 16384 ? "ok" : "fail"],
    ["cluster_slots_covered", v.topology.coveredSlots],
    ["cluster_known_masters", v.nodes.filter((n) => n.role === "master").length],
    ["cluster_known_replicas", v.nodes.filter((n) => n.role === "replica").length],
  ],
  nodes: (v) => v.nodes.map((n, i) => [`node${i}`, describeNode(n)]),
  hotkeys: (v) => {
    if (v.hotkeys === null) return [["hotkeys_enabled", 0]];
    return [
      ["hotkeys_enabled", 1],
      ...v.hotkeys.calls.map((h, i): [string, string] => [`hotkey_calls_${i}`, `key=${safe(h.key)},calls=${Math.round(h.value)},error=${Math.round(h.error)}`]),
      ...v.hotkeys.bytes.map((h, i): [string, string] => [`hotkey_bytes_${i}`, `key=${safe(h.key)},bytes=${Math.round(h.value)},error=${Math.round(h.error)}`]),
    ];
  },
};

/** What INFO with no argument (or "default") shows, in Redis' order; "all" adds the rest. */
const DEFAULT = ["server", "clients", "memory", "persistence", "stats", "cpu", "errorstats", "cluster", "nodes", "keyspace"];
const ALL = ["server", "clients", "memory", "persistence", "stats", "cpu", "commandstats", "errorstats", "latencystats",
  "cluster", "nodes", "hotkeys", "keyspace"];

/** The section names `args` (INFO's arguments, lower-cased) select, in output order. */
export function selectSections(args: string[]): string[] {
  if (args.length === 0) return DEFAULT;
  const wanted = new Set<string>();
  for (const a of args) {
    if (a === "default") DEFAULT.forEach((s) => wanted.add(s));
    else if (a === "all" || a === "everything") ALL.forEach((s) => wanted.add(s));
    else wanted.add(a);
  }
  return ALL.filter((s) => wanted.has(s));
}

/**
 * INFO text for `sections`; one that is not the proxy's own (`keyspace`, which the router gathers
 * from the masters; unknown names) is left out, as Redis leaves out unknown ones.
 */
export function buildInfo(v: GroupView, ctx: InfoContext, sections: string[]): string {
  const parts: string[] = [];
  for (const name of sections) {
    const rows = INFO_SECTIONS[name]?.(v, ctx);
    if (rows === undefined) continue;
    parts.push(`# ${name[0].toUpperCase()}${name.slice(1)}\r\n${rows.map(([k, val]) => `${k}:${val}\r\n`).join("")}`);
  }
  return parts.join("\r\n");
}

/** One node as an INFO line (like Redis' slaveN lines). */
function describeNode(n: NodeFigures & { hist: Float64Array }): string {
  const total = totalCount(n.hist);
  const errors = n.errors.reduce((a, b) => a + b, 0);
  const byKind = n.errors.map((x, k) => (x > 0 ? `,err_${ERROR_KIND_NAMES[k]}=${x}` : "")).join("");
  const slots = n.slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(" ");
  return `addr=${n.addr},role=${n.role}${n.master ? `,master=${n.master}` : ""},slots=${slots || "-"},` +
    `state=${n.up ? "up" : "down"},connections=${n.conns},pinned=${n.pinned},inflight=${n.inFlight},calls=${n.calls},` +
    `p50_usec=${percentile(n.hist, 50, total)},p99_usec=${percentile(n.hist, 99, total)},errors=${errors}${byKind}`;
}

/** Keys may hold anything: keep INFO's line and field syntax intact. */
function safe(key: string): string {
  return JSON.stringify(key).slice(1, -1).replace(/[,:]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}
