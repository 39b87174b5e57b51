import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { NEED_MORE, PROTOCOL_ERROR, ReplyScan, scanReply } from "../../../src/resp/reply-reader.ts";
import { decodeReply, RespError } from "../../../src/resp/reply-value.ts";
import { InputBuffer } from "../../../src/util/input-buffer.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Splits a reply stream into replies the way BackendConn does. */
function frameAll(chunks: Uint8Array[]): string[] | "error" {
  const input = new InputBuffer(16);
  const s = new ReplyScan();
  const out: string[] = [];
  for (const chunk of chunks) {
    const buf = input.feed(chunk);
    let at = 0;
    for (;;) {
      if (at >= buf.length) break;
      const n = scanReply(buf, at, buf.length, s);
      if (n === NEED_MORE) break;
      if (n === PROTOCOL_ERROR) return "error";
      out.push(dec.decode(buf.subarray(at, at + n)));
      at += n;
    }
    input.keep(buf, at, s.needBytes);
  }
  return out;
}

const REPLIES = [
  "+OK\r\n",
  "-ERR wrong type\r\n",
  "-MOVED 3999 127.0.0.1:7001\r\n",
  ":1000\r\n",
  ":-5\r\n",
  "$5\r\nhello\r\n",
  "$0\r\n\r\n",
  "$-1\r\n",
  "$6\r\na\r\nb\r\n\r\n",
  "*-1\r\n",
  "*0\r\n",
  "*3\r\n$1\r\na\r\n:2\r\n*2\r\n+x\r\n$-1\r\n",
  "*2\r\n*2\r\n*0\r\n*1\r\n:1\r\n-ERR in array\r\n",
  "%1\r\n+k\r\n:1\r\n",
  "~2\r\n+a\r\n+b\r\n",
  "_\r\n",
  "#t\r\n",
  ",3.14\r\n",
  "(123456789012345678901\r\n",
  "=7\r\ntxt:abc\r\n",
  "|1\r\n+ttl\r\n:3\r\n+value\r\n",
  ">2\r\n+message\r\n+hi\r\n",
];

describe("scanReply", () => {
  const stream = REPLIES.join("");
  const wire = enc.encode(stream);

  test("frames every RESP2/RESP3 type in one stream", () => {
    expect(frameAll([wire])).toEqual(REPLIES);
  });

  test("frames the stream byte by byte", () => {
    expect(frameAll(Array.from(wire, (b) => Uint8Array.of(b)))).toEqual(REPLIES);
  });

  test("frames the stream split at every point", () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      expect(frameAll([wire.subarray(0, cut), wire.subarray(cut)])).toEqual(REPLIES);
    }
  });

  test("an unknown type byte is a protocol error", () => {
    expect(frameAll([enc.encode("+OK\r\n?what\r\n")])).toBe("error");
  });

  test("a bulk body without CRLF is a protocol error", () => {
    expect(frameAll([enc.encode("$3\r\nabcde")])).toBe("error");
  });

  test("a large bulk reports how many bytes it still needs", () => {
    const s = new ReplyScan();
    const head = enc.encode("$1000000\r\nabc");
    expect(scanReply(head, 0, head.length, s)).toBe(NEED_MORE);
    expect(s.needBytes).toBe(1000000 + 10 + 2);
  });

  test("a big array of small elements is scanned once across chunks", () => {
    const n = 50000;
    const text = `*${n}\r\n` + ":1\r\n".repeat(n);
    const bytes = enc.encode(text);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 1000) chunks.push(bytes.subarray(i, i + 1000));
    expect(frameAll(chunks)).toEqual([text]);
  });
});

describe("scanReply properties", () => {
  type V = string | number | null | V[];
  const value: fc.Arbitrary<V> = fc.letrec<{ v: V }>((tie) => ({
    v: fc.oneof({ depthSize: "small" },
      fc.string({ maxLength: 20 }), fc.integer(), fc.constant(null),
      fc.array(tie("v"), { maxLength: 4 })),
  })).v;
  const encode = (v: V): string =>
    v === null ? "$-1\r\n"
      : typeof v === "number" ? `:${v}\r\n`
      : typeof v === "string" ? `$${enc.encode(v).length}\r\n${v}\r\n`
      : `*${v.length}\r\n${v.map(encode).join("")}`;

  test("any sequence of nested replies, cut anywhere, frames back and decodes to itself", () => {
    fc.assert(fc.property(fc.array(value, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 5 }), (vals, cuts) => {
      const wire = enc.encode(vals.map(encode).join(""));
      const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
      const chunks: Uint8Array[] = [];
      let prev = 0;
      for (const p of points) { chunks.push(wire.subarray(prev, p)); prev = p; }
      chunks.push(wire.subarray(prev));
      const framed = frameAll(chunks);
      expect(framed).toEqual(vals.map(encode));
      const decoded = (framed as string[]).map((r) => decodeReply(enc.encode(r), 0).value);
      expect(decoded).toEqual(vals);
    }), { numRuns: 500 });
  });
});

describe("decodeReply", () => {
  test("error replies become RespError values", () => {
    const v = decodeReply(enc.encode("-ERR boom\r\n"), 0).value;
    expect(v).toBeInstanceOf(RespError);
    expect((v as RespError).message).toBe("ERR boom");
  });
});
