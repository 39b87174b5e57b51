// The latency benchmark's pure parts: the open-loop schedule, and latency counted from it.

import { expect, test } from "bun:test";
import {
  clientPhases, InFlight, LatencyAccount, median, REPLY_ERROR, REPLY_NULL, REPLY_VALUE, Schedule, summarize, tickPeriodMs,
} from "../../../bench/open-loop.ts";
import { bucketHigh, bucketOf, newHistogram } from "../../../src/metrics/histogram.ts";

/** Every tick until `untilMs`, as [client, time]. */
function ticks(s: Schedule, untilMs: number): [number, number][] {
  const out: [number, number][] = [];
  while (s.nextAt() < untilMs) { out.push([s.nextClient(), s.nextAt()]); s.advance(); }
  return out;
}

const all = (n: number) => Array.from({ length: n }, (_, i) => i);

test("a client's tick period makes the total rate: 100 clients at 40,000/s tick every 2.5 ms, in bursts of 16 every 40 ms", () => {
  expect(tickPeriodMs(40_000, 100, 1)).toBe(2.5);
  expect(tickPeriodMs(40_000, 100, 16)).toBe(40);
  expect(tickPeriodMs(20_000, 100, 1)).toBe(5);
});

test("phases are reproducible from the seed, differ between seeds, and lie within one period", () => {
  const a = clientPhases(1000, 2.5, 7), b = clientPhases(1000, 2.5, 7), c = clientPhases(1000, 2.5, 8);
  expect(a).toEqual(b);
  expect(a).not.toEqual(c);
  for (const p of a) { expect(p).toBeGreaterThanOrEqual(0); expect(p).toBeLessThan(2.5); }
});

test("phases spread over the period: each tenth of it holds about a tenth of 10,000 clients", () => {
  const phases = clientPhases(10_000, 1, 1);
  const deciles = new Int32Array(10);
  for (const p of phases) deciles[Math.floor(p * 10)]++;
  for (const n of deciles) { expect(n).toBeGreaterThan(850); expect(n).toBeLessThan(1150); }
});

test("the schedule is in time order, each client exactly one period apart, at exactly the rate", () => {
  const clients = 100, rate = 40_000, period = tickPeriodMs(rate, clients, 1), start = 1000;
  const s = new Schedule(clientPhases(clients, period, 3), all(clients), period, start);
  const seen = ticks(s, start + 100 * period); // 100 periods: 250 ms
  expect(seen.length).toBe((rate * 250) / 1000);
  for (let i = 1; i < seen.length; i++) expect(seen[i][1]).toBeGreaterThanOrEqual(seen[i - 1][1]);
  const last = new Map<number, number>();
  for (const [c, t] of seen) {
    if (last.has(c)) expect(t - last.get(c)!).toBeCloseTo(period, 9);
    last.set(c, t);
  }
  expect(last.size).toBe(clients);
});

test("generators' shares of the clients together make the whole schedule, tick for tick", () => {
  const clients = 10, period = 4, phases = clientPhases(clients, period, 9);
  const whole = ticks(new Schedule(phases, all(clients), period, 0), 40);
  const a = ticks(new Schedule(phases, [0, 1, 2, 3], period, 0), 40);
  const b = ticks(new Schedule(phases, [4, 5, 6, 7, 8, 9], period, 0), 40);
  const key = (x: [number, number][]) => x.map(([c, t]) => `${c}@${t}`).sort();
  expect(key([...a, ...b])).toEqual(key(whole));
  expect(whole.length).toBe(clients * 10);
});

test("latency counts from the scheduled send: a generator that falls behind does not hide the wait (no coordinated omission)", () => {
  const acc = new LatencyAccount(0, 100, 1);
  // Four commands due at 0, 1, 2, 3 ms all go out at 10 ms and are answered at 10.5 ms.
  for (const at of [0, 1, 2, 3]) acc.onSend(at, 10);
  for (const at of [0, 1, 2, 3]) acc.onReply(at, 10, 10.5, REPLY_VALUE);
  const lat = summarize(acc.latency, acc.maxLatencyUs);
  expect(lat.count).toBe(4);
  expect(lat.max).toBeCloseTo(10.5, 6);
  // 7.5, 8.5, 9.5 and 10.5 ms; the median is the 2nd: 8.5 ms, where timing from the send says 0.5.
  expect(lat.p50).toBeCloseTo(bucketHigh(bucketOf(8500)) / 1000, 6);
  expect(summarize(acc.service, 500).p99).toBeCloseTo(bucketHigh(bucketOf(500)) / 1000, 6);
  expect(acc.late).toBe(4);
  expect(acc.maxLatenessUs).toBeCloseTo(10_000, 3);
});

test("only commands scheduled inside the window are measured; any reply arriving in it counts toward the achieved rate", () => {
  const acc = new LatencyAccount(100, 200, 1);
  acc.onSend(99, 99);          // warm-up
  acc.onReply(99, 99, 101, REPLY_VALUE);
  acc.onSend(150, 150.2);      // measured, on time
  acc.onReply(150, 150.2, 151, REPLY_NULL);
  acc.onSend(199, 199);        // measured, answered after the window
  acc.onReply(199, 199, 203, REPLY_ERROR);
  acc.onSend(200, 200);        // after the window: not measured
  expect(acc.due).toBe(2);
  expect(acc.answered).toBe(2);
  expect(acc.repliesInWindow).toBe(2);
  expect(acc.nulls).toBe(1);
  expect(acc.errors).toBe(1);
  expect(acc.late).toBe(0);
  expect(summarize(acc.latency, acc.maxLatencyUs).max).toBeCloseTo(4, 6);
});

test("commands dropped, never sent or never answered are missed", () => {
  const acc = new LatencyAccount(0, 100, 1);
  acc.onSend(1, 1);
  acc.onSend(2, 2);
  acc.onSend(3, -1); // dropped: its connection had too many in flight
  acc.onReply(1, 1, 2, REPLY_VALUE);
  expect(acc.due).toBe(3);
  expect(acc.sent).toBe(2);
  expect(acc.dropped).toBe(1);
  expect(acc.missed()).toBe(2);
  acc.onUnsent(99, 16);  // a burst the generator never got to before the run ended
  acc.onUnsent(100, 16); // after the window: not counted
  expect(acc.unsent).toBe(16);
  expect(acc.missed()).toBe(18);
});

test("percentiles of 1..10,000 ms are within 1% of the exact ones; max is exact", () => {
  const h = newHistogram();
  for (let ms = 1; ms <= 10_000; ms++) h[bucketOf(ms * 1000)]++;
  const s = summarize(h, 10_000_000);
  for (const [got, exact] of [[s.p50, 5000], [s.p95, 9500], [s.p99, 9900], [s.p999, 9990]]) {
    expect(got).toBeGreaterThanOrEqual(exact);
    expect(got / exact).toBeLessThan(1.01);
  }
  expect(s.max).toBe(10_000);
  expect(s.count).toBe(10_000);
});

test("median: middle value, mean of the middle two, nulls ignored", () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(median([null, 5, null])).toBe(5);
  expect(median([null])).toBeNull();
});

test("in-flight times come back oldest first, across growth", () => {
  const q = new InFlight();
  let next = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 100; i++) q.push(round * 1000 + i, -(round * 1000 + i));
    for (let i = 0; i < 60; i++) {
      const want = Math.floor(next / 100) * 1000 + (next % 100);
      expect(q.headScheduled()).toBe(want);
      expect(q.headSent()).toBe(-want);
      q.shift();
      next++;
    }
  }
  expect(q.size).toBe(200);
});
