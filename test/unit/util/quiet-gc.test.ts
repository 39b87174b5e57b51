import { expect, test } from "bun:test";
import { Stats } from "../../../src/metrics/stats.ts";
import { QuietGc, WORTH_BYTES } from "../../../src/util/quiet-gc.ts";

function setup() {
  const stats = new Stats();
  let collections = 0;
  const gc = new QuietGc(stats, () => { collections++; });
  return { stats, gc, collections: () => collections };
}

test("no collection while bytes keep moving, one at the first quiet check after enough have moved", () => {
  const { stats, gc, collections } = setup();
  for (let i = 0; i < 10; i++) {
    stats.bytesIn += WORTH_BYTES / 4;
    stats.bytesOut += WORTH_BYTES / 4;
    gc.check();
  }
  expect(collections()).toBe(0);
  gc.check();
  expect(collections()).toBe(1);
  // Still quiet: nothing new to collect.
  gc.check();
  gc.check();
  expect(collections()).toBe(1);
});

test("quiet after little traffic: no collection", () => {
  const { stats, gc, collections } = setup();
  stats.bytesIn += WORTH_BYTES - 1;
  gc.check();
  gc.check();
  expect(collections()).toBe(0);
  // The next burst adds up with it.
  stats.bytesOut += 1;
  gc.check();
  gc.check();
  expect(collections()).toBe(1);
});

test("CONFIG RESETSTAT (counters going back) neither counts as traffic nor as quiet", () => {
  const { stats, gc, collections } = setup();
  stats.bytesIn += WORTH_BYTES;
  gc.check();
  stats.reset();
  gc.check();
  expect(collections()).toBe(0);
  gc.check();
  expect(collections()).toBe(1);
});
