import { expect, test } from "bun:test";
import fc from "fast-check";
import { slotOf } from "../../../src/cluster/key-slot.ts";

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

test("slots match the values Redis computes", () => {
  // CLUSTER KEYSLOT on a real node gives these.
  expect(slot("foo")).toBe(12182);
  expect(slot("bar")).toBe(5061);
  expect(slot("key:000000000001")).toBe(8924);
  expect(slot("")).toBe(0);
});

test("a hash tag routes keys by the tag only", () => {
  expect(slot("{user1000}.following")).toBe(slot("{user1000}.followers"));
  expect(slot("{user1000}.following")).toBe(slot("user1000"));
  expect(slot("foo{bar}{zap}")).toBe(slot("bar"));
});

test("an empty or unclosed tag hashes the whole key", () => {
  expect(slot("foo{}{bar}")).not.toBe(slot("bar"));
  expect(slot("foo{{bar}}zap")).toBe(slot("{bar"));
  expect(slot("foo{bar")).not.toBe(slot("bar"));
});

test("the slot of a key is the same wherever the key sits in a buffer", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 30 }), fc.uint8Array({ maxLength: 10 }), fc.uint8Array({ maxLength: 10 }),
    (key, before, after) => {
      const buf = new Uint8Array([...before, ...key, ...after]);
      const s = slotOf(buf, before.length, before.length + key.length);
      expect(s).toBe(slotOf(key, 0, key.length));
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(16384);
    }));
});
