// Recording microbenchmarks: what one completed command and one node reply cost the hot path (mitata).

import { bench, do_not_optimize, group, run } from "mitata";
import { exposition } from "../src/admin/prometheus.ts";
import { bucketOf } from "../src/metrics/histogram.ts";
import { HotKeys } from "../src/metrics/hot-keys.ts";
import { ProcessSampler } from "../src/metrics/process-sampler.ts";
import { ErrorKind, Metrics, metrics } from "../src/metrics/recorder.ts";
import { mergeSnapshots, takeSnapshot, type NodeState } from "../src/metrics/snapshot.ts";
import { Stats } from "../src/metrics/stats.ts";

const on = new Metrics(512);
const off = new Metrics(512);
off.enabled = false;
const node = on.nodeId("127.0.0.1:7000");
off.nodeId("127.0.0.1:7000");
// Latencies spread like a real run (50 µs – 5 ms), cycled so the branch predictor cannot learn one bucket.
const starts = Float64Array.from({ length: 1024 }, (_, i) => 1000 - (0.05 + ((i * 7919) % 4950) / 1000));
const ids = Int32Array.from({ length: 1024 }, (_, i) => 1 + ((i * 31) % 40));
on.now = off.now = 1000;
let k = 0;

group("per completed command (1,000 calls)", () => {
  bench("baseline: loop only", () => {
    let acc = 0;
    for (let i = 0; i < 1000; i++) acc += ids[(k + i) & 1023] + starts[(k + i) & 1023];
    k++;
    return do_not_optimize(acc);
  });
  bench("commandDone, recording on", () => {
    let slow = 0;
    for (let i = 0; i < 1000; i++) if (on.commandDone(ids[(k + i) & 1023], starts[(k + i) & 1023], ErrorKind.NONE)) slow++;
    k++;
    return do_not_optimize(slow);
  });
  bench("commandDone, recording off", () => {
    let slow = 0;
    for (let i = 0; i < 1000; i++) if (off.commandDone(ids[(k + i) & 1023], starts[(k + i) & 1023], ErrorKind.NONE)) slow++;
    k++;
    return do_not_optimize(slow);
  });
});

group("per node reply (1,000 calls)", () => {
  bench("nodeReply, recording on", () => {
    for (let i = 0; i < 1000; i++) on.nodeReply(node, starts[(k + i) & 1023], ErrorKind.NONE);
    k++;
  });
  bench("nodeReply, recording off", () => {
    for (let i = 0; i < 1000; i++) off.nodeReply(node, starts[(k + i) & 1023], ErrorKind.NONE);
    k++;
  });
});

group("bucket index (1,000 values)", () => {
  bench("bucketOf", () => {
    let acc = 0;
    for (let i = 0; i < 1000; i++) acc += bucketOf((1000 - starts[(k + i) & 1023]) * 1000);
    k++;
    return do_not_optimize(acc);
  });
});

// Hot keys: the countdown is all a command pays; one in `sampleEvery` also decodes its key and updates the lists.
const hot = new HotKeys();
hot.configure(16, 100);
const keys = Array.from({ length: 10_000 }, (_, i) => `key:${i % 97 === 0 ? 0 : i}`);
group("hot keys, 1,000 commands at 1 in 100 sampled", () => {
  bench("countdown + sample", () => {
    for (let i = 0; i < 1000; i++) if (--hot.countdown <= 0) hot.sample(keys[(k * 1000 + i) % keys.length], 80);
    k++;
  });
});

// A scrape (or INFO, or a dashboard poll): snapshot, merge and format, with 40 commands and 18 nodes in use.
metrics.ensureCommands(600);
const nodes: NodeState[] = Array.from({ length: 18 }, (_, i) => ({
  addr: `127.0.0.1:${7000 + i}`, role: i < 9 ? "master" : "replica", master: i < 9 ? "" : `127.0.0.1:${7000 + i - 9}`,
  slots: i < 9 ? [[i * 1820, i * 1820 + 1819]] : [], up: true, conns: 1, inFlight: 0,
}));
for (const n of nodes) {
  const id = metrics.nodeId(n.addr);
  metrics.now = 1000;
  for (let j = 0; j < 500; j++) metrics.nodeReply(id, starts[j], ErrorKind.NONE);
}
for (let id = 1; id <= 40; id++) for (let j = 0; j < 500; j++) metrics.commandDone(id * 7, starts[j], ErrorKind.NONE);
const stats = new Stats();
const sources = {
  worker: 0, stats, sampler: new ProcessSampler(stats), nodes: () => nodes,
  topology: () => ({ ok: true, refreshes: 1, refreshFailures: 0, changes: 1, coveredSlots: 16384 }),
  clients: () => ({ connected: 100, blocked: 0, pending: 0, outputBytes: 0, inputBytes: 0 }), draining: () => false,
};
group("one scrape: 40 commands, 18 nodes", () => {
  bench("snapshot + merge + exposition", () => do_not_optimize(exposition(mergeSnapshots([takeSnapshot(sources)]), { ready: true })));
});

await run();
