// StreamScan: where a value ends when its bytes pass chunk by chunk, for replies and for commands.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CONTINUES, MALFORMED, StreamScan } from "../../../src/resp/stream-scan.ts";
import { encodeCommand } from "../../../src/resp/reply-value.ts";

const enc = new TextEncoder();

/** Feeds `chunks` one by one; the offset (over all chunks) where the value ended, or a result code. */
function scanChunks(s: StreamScan, chunks: Uint8Array[]): number {
  let offset = 0;
  for (const c of chunks) {
    const r = s.feed(c, 0, c.length);
    if (r === MALFORMED) return MALFORMED;
    if (r !== CONTINUES) return offset + r;
    offset += c.length;
  }
  return CONTINUES;
}

function cut(wire: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) { chunks.push(wire.subarray(prev, p)); prev = p; }
  chunks.push(wire.subarray(prev));
  return chunks;
}

describe("replies", () => {
  type V = string | number | null | V[];
  const value: fc.Arbitrary<V> = fc.letrec<{ v: V }>((tie) => ({
    v: fc.oneof({ depthSize: "small" }, fc.string({ maxLength: 40 }), fc.integer(), fc.constant(null), fc.array(tie("v"), { maxLength: 4 })),
  })).v;
  const encode = (v: V): string =>
    v === null ? "$-1\r\n"
      : typeof v === "number" ? `:${v}\r\n`
      : typeof v === "string" ? `$${enc.encode(v).length}\r\n${v}\r\n`
      : `*${v.length}\r\n${v.map(encode).join("")}`;

  test("any reply, cut anywhere and followed by more bytes, ends exactly where it ends", () => {
    fc.assert(fc.property(value, fc.array(fc.nat(), { maxLength: 6 }), (v, cuts) => {
      const one = enc.encode(encode(v));
      const wire = enc.encode(encode(v) + "+NEXT\r\n");
      expect(scanChunks(new StreamScan(false), cut(wire, cuts))).toBe(one.length);
    }), { numRuns: 1000 });
  });

  test("an unfinished reply continues; RESP3 types, maps and attributes count their values", () => {
    const half = enc.encode("$10\r\n01234");
    expect(new StreamScan(false).feed(half, 0, half.length)).toBe(CONTINUES);
    const resp3 = enc.encode("%2\r\n+a\r\n,1.5\r\n=7\r\ntxt:abc\r\n|1\r\n+k\r\n#t\r\n_\r\n");
    const s = new StreamScan(false);
    // The map's two pairs: (+a, ,1.5) and (=7 …, |1 (+k #t) _): the attribute decorates the null.
    expect(s.feed(resp3, 0, resp3.length)).toBe(resp3.length);
  });

  test("malformed lines are refused", () => {
    for (const bad of ["?x\r\n", "$abc\r\n", "$-5\r\n", "*1\n"]) {
      const b = enc.encode(bad);
      expect(new StreamScan(false).feed(b, 0, b.length)).toBe(MALFORMED);
    }
  });
});

describe("commands", () => {
  const args = fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 6 });

  test("any command, cut anywhere and followed by the next, ends exactly where it ends", () => {
    fc.assert(fc.property(args, fc.array(fc.nat(), { maxLength: 6 }), (a, cuts) => {
      const one = encodeCommand(a);
      const wire = new Uint8Array([...one, ...encodeCommand(["PING"])]);
      expect(scanChunks(new StreamScan(true), cut(wire, cuts))).toBe(one.length);
    }), { numRuns: 1000 });
  });

  test("a body not followed by CRLF, a non-bulk argument or an inline command is malformed", () => {
    for (const bad of ["*2\r\n$3\r\nSET\r\n$2\r\nabXY", "*2\r\n$3\r\nGET\r\n:1\r\n", "GET k\r\n", "*0\r\n", "*2\r\n$3\r\nGET\r\n$-1\r\n"]) {
      expect(scanChunks(new StreamScan(true), cut(enc.encode(bad), [5, 11]))).toBe(MALFORMED);
    }
  });

  test("a header line cut in the middle is put together; one longer than 64 KiB is refused", () => {
    const s = new StreamScan(true);
    const parts = ["*", "2\r", "\n$", "3\r\nGET\r\n$1", "0\r\n0123456789\r\n"].map((t) => enc.encode(t));
    expect(scanChunks(s, parts)).toBe(parts.reduce((n, p) => n + p.length, 0));
    const long = enc.encode(`*1\r\n$${"1".repeat(70_000)}`);
    expect(new StreamScan(true).feed(long, 0, long.length)).toBe(MALFORMED);
  });
});
