// /metrics and INFO from a known recording: exact counts, parseable exposition, two workers summed.

import { beforeEach, expect, test } from "bun:test";
import { COMMANDS } from "../../../src/commands/command-table.ts";
import { exposition, LE_SECONDS } from "../../../src/admin/prometheus.ts";
import { infoJson } from "../../../src/admin/server.ts";
import { bucketOf } from "../../../src/metrics/histogram.ts";
import { hotKeys } from "../../../src/metrics/hot-keys.ts";
import { buildInfo, selectSections, type InfoContext } from "../../../src/metrics/info.ts";
import { ProcessSampler } from "../../../src/metrics/process-sampler.ts";
import { ErrorKind, metrics } from "../../../src/metrics/recorder.ts";
import { slowlog } from "../../../src/metrics/slowlog.ts";
import { mergeSnapshots, takeSnapshot, type SnapshotSources } from "../../../src/metrics/snapshot.ts";
import { Stats } from "../../../src/metrics/stats.ts";
import { histogram, parseExposition, sampleValue } from "../../helpers/prometheus.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const spec = (name: string) => COMMANDS.lookup(enc(name), 0, name.length)!;
const stats = new Stats();
const sources: SnapshotSources = {
  worker: 0, stats, sampler: new ProcessSampler(stats),
  nodes: () => [
    { addr: "127.0.0.1:7000", role: "master", master: "", slots: [[0, 8191]], up: true, conns: 1, inFlight: 2 },
    { addr: "127.0.0.1:7001", role: "master", master: "", slots: [[8192, 16383]], up: false, conns: 0, inFlight: 0 },
    { addr: "127.0.0.1:7002", role: "replica", master: "127.0.0.1:7000", slots: [], up: true, conns: 0, inFlight: 0 },
  ],
  topology: () => ({ ok: true, refreshes: 3, refreshFailures: 1, changes: 2, coveredSlots: 16384 }),
  clients: () => ({ connected: 5, blocked: 0, pending: 1, outputBytes: 10, inputBytes: 0 }),
  draining: () => false,
};
const ctx: InfoContext = { port: 6379, configFile: "x.toml", maxClients: 100, percentiles: [50, 99, 99.9], worker: 0, pid: 1 };

beforeEach(() => {
  metrics.reset();
  metrics.enabled = true;
  metrics.ensureCommands(1000);
  slowlog.reset();
  hotKeys.configure(0, 100);
});

/** 1,000 GETs at 100 µs, 10 SETs at 5 ms of which 2 fail with WRONGTYPE, one refused HGET. */
function record(): void {
  metrics.now = 10_000;
  for (let i = 0; i < 1000; i++) metrics.commandDone(spec("get").id, 10_000 - 0.1, ErrorKind.NONE);
  const wrongtype = enc("-WRONGTYPE Operation against a key\r\n");
  for (let i = 0; i < 10; i++) {
    const kind = i < 2 ? metrics.errorReply(wrongtype, 0, wrongtype.length, ErrorKind.NONE) : ErrorKind.NONE;
    metrics.commandDone(spec("set").id, 10_000 - 5, kind);
  }
  const refused = enc("-ERR wrong number of arguments for 'hget' command\r\n");
  metrics.commandDone(spec("hget").id, 10_000, metrics.errorReply(refused, 0, refused.length, ErrorKind.REFUSED));
  const node = metrics.nodeId("127.0.0.1:7000");
  metrics.nodeId("127.0.0.1:7001");
  metrics.nodeId("127.0.0.1:7002");
  for (let i = 0; i < 500; i++) metrics.nodeReply(node, 10_000 - 0.05, ErrorKind.NONE);
  metrics.nodeReply(node, 10_000 - 0.05, ErrorKind.MOVED);
  metrics.nodeEvent(node, ErrorKind.TIMEOUT);
}

test("INFO commandstats, errorstats and latencystats follow the recording exactly", () => {
  record();
  const v = mergeSnapshots([takeSnapshot(sources)]);
  const text = buildInfo(v, ctx, selectSections(["commandstats", "errorstats", "latencystats"]));
  expect(text).toContain("cmdstat_get:calls=1000,usec=100000,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n");
  expect(text).toContain("cmdstat_set:calls=10,usec=50000,usec_per_call=5000.00,rejected_calls=0,failed_calls=2\r\n");
  expect(text).toContain("cmdstat_hget:calls=1,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n");
  expect(text).toContain("errorstat_WRONGTYPE:count=2\r\n");
  expect(text).toContain("errorstat_ERR:count=1\r\n");
  const high = (us: number) => {
    // The top of the value's bucket, as Redis reports "highest equivalent value".
    let b = bucketOf(us), h = us;
    while (bucketOf(h + 1) === b) h++;
    return h.toFixed(3);
  };
  expect(text).toContain(`latency_percentiles_usec_get:p50=${high(100)},p99=${high(100)},p99.9=${high(100)}\r\n`);
  expect(text).toContain(`latency_percentiles_usec_set:p50=${high(5000)},p99=${high(5000)},p99.9=${high(5000)}\r\n`);
  expect(text.startsWith("# Commandstats\r\n")).toBe(true);
});

test("INFO sections: default, all, several names, unknown ones; the keyspace is left to the nodes", () => {
  record();
  const v = mergeSnapshots([takeSnapshot(sources)]);
  const heads = (t: string) => [...t.matchAll(/^# (\w+)/gm)].map((m) => m[1]);
  expect(heads(buildInfo(v, ctx, selectSections([])))).toEqual(["Server", "Clients", "Memory", "Persistence", "Stats", "Cpu", "Errorstats", "Cluster", "Nodes"]);
  expect(heads(buildInfo(v, ctx, selectSections(["everything"])))).toContain("Latencystats");
  expect(heads(buildInfo(v, ctx, selectSections(["cpu", "server", "nosuch"])))).toEqual(["Server", "Cpu"]);
  // The keyspace is the masters' (router/fan-out.ts appends it): not a section of the proxy's own.
  expect(buildInfo(v, ctx, selectSections(["keyspace"]))).toBe("");
  const all = infoJson(v, ctx, ["all"]);
  expect(all.cluster.cluster_enabled).toBe(1);
  expect(all.stats.total_error_replies).toBe(3);
  expect(all.nodes.node0).toContain("addr=127.0.0.1:7000,role=master,slots=0-8191,state=up,connections=1");
  expect(all.nodes.node0).toContain("err_moved=1,err_timeout=1");
  expect(all.nodes.node1).toStartWith("addr=127.0.0.1:7002,role=replica,master=127.0.0.1:7000");
  expect(all.nodes.node2).toContain("state=down");
});

test("the exposition parses, and two workers' figures are summed", async () => {
  record();
  hotKeys.configure(3, 1);
  hotKeys.sample('we"ird\nke\\y', 10);
  const one = takeSnapshot(sources);
  const v = mergeSnapshots([one, { ...one, process: { ...one.process, worker: 1, pid: 2 } }]);
  const fams = await parseExposition(exposition(v, { ready: true }));
  expect(sampleValue(fams, "predixy_commands_total", { command: "get" })).toBe(2000);
  expect(sampleValue(fams, "predixy_command_failed_total", { command: "set" })).toBe(4);
  expect(sampleValue(fams, "predixy_command_rejected_total", { command: "hget" })).toBe(2);
  expect(sampleValue(fams, "predixy_errors_total", { error: "WRONGTYPE" })).toBe(4);
  expect(sampleValue(fams, "predixy_node_errors_total", { node: "127.0.0.1:7000", kind: "timeout" })).toBe(2);
  expect(sampleValue(fams, "predixy_node_up", { node: "127.0.0.1:7001" })).toBe(0);
  expect(sampleValue(fams, "predixy_node_inflight_commands", { node: "127.0.0.1:7000" })).toBe(4);
  expect(sampleValue(fams, "predixy_worker_processes")).toBe(2);
  expect(sampleValue(fams, "predixy_ready")).toBe(1);
  expect(sampleValue(fams, "predixy_hotkey_calls", { key: 'we"ird\nke\\y' })).toBe(2);

  expect(fams.predixy_command_duration_seconds.type).toBe("histogram");
  const get = histogram(fams, "predixy_command_duration_seconds", { command: "get" })!;
  expect(get.count).toBe(2000);
  expect(get.sum).toBeCloseTo(0.2, 9);
  // 100.0…µs is over the 0.0001 bound and under the next (whole µs are kept: "le" counts values under it).
  const buckets = Object.entries(get.buckets).map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), n] as const).sort((a, b) => a[0] - b[0]);
  expect(buckets.map(([le]) => le)).toEqual([...LE_SECONDS, Infinity]);
  for (const [le, n] of buckets) expect(n).toBe(le > 0.0001 ? 2000 : 0);
  expect(histogram(fams, "predixy_node_request_duration_seconds", { node: "127.0.0.1:7000" })!.count).toBe(1002);
});
