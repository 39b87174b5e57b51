// Hot keys (Space-Saving) and the slowlog's ring and argument rules.

import { expect, test } from "bun:test";
import { HotKeys } from "../../../src/metrics/hot-keys.ts";
import { SlowLog, slowlogArgs } from "../../../src/metrics/slowlog.ts";

test("hot keys: counts are exact while the keys fit, scaled by the sample rate", () => {
  const h = new HotKeys();
  h.configure(2, 10);
  for (let i = 0; i < 5; i++) h.sample("a", 100);
  h.sample("b", 1000);
  expect(h.top("calls")).toEqual([{ key: "a", value: 50, error: 0 }, { key: "b", value: 10, error: 0 }]);
  expect(h.top("bytes")[0]).toEqual({ key: "b", value: 10_000, error: 0 });
  expect(h.countdown).toBe(10);
});

test("hot keys: a heavy key stays on top through a stream of one-off keys, whose counts carry their error", () => {
  const h = new HotKeys();
  h.configure(3, 1);
  for (let i = 0; i < 10_000; i++) h.sample(i % 5 === 0 ? "heavy" : `once:${i}`, 1);
  const top = h.top("calls");
  expect(top).toHaveLength(3);
  expect(top[0].key).toBe("heavy");
  expect(top[0].value - top[0].error).toBeGreaterThan(1500);
  expect(top[0].value).toBeGreaterThanOrEqual(2000);
  for (const t of top.slice(1)) expect(t.value - t.error).toBeLessThanOrEqual(1);
});

test("hot keys: off records nothing", () => {
  const h = new HotKeys();
  h.configure(0, 1);
  h.sample("a", 1);
  expect(h.top("calls")).toEqual([]);
});

test("slowlog keeps the newest max_len entries, newest first, ids rising", () => {
  const log = new SlowLog(3);
  for (let i = 0; i < 5; i++) log.add(i, i, [`c${i}`], "", "", "");
  expect(log.get(-1).map((e) => [e.id, e.args[0]])).toEqual([[4, "c4"], [3, "c3"], [2, "c2"]]);
  expect(log.get(2)).toHaveLength(2);
  log.setMaxLen(5);
  log.add(5, 5, ["c5"], "", "", "");
  expect(log.get(-1).map((e) => e.args[0])).toEqual(["c5", "c4", "c3", "c2"]);
  log.setMaxLen(1);
  expect(log.get(-1).map((e) => e.args[0])).toEqual(["c5"]);
  log.reset();
  expect(log.length).toBe(0);
  log.setMaxLen(0);
  log.add(0, 0, [], "", "", "");
  expect(log.length).toBe(0);
});

test("slowlog takes at most max_len entries a second and counts the rest", () => {
  const log = new SlowLog(3);
  const taken = [0, 10, 20, 30, 40, 999, 1000, 1001].map((t) => log.admits(t));
  expect(taken).toEqual([true, true, true, false, false, false, true, true]);
  expect(log.dropped).toBe(3);
  log.setMaxLen(0);
  expect(log.admits(5000)).toBe(false);
});

test("slowlog arguments: at most 32, each cut at 128 bytes, as Redis shows them", () => {
  const enc = new TextEncoder();
  const args = Array.from({ length: 40 }, (_, i) => (i === 1 ? "x".repeat(200) : `a${i}`));
  const out = slowlogArgs(args.length, (i) => enc.encode(args[i]));
  expect(out).toHaveLength(32);
  expect(out[1]).toBe(`${"x".repeat(128)}... (72 more bytes)`);
  expect(out[31]).toBe("... (9 more arguments)");
  expect(slowlogArgs(2, (i) => enc.encode(["get", "k"][i]))).toEqual(["get", "k"]);
});
