import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Frame, NEED_MORE, PROTOCOL_ERROR, readCommand } from "../../../src/resp/request-reader.ts";
import { InputBuffer } from "../../../src/util/input-buffer.ts";
import { command } from "../../helpers/fake-node.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);

type Parsed = { args: string[]; wire: string } | { error: string };

/** Feeds chunks through InputBuffer + readCommand exactly as ClientConn does. */
function readAll(chunks: Uint8Array[]): Parsed[] {
  const input = new InputBuffer(16);
  const f = new Frame();
  const out: Parsed[] = [];
  for (const chunk of chunks) {
    const buf = input.feed(chunk);
    let at = 0;
    for (;;) {
      const n = readCommand(buf, at, buf.length, f);
      if (n === NEED_MORE) break;
      if (n === PROTOCOL_ERROR) { out.push({ error: f.error }); return out; }
      at += n;
      if (f.argc > 0) {
        const args: string[] = [];
        for (let i = 0; i < f.argc; i++) args.push(dec.decode(f.arg(i)));
        out.push({ args, wire: dec.decode(f.bytes()) });
      }
    }
    input.keep(buf, at, f.needBytes);
  }
  return out;
}


const CASES: { name: string; wire: string; frames: Parsed[] }[] = [
  { name: "one multibulk", wire: command("SET", "key", "value"),
    frames: [{ args: ["SET", "key", "value"], wire: command("SET", "key", "value") }] },
  { name: "pipelined commands", wire: command("GET", "a") + command("GET", "b") + command("PING"),
    frames: [["GET", "a"], ["GET", "b"], ["PING"]].map((args) => ({ args, wire: command(...args) })) },
  { name: "empty and binary-looking bulk", wire: command("SET", "", "a\r\nb"),
    frames: [{ args: ["SET", "", "a\r\nb"], wire: command("SET", "", "a\r\nb") }] },
  { name: "inline command is re-encoded", wire: "PING\r\n",
    frames: [{ args: ["PING"], wire: command("PING") }] },
  { name: "inline with quotes and LF only", wire: `SET k "hello world" 'x y'\n`,
    frames: [{ args: ["SET", "k", "hello world", "x y"], wire: command("SET", "k", "hello world", "x y") }] },
  { name: "empty multibulk and blank line are skipped", wire: "*0\r\n\r\n" + command("GET", "x"),
    frames: [{ args: ["GET", "x"], wire: command("GET", "x") }] },
  { name: "bulk length that is not a number is a protocol error", wire: "*1\r\n$x\r\n",
    frames: [{ error: "Protocol error: invalid bulk length" }] },
  { name: "missing dollar is a protocol error", wire: "*1\r\n+GET\r\n",
    frames: [{ error: "Protocol error: expected '$', got '+'" }] },
  { name: "bulk without trailing CRLF is a protocol error", wire: "*1\r\n$3\r\nGETXX",
    frames: [{ error: "Protocol error: expected CRLF after bulk string" }] },
  { name: "multibulk length that is not a number is a protocol error", wire: "*a\r\n",
    frames: [{ error: "Protocol error: invalid multibulk length" }] },
  { name: "unbalanced quotes in inline command", wire: `SET "abc\r\n`,
    frames: [{ error: "Protocol error: unbalanced quotes in request" }] },
  { name: "bulk longer than 512 MB is refused", wire: "*1\r\n$536870913\r\n",
    frames: [{ error: "Protocol error: invalid bulk length" }] },
  // Redis' string2ll refuses these; forwarded as sent they would break a shared node connection.
  { name: "bulk length with a leading zero is refused", wire: "*2\r\n$3\r\nGET\r\n$01\r\na\r\n",
    frames: [{ error: "Protocol error: invalid bulk length" }] },
  { name: "bulk length -0 is refused", wire: "*1\r\n$-0\r\n",
    frames: [{ error: "Protocol error: invalid bulk length" }] },
  { name: "multibulk length with a leading zero is refused", wire: "*01\r\n$4\r\nPING\r\n",
    frames: [{ error: "Protocol error: invalid multibulk length" }] },
  { name: "multibulk length -0 is refused", wire: "*-0\r\n",
    frames: [{ error: "Protocol error: invalid multibulk length" }] },
  { name: "zero itself is a length", wire: "*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
    frames: [{ args: ["GET", ""], wire: "*2\r\n$3\r\nGET\r\n$0\r\n\r\n" }] },
];

describe("readCommand", () => {
  for (const c of CASES) {
    const wire = bytes(c.wire);
    test(`${c.name} (whole)`, () => expect(readAll([wire])).toEqual(c.frames));
    test(`${c.name} (byte by byte)`, () => {
      expect(readAll(Array.from(wire, (b) => Uint8Array.of(b)))).toEqual(c.frames);
    });
    test(`${c.name} (every split point)`, () => {
      for (let cut = 0; cut <= wire.length; cut++) {
        expect(readAll([wire.subarray(0, cut), wire.subarray(cut)])).toEqual(c.frames);
      }
    });
  }

  test("an incomplete command needs more input and tells how much", () => {
    const f = new Frame();
    const wire = bytes("*2\r\n$3\r\nGET\r\n$10\r\nabc");
    expect(readCommand(wire, 0, wire.length, f)).toBe(NEED_MORE);
    expect(f.needBytes).toBe(wire.length - 3 + 12);
  });

  test("an unterminated inline line longer than 64 KB is a protocol error", () => {
    const f = new Frame();
    const wire = bytes("A".repeat(70 * 1024));
    expect(readCommand(wire, 0, wire.length, f)).toBe(PROTOCOL_ERROR);
    expect(f.error).toBe("Protocol error: too big inline request");
  });

  test("a large value arriving in many chunks is assembled once", () => {
    const value = "v".repeat(3 * 1024 * 1024);
    const wire = bytes(command("SET", "big", value));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i += 65536) chunks.push(wire.subarray(i, i + 65536));
    const [frame] = readAll(chunks) as { args: string[] }[];
    expect(frame.args[2].length).toBe(value.length);
  });

  test("views handed out stay intact while later chunks arrive", () => {
    const input = new InputBuffer(16);
    const f = new Frame();
    const held: Uint8Array[] = [];
    const wire = bytes(command("SET", "k1", "aaaa") + command("SET", "k2", "bbbb") + command("GET", "k3"));
    for (let i = 0; i < wire.length; i += 7) {
      const buf = input.feed(wire.subarray(i, i + 7));
      let at = 0;
      for (;;) {
        const n = readCommand(buf, at, buf.length, f);
        if (n <= 0) break;
        at += n;
        held.push(f.bytes());
      }
      input.keep(buf, at, f.needBytes);
    }
    expect(held.map((h) => dec.decode(h))).toEqual([
      command("SET", "k1", "aaaa"), command("SET", "k2", "bbbb"), command("GET", "k3"),
    ]);
  });
});

describe("readCommand properties", () => {
  const arg = fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }).map((b) => String.fromCharCode(...b)));
  const command = fc.array(arg, { minLength: 1, maxLength: 8 });

  test("any pipeline of multibulk commands, cut anywhere, parses back to its commands", () => {
    fc.assert(fc.property(fc.array(command, { minLength: 1, maxLength: 10 }), fc.array(fc.nat(), { maxLength: 6 }),
      (cmds, cuts) => {
        // Latin-1 strings so bytes round-trip through the test's own encoding.
        const toBytes = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 0xff);
        const parts = cmds.map((args) => {
          const head = `*${args.length}\r\n`;
          const chunks = [toBytes(head)];
          for (const a of args) chunks.push(toBytes(`$${a.length}\r\n`), toBytes(a), toBytes("\r\n"));
          return chunks;
        }).flat();
        const wire = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) { wire.set(p, o); o += p.length; }
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const chunks: Uint8Array[] = [];
        let prev = 0;
        for (const p of points) { chunks.push(wire.subarray(prev, p)); prev = p; }
        chunks.push(wire.subarray(prev));
        const input = new InputBuffer(16);
        const f = new Frame();
        const got: string[][] = [];
        for (const chunk of chunks) {
          const buf = input.feed(chunk);
          let at = 0;
          for (;;) {
            const n = readCommand(buf, at, buf.length, f);
            if (n <= 0) { expect(n).toBe(NEED_MORE); break; }
            at += n;
            got.push(Array.from({ length: f.argc }, (_, i) => String.fromCharCode(...f.arg(i).map((b) => b & 0xff))));
          }
          input.keep(buf, at, f.needBytes);
        }
        const expected = cmds.map((args) => args.map((a) => String.fromCharCode(...toBytes(a))));
        expect(got).toEqual(expected);
      }), { numRuns: 300 });
  });

  test("random bytes never throw: each call consumes, waits, or reports a protocol error", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (wire) => {
      const f = new Frame();
      let at = 0;
      for (let guard = 0; guard < 1000 && at < wire.length; guard++) {
        const n = readCommand(wire, at, wire.length, f);
        expect(n === NEED_MORE || n === PROTOCOL_ERROR || (n > 0 && at + n <= wire.length)).toBe(true);
        if (n <= 0) return;
        at += n;
      }
    }), { numRuns: 2000 });
  });
});
