// Log-linear latency histograms in flat typed arrays (HdrHistogram's layout, 2 significant digits).

/**
 * Values are whole microseconds. 0–255 µs each have a bucket of their own; above that every
 * power of two is cut into 128 equal buckets, so a bucket is at most 1/128 (0.8%) of its values
 * wide, up to 2^32 µs (71 minutes), where values are clamped. A histogram is 3,328 counts:
 * recording is one index computation and one increment, merging is adding arrays.
 */
export const SUB_BUCKETS = 128;
export const BUCKETS = (32 - 7) * SUB_BUCKETS + 128;
const MAX_VALUE = 2 ** 32 - 1;

/** The bucket holding `us` microseconds (a fraction is dropped; negative counts as 0). */
export function bucketOf(us: number): number {
  if (us < 256) return us < 0 ? 0 : us | 0;
  if (us > MAX_VALUE) us = MAX_VALUE;
  const e = 31 - Math.clz32(us);
  return (e - 7) * SUB_BUCKETS + (us >>> (e - 7));
}

/** The smallest value that lands in bucket `i`. */
export function bucketLow(i: number): number {
  if (i < 256) return i;
  const q = i >> 7;
  return ((i & 127) + 128) * 2 ** (q - 1);
}

/** The largest value that lands in bucket `i` (HdrHistogram's "highest equivalent value"). */
export function bucketHigh(i: number): number {
  if (i < 256) return i;
  return bucketLow(i) + 2 ** ((i >> 7) - 1) - 1;
}

export function newHistogram(): Float64Array {
  return new Float64Array(BUCKETS);
}

/** Adds `from` into `into`. */
export function mergeInto(into: Float64Array, from: Float64Array): void {
  for (let i = 0; i < BUCKETS; i++) into[i] += from[i];
}

export function totalCount(h: Float64Array): number {
  let n = 0;
  for (let i = 0; i < BUCKETS; i++) n += h[i];
  return n;
}

/**
 * The value at percentile `p` (0–100): the highest value of the bucket holding the sample of
 * that rank, as Redis' INFO latencystats reports it. 0 for an empty histogram.
 */
export function percentile(h: Float64Array, p: number, total = totalCount(h)): number {
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += h[i];
    if (seen >= rank) return bucketHigh(i);
  }
  return bucketHigh(BUCKETS - 1);
}

/** Several percentiles in one pass; `ps` ascending. */
export function percentiles(h: Float64Array, ps: readonly number[]): number[] {
  const total = totalCount(h);
  const out = ps.map(() => 0);
  if (total === 0) return out;
  let seen = 0, k = 0;
  for (let i = 0; i < BUCKETS && k < ps.length; i++) {
    seen += h[i];
    while (k < ps.length && seen >= Math.max(1, Math.ceil((ps[k] / 100) * total))) out[k++] = bucketHigh(i);
  }
  return out;
}

/**
 * Cumulative counts at power-of-two bounds: `[bound, count of values < bound]` for bound = 1,
 * 2, 4 … µs, up to the first bound that holds every value. Bucket edges fall on powers of two,
 * so these counts are exact. Feeds LATENCY HISTOGRAM and the Prometheus `le` buckets.
 */
export function powerOfTwoCdf(h: Float64Array): [number, number][] {
  const total = totalCount(h);
  const out: [number, number][] = [];
  if (total === 0) return out;
  let seen = 0, i = 0;
  for (let bound = 1; ; bound *= 2) {
    while (i < BUCKETS && bucketLow(i) < bound) seen += h[i++];
    out.push([bound, seen]);
    if (seen >= total || i >= BUCKETS) return out;
  }
}

/** Non-zero buckets only, for sending a histogram between processes. */
export interface SparseHistogram {
  idx: Uint16Array;
  n: Float64Array;
}

export function toSparse(h: Float64Array): SparseHistogram {
  let k = 0;
  for (let i = 0; i < BUCKETS; i++) if (h[i] !== 0) k++;
  const idx = new Uint16Array(k), n = new Float64Array(k);
  k = 0;
  for (let i = 0; i < BUCKETS; i++) if (h[i] !== 0) { idx[k] = i; n[k++] = h[i]; }
  return { idx, n };
}

export function addSparse(into: Float64Array, s: SparseHistogram): void {
  for (let k = 0; k < s.idx.length; k++) into[s.idx[k]] += s.n[k];
}

export function fromSparse(s: SparseHistogram): Float64Array {
  const h = newHistogram();
  addSparse(h, s);
  return h;
}
