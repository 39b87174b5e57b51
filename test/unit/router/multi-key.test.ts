import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { COMMANDS } from "../../../src/commands/command-table.ts";
import { slotOf } from "../../../src/cluster/key-slot.ts";
import { Frame, readCommand } from "../../../src/resp/request-reader.ts";
import { encodeCommand } from "../../../src/resp/reply-value.ts";
import { keysSlot, MIXED, split, type MultiKeyGather } from "../../../src/router/multi-key.ts";
import { acquire, setReply, type Request } from "../../../src/router/request.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string | Uint8Array) => (typeof s === "string" ? enc.encode(s) : s);
const spec = (name: string) => { const b = enc.encode(name); return COMMANDS.lookup(b, 0, b.length)!; };
const slot = (k: Uint8Array) => slotOf(k, 0, k.length);

function frame(args: (string | Uint8Array)[]): Frame {
  const wire = encodeCommand(args.map(bytes));
  const f = new Frame();
  expect(readCommand(wire, 0, wire.length, f)).toBe(wire.length);
  return f;
}

function argsOf(r: Request): Uint8Array[] {
  const f = new Frame();
  expect(readCommand(r.src, r.start, r.end, f)).toBe(r.end - r.start);
  return Array.from({ length: f.argc }, (_, i) => f.arg(i).slice());
}

/** Splits the command `args` and returns the gather, each part's arguments and slot. */
function splitOf(args: (string | Uint8Array)[]): MultiKeyGather {
  const f = frame(args);
  const s = spec(dec.decode(bytes(args[0])).toLowerCase());
  expect(keysSlot(f, s.keyStep)).toBe(MIXED);
  const parent = acquire();
  parent.spec = s;
  return split(parent, f, s);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bulk = (v: Uint8Array | undefined) => (v === undefined ? "$-1\r\n" : `$${v.length}\r\n${Buffer.from(v).toString("latin1")}\r\n`);

/** One Redis database, answering the split commands: a model the merge must agree with. */
class Model {
  readonly data = new Map<string, Uint8Array>();
  answer(args: Uint8Array[]): Uint8Array {
    const name = dec.decode(args[0]).toLowerCase();
    const keys = args.slice(1);
    switch (name) {
      case "mget": return latin1(`*${keys.length}\r\n${keys.map((k) => bulk(this.data.get(hex(k)))).join("")}`);
      case "mset":
        for (let i = 0; i < keys.length; i += 2) this.data.set(hex(keys[i]), keys[i + 1]);
        return enc.encode("+OK\r\n");
      case "del": case "unlink": {
        let n = 0;
        for (const k of keys) if (this.data.delete(hex(k))) n++;
        return enc.encode(`:${n}\r\n`);
      }
      default: // exists, touch: every occurrence counts
        return enc.encode(`:${keys.filter((k) => this.data.has(hex(k))).length}\r\n`);
    }
  }
}
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe("keysSlot", () => {
  test("keys sharing a hash tag have one slot; others are MIXED", () => {
    expect(keysSlot(frame(["MGET", "{u1}:a", "{u1}:b", "{u1}:c"]), 1)).toBe(slot(enc.encode("u1")));
    expect(keysSlot(frame(["MSET", "{u1}:a", "1", "{u1}:b", "2"]), 2)).toBe(slot(enc.encode("u1")));
    expect(keysSlot(frame(["MGET", "a", "b"]), 1)).toBe(MIXED);
    // MSET's values are not keys: values in other slots do not make it MIXED.
    expect(keysSlot(frame(["MSET", "{t}1", "a", "{t}2", "b"]), 2)).toBe(slot(enc.encode("t")));
  });
});

describe("split", () => {
  test("one part per key, each the same command over that key, in key order", () => {
    const keys = ["a", "b", "{a}x", "c", "{b}y", "a"];
    const g = splitOf(["MGET", ...keys]);
    expect(g.parts.map((p) => p.slot)).toEqual(keys.map((k) => slot(enc.encode(k))));
    g.parts.forEach((p, i) => {
      expect(argsOf(p).map((a) => dec.decode(a))).toEqual(["mget", keys[i]]);
      expect(p.held).toBe(true); // not sent yet
    });
  });

  test("MSET parts carry key-value pairs, binary and empty ones intact", () => {
    const k1 = Uint8Array.of(0, 13, 10, 255), v1 = Uint8Array.of(36, 42, 13, 10);
    const g = splitOf(["MSET", k1, v1, "", "", "b", "x".repeat(300)]);
    const pairs = g.parts.flatMap((p) => argsOf(p).slice(1));
    expect(pairs.map(hex).sort()).toEqual([k1, v1, enc.encode(""), enc.encode(""), enc.encode("b"), enc.encode("x".repeat(300))].map(hex).sort());
    expect(g.parts.every((p) => dec.decode(argsOf(p)[0]) === "mset")).toBe(true);
  });

  test("10,000 keys make one buffer shared by the parts", () => {
    const keys = Array.from({ length: 10000 }, (_, i) => `key:${i}`);
    const g = splitOf(["MGET", ...keys]);
    expect(new Set(g.parts.map((p) => p.src)).size).toBe(1);
    expect(g.parts.reduce((n, p) => n + argsOf(p).length - 1, 0)).toBe(10000);
  });
});

describe("merge", () => {
  /** Answers every part from `model` and merges. */
  function run(model: Model, args: (string | Uint8Array)[]): string {
    const g = splitOf(args);
    for (const p of g.parts) {
      const reply = model.answer(argsOf(p));
      setReply(p, reply, 0, reply.length);
    }
    return Buffer.from(g.merge()).toString("latin1");
  }

  test("any MGET/MSET/DEL/UNLINK/EXISTS/TOUCH merges to what one Redis answers", () => {
    const key = fc.oneof(fc.constantFrom("a", "b", "{a}c", "", "x{y}z"), fc.uint8Array({ maxLength: 6 }));
    const cmd = fc.oneof(
      fc.record({ name: fc.constantFrom("MGET", "DEL", "UNLINK", "EXISTS", "TOUCH"), args: fc.array(key, { minLength: 2, maxLength: 12 }) }),
      fc.record({ name: fc.constant("MSET"), args: fc.array(fc.tuple(key, fc.uint8Array({ maxLength: 8 })), { minLength: 2, maxLength: 8 }).map((ps) => ps.flat()) }),
    );
    fc.assert(fc.property(fc.array(cmd, { minLength: 1, maxLength: 12 }), (cmds) => {
      const whole = new Model(), parts = new Model();
      for (const { name, args } of cmds) {
        const all = [enc.encode(name), ...args.map(bytes)];
        const f = frame(all);
        const step = name === "MSET" ? 2 : 1;
        const expected = Buffer.from(whole.answer(all)).toString("latin1");
        if (keysSlot(f, step) === MIXED) expect(run(parts, all)).toBe(expected);
        else expect(Buffer.from(parts.answer(all)).toString("latin1")).toBe(expected);
      }
      expect([...parts.data.keys()].sort()).toEqual([...whole.data.keys()].sort());
    }), { numRuns: 300 });
  });

  test("RESP3 nulls and odd elements are copied as they came", () => {
    const g = splitOf(["MGET", "a", "b"]);
    const [pa, pb] = g.parts[0].slot === slot(enc.encode("a")) ? g.parts : [g.parts[1], g.parts[0]];
    const ra = enc.encode("*1\r\n_\r\n"), rb = enc.encode("*1\r\n$1\r\nv\r\n");
    setReply(pa, ra, 0, ra.length);
    setReply(pb, rb, 0, rb.length);
    expect(dec.decode(g.merge())).toBe("*2\r\n_\r\n$1\r\nv\r\n");
  });

  test("a failed part makes one error naming the slot and how many parts succeeded", () => {
    const g = splitOf(["MSET", "a", "1", "b", "2", "c", "3"]);
    g.parts.forEach((p, i) => {
      const r = enc.encode(i === 1 ? "-OOM command not allowed\r\n" : "+OK\r\n");
      setReply(p, r, 0, r.length);
    });
    const err = dec.decode(g.merge());
    expect(err).toStartWith("-OOM command not allowed (MSET was split into 3 commands, one per key; 1 failed, the first for slot ");
    expect(err).toContain(`slot ${g.parts[1].slot}; 2 succeeded)`);
    expect(err).toEndWith("\r\n");
  });

  test("a part whose reply has the wrong shape is an error, never a partial value", () => {
    const g = splitOf(["MGET", "a", "b"]);
    for (const p of g.parts) {
      const r = enc.encode("*2\r\n$1\r\nx\r\n$1\r\ny\r\n"); // two elements for one key
      setReply(p, r, 0, r.length);
    }
    expect(dec.decode(g.merge())).toStartWith("-ERR unexpected reply");
    const h = splitOf(["DEL", "a", "b"]);
    for (const p of h.parts) {
      const r = enc.encode("+OK\r\n");
      setReply(p, r, 0, r.length);
    }
    expect(dec.decode(h.merge())).toStartWith("-ERR unexpected reply");
  });
});
