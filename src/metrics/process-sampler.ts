// Every 100 ms: instantaneous rates (as Redis samples them), event-loop delay and CPU of this process.

import type { Stats } from "./stats.ts";

const PERIOD_MS = 100;
/** Redis averages its instantaneous_* figures over 16 samples. */
const SAMPLES = 16;

export class ProcessSampler {
  private timer: ReturnType<typeof setInterval> | null = null;
  private last = performance.now();
  private readonly ops = new Float64Array(SAMPLES);
  private readonly inBytes = new Float64Array(SAMPLES);
  private readonly outBytes = new Float64Array(SAMPLES);
  private i = 0;
  private prevOps = 0;
  private prevIn = 0;
  private prevOut = 0;
  /** How late each sample's timer fired (µs): what any callback waited for the event loop. */
  private readonly lateUs = new Float64Array(SAMPLES);

  constructor(private readonly stats: Stats) {}

  start(): void {
    this.last = performance.now();
    this.timer = setInterval(() => this.sample(), PERIOD_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    const now = performance.now();
    const dt = now - this.last;
    this.last = now;
    const s = this.stats;
    const k = this.i++ % SAMPLES;
    this.lateUs[k] = Math.max(0, (dt - PERIOD_MS) * 1000);
    // Counters can go back (CONFIG RESETSTAT): such a sample reads as 0.
    this.ops[k] = Math.max(0, ((s.commands - this.prevOps) * 1000) / dt);
    this.inBytes[k] = Math.max(0, ((s.bytesIn - this.prevIn) * 1000) / dt);
    this.outBytes[k] = Math.max(0, ((s.bytesOut - this.prevOut) * 1000) / dt);
    this.prevOps = s.commands;
    this.prevIn = s.bytesIn;
    this.prevOut = s.bytesOut;
  }

  /** The figures of the last 1.6 s. */
  read(): { opsPerSec: number; inKbps: number; outKbps: number; loopDelayMeanUs: number; loopDelayMaxUs: number } {
    const n = Math.min(this.i, SAMPLES) || 1;
    const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / n;
    const out = {
      opsPerSec: Math.round(mean(this.ops)),
      inKbps: mean(this.inBytes) / 1024,
      outKbps: mean(this.outBytes) / 1024,
      loopDelayMeanUs: Math.round(mean(this.lateUs)),
      loopDelayMaxUs: Math.round(Math.max(...this.lateUs)),
    };
    return out;
  }
}
