// Recording microbenchmarks: what one completed command and one node reply cost the hot path (mitata).

import { bench, do_not_optimize, group, run } from "mitata";
import { bucketOf } from "../src/metrics/histogram.ts";
import { HotKeys } from "../src/metrics/hot-keys.ts";
import { ErrorKind, Metrics } from "../src/metrics/recorder.ts";

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

await run();
