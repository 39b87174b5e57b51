// Open-loop load: when each command is due, and its latency counted from that moment, not from when it went out.
//
// Pure (no I/O, no clock): bench/latency-gen.ts drives it, test/unit/bench/open-loop.test.ts checks it.

import { bucketOf, newHistogram, percentiles, totalCount } from "../src/metrics/histogram.ts";

/** mulberry32: a small seeded PRNG, so that every generator process derives the same phases from one seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ms between one client's ticks, so that `clients` clients sending `perTick` commands a tick make `rate` commands/s. */
export function tickPeriodMs(rate: number, clients: number, perTick: number): number {
  return (clients * perTick * 1000) / rate;
}

/**
 * Each client's offset into the period, uniform in [0, periodMs): client c's ticks are due at
 * start + phase[c] + i × periodMs. Random phases spread the clients' sends over the period (a
 * constant total rate) rather than firing them in lockstep bursts.
 */
export function clientPhases(clients: number, periodMs: number, seed: number): Float64Array {
  const next = rng(seed);
  const phases = new Float64Array(clients);
  for (let c = 0; c < clients; c++) phases[c] = next() * periodMs;
  return phases;
}

/**
 * The ticks of some clients (one generator's share) in time order. Every client has the same
 * period, so the order within a period is the order of the phases and repeats: tick j belongs to
 * the (j mod m)-th client by phase and is due at start + its phase + ⌊j / m⌋ × period.
 */
export class Schedule {
  /** Client indexes, by ascending phase. */
  private readonly order: Int32Array;
  private readonly phase: Float64Array;
  private j = 0;

  constructor(phases: Float64Array, clients: readonly number[], readonly periodMs: number, readonly startMs: number) {
    const sorted = [...clients].sort((a, b) => phases[a] - phases[b] || a - b);
    this.order = Int32Array.from(sorted);
    this.phase = Float64Array.from(sorted, (c) => phases[c]);
  }

  /** When the next tick is due (ms, on the clock `startMs` is on). */
  nextAt(): number {
    const m = this.order.length;
    return this.startMs + this.phase[this.j % m] + Math.floor(this.j / m) * this.periodMs;
  }

  /** The client whose tick is next. */
  nextClient(): number {
    return this.order[this.j % this.order.length];
  }

  advance(): void {
    this.j++;
  }
}

/** What came back: a value, a null bulk (a GET that missed), or an error reply. */
export const REPLY_VALUE = 0, REPLY_NULL = 1, REPLY_ERROR = 2;

/**
 * Counts of one run. A command is *measured* when its scheduled time falls in the window
 * [windowStart, windowEnd); the warm-up before it is sent but not counted. Times are ms.
 */
export class LatencyAccount {
  /** µs from each measured command's scheduled send to its reply (what a caller on that schedule waits). */
  readonly latency = newHistogram();
  /** µs from its actual send to its reply (the target's share, without the generator's delay). */
  readonly service = newHistogram();
  /** µs from scheduled to actual send: the generator's own lateness. */
  readonly lateness = newHistogram();
  /** Measured commands: due, sent, answered (errors included), answered with an error or a null. */
  due = 0; sent = 0; answered = 0; errors = 0; nulls = 0;
  /** Measured commands not sent because their connection already had too many in flight, or was gone. */
  dropped = 0;
  /** Measured commands never sent because the generator was still behind schedule when the run ended. */
  unsent = 0;
  /** Measured commands sent more than `lateMs` after their scheduled time. */
  late = 0;
  /** Any replies (warm-up's included) that arrived inside the window: the achieved rate's numerator. */
  repliesInWindow = 0;
  maxLatencyUs = 0;
  maxLatenessUs = 0;

  constructor(readonly windowStart: number, readonly windowEnd: number, readonly lateMs: number) {}

  measured(scheduled: number): boolean {
    return scheduled >= this.windowStart && scheduled < this.windowEnd;
  }

  /** A command came due: sent at `now`, or dropped (`now` < 0). */
  onSend(scheduled: number, now: number): void {
    if (!this.measured(scheduled)) return;
    this.due++;
    if (now < 0) { this.dropped++; return; }
    this.sent++;
    const us = (now - scheduled) * 1000;
    this.lateness[bucketOf(us)]++;
    if (us > this.maxLatenessUs) this.maxLatenessUs = us;
    if (now - scheduled > this.lateMs) this.late++;
  }

  /** `n` commands due at `scheduled` were never sent: the run ended first. */
  onUnsent(scheduled: number, n: number): void {
    if (!this.measured(scheduled)) return;
    this.due += n;
    this.unsent += n;
  }

  /** The reply to a command scheduled at `scheduled` and sent at `sent` arrived at `now`. */
  onReply(scheduled: number, sent: number, now: number, kind: number): void {
    if (now >= this.windowStart && now < this.windowEnd) this.repliesInWindow++;
    if (!this.measured(scheduled)) return;
    this.answered++;
    if (kind === REPLY_ERROR) this.errors++;
    else if (kind === REPLY_NULL) this.nulls++;
    const us = (now - scheduled) * 1000;
    this.latency[bucketOf(us)]++;
    if (us > this.maxLatencyUs) this.maxLatencyUs = us;
    this.service[bucketOf((now - sent) * 1000)]++;
  }

  /** Measured commands that never got a reply (dropped, unsent, or still outstanding when the run ended). */
  missed(): number {
    return this.due - this.answered;
  }
}

/** The percentiles a run reports, in ms. */
export interface Percentiles { p50: number; p95: number; p99: number; p999: number; max: number; count: number }

export const REPORTED = [50, 95, 99, 99.9] as const;

/** p50 … p99.9 of a µs histogram (each the top of its bucket, within 0.8%) and the exact max, in ms. */
export function summarize(h: Float64Array, maxUs: number): Percentiles {
  const [p50, p95, p99, p999] = percentiles(h, REPORTED).map((us) => us / 1000);
  return { p50, p95, p99, p999, max: maxUs / 1000, count: totalCount(h) };
}

/** Median of the finite values (the mean of the middle two for an even count); null if none. */
export function median(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * FIFO of (scheduled, sent) times of one connection's commands in flight: replies come back in
 * the order commands went out, so each reply pops the oldest. Grows by doubling.
 */
export class InFlight {
  private sched = new Float64Array(64);
  private sent = new Float64Array(64);
  private head = 0;
  size = 0;

  push(scheduled: number, sent: number): void {
    if (this.size === this.sched.length) this.grow();
    const i = (this.head + this.size) & (this.sched.length - 1);
    this.sched[i] = scheduled;
    this.sent[i] = sent;
    this.size++;
  }

  /** Scheduled time of the oldest; read before shift(). */
  headScheduled(): number { return this.sched[this.head]; }
  headSent(): number { return this.sent[this.head]; }

  shift(): void {
    this.head = (this.head + 1) & (this.sched.length - 1);
    this.size--;
  }

  private grow(): void {
    const n = this.sched.length * 2;
    const s = new Float64Array(n), t = new Float64Array(n);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (this.sched.length - 1);
      s[k] = this.sched[i];
      t[k] = this.sent[i];
    }
    this.sched = s;
    this.sent = t;
    this.head = 0;
  }
}
