// The group's figures in the Prometheus text exposition format (version 0.0.4).

import { bucketHigh, BUCKETS, totalCount } from "../metrics/histogram.ts";
import { ERROR_KIND_NAMES } from "../metrics/recorder.ts";
import type { GroupView } from "../metrics/snapshot.ts";
import { VERSION } from "../version.ts";

/** Histogram bounds in seconds. Between 256 µs and these bounds the log-linear buckets are <= 0.8% wide. */
export const LE_SECONDS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
  0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Extra state the exposition shows beside the figures. */
export interface ExpositionExtras {
  ready: boolean;
}

/** For each bound, the first bucket not wholly under it: buckets below it count toward `le`. */
const LE_CUT = LE_SECONDS.map((le) => {
  let i = 0;
  while (i < BUCKETS && bucketHigh(i) < le * 1e6) i++;
  return i;
});
const LE_TEXT = LE_SECONDS.map(String);

type Labels = Record<string, string>;

class Writer {
  readonly lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Labels, value: number): void {
    this.lines.push(`${name}${fmtLabels(labels)} ${fmtValue(value)}`);
  }

  /** One histogram series: cumulative `le` buckets, `_sum` (seconds) and `_count`. */
  histogram(name: string, labels: Labels, h: Float64Array, sumSeconds: number): void {
    const total = totalCount(h);
    const base = fmtLabels(labels);
    const head = `${name}_bucket${base.slice(0, -1)}${base === "" ? "{" : ","}le="`;
    let i = 0, seen = 0;
    for (let k = 0; k < LE_CUT.length; k++) {
      for (const cut = LE_CUT[k]; i < cut; i++) seen += h[i];
      this.lines.push(`${head}${LE_TEXT[k]}"} ${seen}`);
    }
    this.lines.push(`${head}+Inf"} ${total}`, `${name}_sum${base} ${fmtValue(sumSeconds)}`, `${name}_count${base} ${total}`);
  }
}

const NEEDS_ESCAPE = /[\\"\n]/;

function fmtLabels(l: Labels): string {
  let out = "";
  for (const k in l) {
    let v = l[k];
    if (NEEDS_ESCAPE.test(v)) v = v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    out += `${out === "" ? "{" : ","}${k}="${v}"`;
  }
  return out === "" ? "" : `${out}}`;
}

function fmtValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  return String(v);
}

/** Mean bucket value × count: the best sum a histogram alone can give (for nodes, whose sum is not kept). */
function estimatedSumSeconds(h: Float64Array): number {
  let s = 0;
  for (let i = 0; i < BUCKETS; i++) if (h[i] !== 0) s += h[i] * bucketHigh(i);
  return s / 1e6;
}

export function exposition(v: GroupView, x: ExpositionExtras): string {
  const w = new Writer();
  const sum = (f: (p: GroupView["processes"][number]) => number) => v.processes.reduce((a, p) => a + f(p), 0);
  const s = v.stats;

  w.family("predixy_info", "gauge", "Always 1; the proxy's version.");
  w.sample("predixy_info", { version: VERSION }, 1);
  w.family("predixy_ready", "gauge", "1 when the topology is known and the proxy is not draining (as /readyz).");
  w.sample("predixy_ready", {}, x.ready ? 1 : 0);
  w.family("predixy_worker_processes", "gauge", "Processes sharing the port (performance.worker_threads) that answered.");
  w.sample("predixy_worker_processes", {}, v.processes.length);
  w.family("process_start_time_seconds", "gauge", "Start time of the first process, Unix seconds.");
  w.sample("process_start_time_seconds", {}, v.processes[0].startedAt / 1000);
  w.family("process_resident_memory_bytes", "gauge", "Resident set size, summed over processes.");
  w.sample("process_resident_memory_bytes", {}, sum((p) => p.rss));
  w.family("process_cpu_seconds_total", "counter", "CPU time, summed over processes.");
  w.sample("process_cpu_seconds_total", {}, sum((p) => p.cpuUserUs + p.cpuSystemUs) / 1e6);
  w.family("predixy_cpu_seconds_total", "counter", "CPU time by mode, summed over processes.");
  w.sample("predixy_cpu_seconds_total", { mode: "user" }, sum((p) => p.cpuUserUs) / 1e6);
  w.sample("predixy_cpu_seconds_total", { mode: "system" }, sum((p) => p.cpuSystemUs) / 1e6);
  w.family("predixy_memory_bytes", "gauge", "JavaScript heap in use and reserved, and ArrayBuffer bytes (connection buffers).");
  w.sample("predixy_memory_bytes", { area: "heap_used" }, sum((p) => p.heapUsed));
  w.sample("predixy_memory_bytes", { area: "heap_total" }, sum((p) => p.heapTotal));
  w.sample("predixy_memory_bytes", { area: "buffers" }, sum((p) => p.buffers));
  w.family("predixy_event_loop_delay_seconds", "gauge", "How late a 100 ms timer fires over the last 1.6 s: mean, and max over processes.");
  w.sample("predixy_event_loop_delay_seconds", { stat: "mean" }, Math.max(...v.processes.map((p) => p.loopDelayMeanUs)) / 1e6);
  w.sample("predixy_event_loop_delay_seconds", { stat: "max" }, Math.max(...v.processes.map((p) => p.loopDelayMaxUs)) / 1e6);

  w.family("predixy_connected_clients", "gauge", "Client connections open.");
  w.sample("predixy_connected_clients", {}, v.clients.connected);
  w.family("predixy_client_connections_total", "counter", "Client connections accepted, and those refused at max_clients.");
  w.sample("predixy_client_connections_total", { result: "accepted" }, s.total_connections_received - s.rejected_connections);
  w.sample("predixy_client_connections_total", { result: "rejected" }, s.rejected_connections);
  w.family("predixy_client_pending_commands", "gauge", "Commands read from clients and not answered yet.");
  w.sample("predixy_client_pending_commands", {}, v.clients.pending);
  w.family("predixy_client_buffer_bytes", "gauge", "Bytes held for clients: replies not yet written, unfinished requests.");
  w.sample("predixy_client_buffer_bytes", { direction: "output" }, v.clients.outputBytes);
  w.sample("predixy_client_buffer_bytes", { direction: "input" }, v.clients.inputBytes);
  w.family("predixy_client_disconnections_total", "counter", "Clients closed by the proxy, by reason.");
  w.sample("predixy_client_disconnections_total", { reason: "protocol_error" }, s.protocol_errors);
  w.sample("predixy_client_disconnections_total", { reason: "input_limit" }, s.client_query_buffer_limit_disconnections);
  w.sample("predixy_client_disconnections_total", { reason: "output_limit" }, s.client_output_buffer_limit_disconnections);
  w.family("predixy_net_bytes_total", "counter", "Bytes read from clients (in) and replies queued for them (out).");
  w.sample("predixy_net_bytes_total", { direction: "in" }, s.total_net_input_bytes);
  w.sample("predixy_net_bytes_total", { direction: "out" }, s.total_net_output_bytes);

  w.family("predixy_commands_processed_total", "counter", "Commands read from clients (INFO's total_commands_processed).");
  w.sample("predixy_commands_processed_total", {}, s.total_commands_processed);
  w.family("predixy_error_replies_total", "counter", "Error replies sent to clients.");
  w.sample("predixy_error_replies_total", {}, v.totalErrorReplies);
  w.family("predixy_errors_total", "counter", "Error replies sent to clients, by their first word (INFO errorstats).");
  for (const [prefix, n] of v.errorstats) w.sample("predixy_errors_total", { error: prefix }, n);
  w.family("predixy_redirects_total", "counter", "MOVED/ASK redirects followed.");
  w.sample("predixy_redirects_total", {}, s.cluster_redirects);
  w.family("predixy_retries_total", "counter", "Commands resent after TRYAGAIN, CLUSTERDOWN, LOADING or an unreachable node.");
  w.sample("predixy_retries_total", {}, s.cluster_retries);

  w.family("predixy_commands_total", "counter", "Commands answered, by command (subcommands as container|sub).");
  for (const c of v.commands) w.sample("predixy_commands_total", { command: c.name }, c.calls);
  w.family("predixy_command_failed_total", "counter", "Commands answered with an error after being run or sent.");
  for (const c of v.commands) w.sample("predixy_command_failed_total", { command: c.name }, c.failed);
  w.family("predixy_command_rejected_total", "counter", "Commands refused by the proxy without being run.");
  for (const c of v.commands) w.sample("predixy_command_rejected_total", { command: c.name }, c.rejected);
  w.family("predixy_command_errors_total", "counter", "Commands answered with an error, by command and kind.");
  for (const c of v.commands) c.errors.forEach((n, k) => { if (n > 0) w.sample("predixy_command_errors_total", { command: c.name, kind: ERROR_KIND_NAMES[k] }, n); });
  w.family("predixy_command_redirects_total", "counter", "MOVED/ASK redirects followed, by command.");
  for (const c of v.commands) w.sample("predixy_command_redirects_total", { command: c.name }, c.redirects);
  w.family("predixy_command_retries_total", "counter", "Retries, by command.");
  for (const c of v.commands) w.sample("predixy_command_retries_total", { command: c.name }, c.retries);
  w.family("predixy_command_duration_seconds", "histogram", "Client-observed latency: from the command's arrival to its reply being queued.");
  for (const c of v.commands) w.histogram("predixy_command_duration_seconds", { command: c.name }, c.hist, c.usec / 1e6);

  w.family("predixy_topology_refreshes_total", "counter", "CLUSTER SLOTS refreshes tried (first process).");
  w.sample("predixy_topology_refreshes_total", {}, v.topology.refreshes);
  w.family("predixy_topology_refresh_failures_total", "counter", "Refreshes that reached no node (first process).");
  w.sample("predixy_topology_refresh_failures_total", {}, v.topology.refreshFailures);
  w.family("predixy_topology_changes_total", "counter", "Slot-map changes seen, the first discovery included (first process).");
  w.sample("predixy_topology_changes_total", {}, v.topology.changes);
  w.family("predixy_cluster_slots_covered", "gauge", "Hash slots the current table serves (of 16384).");
  w.sample("predixy_cluster_slots_covered", {}, v.topology.coveredSlots);

  w.family("predixy_node_info", "gauge", "Always 1 per known node, with its role and (replicas) master.");
  for (const n of v.nodes) w.sample("predixy_node_info", { node: n.addr, role: n.role, master: n.master }, 1);
  w.family("predixy_node_up", "gauge", "0 while connects to the node fail (backing off).");
  for (const n of v.nodes) w.sample("predixy_node_up", { node: n.addr }, n.up ? 1 : 0);
  w.family("predixy_node_slots", "gauge", "Hash slots the node serves as master.");
  for (const n of v.nodes) w.sample("predixy_node_slots", { node: n.addr }, n.slots.reduce((a, [x, y]) => a + y - x + 1, 0));
  w.family("predixy_node_connections", "gauge", "Open backend connections, shared (multiplexed) or pinned to one client.");
  for (const n of v.nodes) {
    w.sample("predixy_node_connections", { node: n.addr, type: "shared" }, n.conns);
    w.sample("predixy_node_connections", { node: n.addr, type: "pinned" }, n.pinned);
  }
  w.family("predixy_node_inflight_commands", "gauge", "Commands queued for or written to the node, not answered yet.");
  for (const n of v.nodes) w.sample("predixy_node_inflight_commands", { node: n.addr }, n.inFlight);
  w.family("predixy_node_requests_total", "counter", "Replies received from the node.");
  for (const n of v.nodes) w.sample("predixy_node_requests_total", { node: n.addr }, n.calls);
  w.family("predixy_node_errors_total", "counter", "Error replies and failures at the node, by kind.");
  for (const n of v.nodes) n.errors.forEach((e, k) => { if (k > 0) w.sample("predixy_node_errors_total", { node: n.addr, kind: ERROR_KIND_NAMES[k] }, e); });
  w.family("predixy_node_state_changes_total", "counter", "Transitions of the node to down (connect failed) and back up.");
  for (const n of v.nodes) {
    w.sample("predixy_node_state_changes_total", { node: n.addr, to: "down" }, n.downs);
    w.sample("predixy_node_state_changes_total", { node: n.addr, to: "up" }, n.ups);
  }
  w.family("predixy_node_bytes_total", "counter", "Bytes written to (out) and read from (in) the node.");
  for (const n of v.nodes) {
    w.sample("predixy_node_bytes_total", { node: n.addr, direction: "out" }, n.bytesOut);
    w.sample("predixy_node_bytes_total", { node: n.addr, direction: "in" }, n.bytesIn);
  }
  w.family("predixy_node_request_duration_seconds", "histogram", "Per node: from the command's write to its reply (_sum estimated from the buckets).");
  for (const n of v.nodes) w.histogram("predixy_node_request_duration_seconds", { node: n.addr }, n.hist, estimatedSumSeconds(n.hist));

  w.family("predixy_slowlog_length", "gauge", "Entries in the slowlog, over processes.");
  w.sample("predixy_slowlog_length", {}, v.slowlog.length);
  if (v.hotkeys !== null) {
    w.family("predixy_hotkey_calls", "gauge", "Sampled estimate of calls on the hottest keys since start or RESETSTAT.");
    for (const h of v.hotkeys.calls) w.sample("predixy_hotkey_calls", { key: h.key }, Math.round(h.value));
    w.family("predixy_hotkey_bytes", "gauge", "Sampled estimate of bytes (request and reply) moved for the heaviest keys.");
    for (const h of v.hotkeys.bytes) w.sample("predixy_hotkey_bytes", { key: h.key }, Math.round(h.value));
  }
  w.lines.push("");
  return w.lines.join("\n");
}
