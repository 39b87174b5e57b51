// A full collection once traffic stops after a burst: what large values leave behind is returned then, not whenever allocation resumes.

import type { Stats } from "../metrics/stats.ts";

const CHECK_MS = 1000;
/**
 * Bytes through the proxy since the last collection that make one worth its pause (5-7 ms with
 * an idle proxy's heap, measured). Large values leave about that much garbage in buffers, which
 * the collector, with nothing allocating any more, keeps: after 100 KB SETs and GETs, RSS stayed
 * at 98 MB; collected, 70 (bench/RESULTS.md).
 */
export const WORTH_BYTES = 64 * 1024 * 1024;

/** Collects at a check that finds no bytes moved since the one before, once WORTH_BYTES have moved since the last collection. */
export class QuietGc {
  private last: number;
  private moved = 0;

  constructor(private readonly stats: Stats, private readonly collect: () => void = () => Bun.gc(true)) {
    this.last = stats.bytesIn + stats.bytesOut;
  }

  check(): void {
    const now = this.stats.bytesIn + this.stats.bytesOut;
    const delta = now - this.last;
    this.last = now;
    // (Negative: CONFIG RESETSTAT.)
    if (delta > 0) this.moved += delta;
    else if (delta === 0 && this.moved >= WORTH_BYTES) {
      this.moved = 0;
      this.collect();
    }
  }
}

/** Checks every second; returns a stop function. */
export function collectWhenQuiet(stats: Stats): () => void {
  const gc = new QuietGc(stats);
  const timer = setInterval(() => gc.check(), CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
