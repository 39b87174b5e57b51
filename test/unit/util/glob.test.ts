// Redis' glob over bytes: each form of pattern, and a key matched in place inside a larger buffer.

import { describe, expect, test } from "bun:test";
import { globMatch } from "../../../src/util/glob.ts";

const b = (s: string | number[]) => (typeof s === "string" ? Buffer.from(s, "latin1") : Uint8Array.from(s));
const m = (pattern: string | number[], key: string | number[]) => {
  const k = b(key);
  return globMatch(b(pattern), k, 0, k.length);
};

describe("globMatch", () => {
  const cases: [string, string, boolean][] = [
    ["foo", "foo", true], ["foo", "fo", false], ["foo", "fooo", false],
    ["foo*", "foo", true], ["foo*", "foobar", true], ["*bar", "foobar", true], ["*o*", "foo", true], ["a*b*c", "axxbyyc", true],
    ["a*b*c", "axxbyy", false], ["**", "x", true], ["*", "", false], ["", "", true], ["", "x", false],
    ["f?o", "foo", true], ["f?o", "fo", false], ["???", "abc", true],
    ["[abc]x", "bx", true], ["[abc]x", "dx", false], ["[^abc]x", "dx", true], ["[^abc]x", "ax", false],
    ["[a-c]", "b", true], ["[c-a]", "b", true], ["[a-c]", "d", false], ["[\\]]", "]", true], ["[\\-]", "-", true],
    ["\\*", "*", true], ["\\*", "x", false], ["\\?x", "?x", true], ["a\\", "a\\", true],
    ["[abc", "a", true], ["[abc", "d", false], ["[", "x", false], ["[^", "x", true], ["x[", "x", false],
    ["*[", "a", false], ["a*", "a", true],
  ];
  for (const [p, k, want] of cases) test(`${JSON.stringify(p)} ${want ? "matches" : "does not match"} ${JSON.stringify(k)}`, () => expect(m(p, k)).toBe(want));

  test("ranges compare bytes as Redis' signed chars: [a-\\xff] is [\\xff-a]", () => {
    expect(m([0x5b, 0x61, 0x2d, 0xff, 0x5d], [0x62])).toBe(false); // 'b' is above 'a' = the top of [-1, 97]
    expect(m([0x5b, 0x61, 0x2d, 0xff, 0x5d], [0x30])).toBe(true);
    expect(m([0x5b, 0x61, 0x2d, 0xff, 0x5d], [0x90])).toBe(false); // 0x90 is -112, below -1
    expect(m([0x5b, 0x80, 0x2d, 0xff, 0x5d], [0x90])).toBe(true);
  });

  test("matches a key in place, inside a larger buffer", () => {
    const buf = b("xxfoo:1yy");
    expect(globMatch(b("foo:*"), buf, 2, 7)).toBe(true);
    expect(globMatch(b("foo:*"), buf, 2, 9)).toBe(true);
    expect(globMatch(b("foo:1"), buf, 2, 9)).toBe(false);
  });

  test("a pattern of many stars fails fast instead of backtracking for ever", () => {
    const p = b(`${"a*".repeat(30)}b`);
    const k = b("a".repeat(60));
    expect(globMatch(p, k, 0, k.length)).toBe(false);
  });
});
