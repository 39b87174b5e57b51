import { expect, test } from "bun:test";
import fc from "fast-check";
import calculateSlot from "cluster-key-slot";
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

/** Bitwise CRC16-XMODEM mod 16384: no table, nothing shared with the code under test. */
function plainCrcSlot(key: Uint8Array): number {
  let crc = 0;
  for (const b of key) {
    crc ^= b << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 0x3fff;
}

/** Redis' keyHashSlot (cluster.c), transcribed plainly: the reference. */
function redisKeyHashSlot(key: Uint8Array): number {
  const s = key.indexOf(0x7b);
  if (s < 0) return plainCrcSlot(key);
  const e = key.indexOf(0x7d, s + 1);
  if (e < 0 || e === s + 1) return plainCrcSlot(key);
  return plainCrcSlot(key.subarray(s + 1, e));
}

test("the reference CRC agrees with cluster-key-slot on keys without braces", () => {
  const key = fc.uint8Array({ maxLength: 40 }).filter((k) => !k.includes(0x7b));
  fc.assert(fc.property(key, (k) => {
    expect(plainCrcSlot(k)).toBe(calculateSlot(Buffer.from(k)));
  }), { numRuns: 2000 });
});

test("any key, tagged or not, hashes as Redis' keyHashSlot does", () => {
  const braces = fc.constantFrom(0x7b, 0x7d, 0x61);
  const key = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), braces), { maxLength: 24 }).map((a) => Uint8Array.from(a));
  fc.assert(fc.property(key, (k) => {
    expect(slotOf(k, 0, k.length)).toBe(redisKeyHashSlot(k));
  }), { numRuns: 5000 });
});

test("an empty first tag hashes the whole key even when a '}' follows (cluster-key-slot does not)", () => {
  // Redis: CLUSTER KEYSLOT "{}}" = 14790, "{}x}" = 10489; cluster-key-slot 1.1.2 gives 0 and 16287.
  expect(slot("{}}")).toBe(14790);
  expect(slot("{}x}")).toBe(10489);
  expect(calculateSlot("{}}")).not.toBe(14790);
});
