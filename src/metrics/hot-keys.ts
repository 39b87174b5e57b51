// Hot keys: a sampled top-K of keys by calls and by bytes (Space-Saving: K counters, bounded error).

/**
 * One command in `sampleEvery` is looked at (a countdown on the hot path, nothing else); its
 * key's count grows by `sampleEvery` and its bytes (request + reply) by `sampleEvery` times its
 * size, so figures estimate the whole traffic. With 4K counters per list, any key with more than
 * 1/4K of the sampled traffic is kept; a newcomer takes over the smallest counter, inheriting its
 * count as a possible over-estimate (`error`), as Metwally et al.'s Space-Saving does. The K
 * reported are those with the largest guaranteed count, `value - error`.
 */
export class HotKeys {
  /** 0 = off. */
  k = 0;
  sampleEvery = 100;
  /** Counts down to the next sample; read and decremented by the recorder's caller. */
  countdown = 100;
  private readonly byCalls = new Map<string, Counter>();
  private readonly byBytes = new Map<string, Counter>();

  configure(k: number, sampleEvery: number): void {
    this.k = k;
    this.sampleEvery = this.countdown = Math.max(1, sampleEvery);
    this.reset();
  }

  /** Records one sampled command on `key` that moved `bytes`; re-arms the countdown. */
  sample(key: string, bytes: number): void {
    this.countdown = this.sampleEvery;
    if (this.k === 0) return;
    const room = this.k * SLACK;
    bump(this.byCalls, room, key, this.sampleEvery);
    bump(this.byBytes, room, key, bytes * this.sampleEvery);
  }

  /** The K keys with the largest guaranteed share (value - error), largest first. */
  top(by: "calls" | "bytes"): HotKey[] {
    const m = by === "calls" ? this.byCalls : this.byBytes;
    return [...m.entries()].map(([key, c]) => ({ key, value: c.value, error: c.error }))
      .sort((a, b) => b.value - b.error - (a.value - a.error)).slice(0, this.k);
  }

  reset(): void {
    this.byCalls.clear();
    this.byBytes.clear();
  }
}

/**
 * Counters kept per list, per key reported: with uniform traffic over many keys every counter's
 * error grows alike, and the spare ones absorb newcomers so that the reported keys keep theirs low.
 */
const SLACK = 4;

export interface HotKey {
  key: string;
  /** Estimated calls or bytes (an over-estimate by at most `error`). */
  value: number;
  error: number;
}

interface Counter {
  value: number;
  error: number;
}

function bump(m: Map<string, Counter>, k: number, key: string, by: number): void {
  const c = m.get(key);
  if (c !== undefined) {
    c.value += by;
    return;
  }
  if (m.size < k) {
    m.set(key, { value: by, error: 0 });
    return;
  }
  let minKey = "", min: Counter | null = null;
  for (const [key2, c2] of m) if (min === null || c2.value < min.value) { min = c2; minKey = key2; }
  m.delete(minKey);
  m.set(key, { value: min!.value + by, error: min!.value });
}

export const hotKeys = new HotKeys();
