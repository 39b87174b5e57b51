// Log-linear histogram: bucket layout, percentiles against exact ones, cumulative power-of-two counts.

import { expect, test } from "bun:test";
import fc from "fast-check";
import {
  bucketHigh, bucketLow, bucketOf, BUCKETS, fromSparse, mergeInto, newHistogram, percentile, percentiles,
  powerOfTwoCdf, toSparse, totalCount,
} from "../../../src/metrics/histogram.ts";

test("buckets tile 0 .. 2^32-1 without gaps, each at most 1/128 of its values wide", () => {
  expect(bucketLow(0)).toBe(0);
  for (let i = 1; i < BUCKETS; i++) {
    expect(bucketLow(i)).toBe(bucketHigh(i - 1) + 1);
    const width = bucketHigh(i) - bucketLow(i) + 1;
    expect(width === 1 || width / bucketLow(i) <= 1 / 128).toBe(true);
  }
  expect(bucketHigh(BUCKETS - 1)).toBe(2 ** 32 - 1);
});

test("a value lands in the bucket whose range holds it; fractions drop, negatives and overflow clamp", () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (v) => {
    const b = bucketOf(v);
    expect(bucketLow(b)).toBeLessThanOrEqual(v);
    expect(bucketHigh(b)).toBeGreaterThanOrEqual(v);
  }), { numRuns: 2000 });
  expect(bucketOf(219.7)).toBe(219);
  expect(bucketOf(-5)).toBe(0);
  expect(bucketOf(2 ** 40)).toBe(BUCKETS - 1);
});

test("percentiles are within one bucket of the exact percentile of the same values", () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 60_000_000 }), { minLength: 1, maxLength: 500 }), (values) => {
    const h = newHistogram();
    for (const v of values) h[bucketOf(v)]++;
    const sorted = values.slice().sort((a, b) => a - b);
    for (const p of [0, 50, 90, 99, 99.9, 100]) {
      const exact = sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
      const got = percentile(h, p);
      // The reported value is the top of the exact value's bucket.
      expect(got).toBe(bucketHigh(bucketOf(exact)));
      expect(got - exact).toBeLessThanOrEqual(Math.max(0, exact / 128));
    }
    expect(percentiles(h, [50, 99])).toEqual([percentile(h, 50), percentile(h, 99)]);
  }), { numRuns: 300 });
});

test("an empty histogram reports 0 and no cumulative buckets", () => {
  const h = newHistogram();
  expect(percentile(h, 99)).toBe(0);
  expect(percentiles(h, [50, 99])).toEqual([0, 0]);
  expect(powerOfTwoCdf(h)).toEqual([]);
});

test("power-of-two cumulative counts are exact and end at the total", () => {
  const h = newHistogram();
  const values = [0, 1, 1, 3, 700, 1023, 1024, 5000, 5000, 1_000_000];
  for (const v of values) h[bucketOf(v)]++;
  const cdf = powerOfTwoCdf(h);
  for (const [bound, count] of cdf) expect(count).toBe(values.filter((v) => v < bound).length);
  expect(cdf[cdf.length - 1][1]).toBe(values.length);
  expect(cdf[cdf.length - 1][0]).toBe(2 ** 20);
});

test("merging and the sparse form keep every count", () => {
  const a = newHistogram(), b = newHistogram();
  a[bucketOf(10)] += 3;
  b[bucketOf(10)] += 2;
  b[bucketOf(123456)] += 7;
  mergeInto(a, b);
  expect(totalCount(a)).toBe(12);
  const back = fromSparse(toSparse(a));
  expect(Array.from(back)).toEqual(Array.from(a));
  expect(toSparse(a).idx.length).toBe(2);
});
