// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH over keys in several slots: one part per slot, replies merged.

import { Merge, type CommandSpec } from "../commands/command-table.ts";
import { slotOf } from "../cluster/key-slot.ts";
import type { Frame } from "../resp/request-reader.ts";
import { ReplyScan, scanReply } from "../resp/reply-reader.ts";
import { Gather, isError, partFailure, replyInteger } from "./gather.ts";
import type { Request } from "./request.ts";

/** keysSlot's answer when the keys hash to more than one slot. */
export const MIXED = -2;

const scan = new ReplyScan();

// Scratch shared by all calls: the router is single-threaded and each call runs to completion.
let keySlots = new Int32Array(256);

/**
 * The one slot every key of `f` hashes to (keys are arguments 1, 1 + step, …), or MIXED.
 * Leaves each key's slot in scratch for split(), which must follow at once.
 */
export function keysSlot(f: Frame, step: number): number {
  const keys = (f.argc - 1) / step;
  if (keySlots.length < keys) keySlots = new Int32Array(grow(keys));
  const src = f.src, base = f.base;
  let first = -1, mixed = false;
  for (let k = 0, i = 1; k < keys; k++, i += step) {
    const s = slotOf(src, base + f.argStart[i], base + f.argEnd[i]);
    keySlots[k] = s;
    if (k === 0) first = s;
    else if (s !== first) mixed = true;
  }
  return mixed ? MIXED : first;
}

/**
 * Splits `parent` (whose command is `f`, its keys' slots just computed by keysSlot) into one
 * part per key: the same command over that key (and its value, for MSET), all parts laid out in
 * one buffer, in key order. One pass over the argument offsets; no allocation per key.
 *
 * Not one part per slot: a multi-key command over a slot that is being migrated gets TRYAGAIN
 * while some of its keys have moved, and the client's commands pipelined behind it on that
 * connection run before its retry — a later GET would read what the MSET was to overwrite. A
 * single-key command is never refused that way (it is served, or redirected by ASK in order).
 */
export function split(parent: Request, f: Frame, spec: CommandSpec): MultiKeyGather {
  const step = spec.keyStep;
  const keys = (f.argc - 1) / step;
  const src = f.src, base = f.base;
  const name = nameWire(spec.name);
  const head = headerSize(1 + step) + name.length;
  let total = keys * head;
  for (let i = 1; i < f.argc; i++) total += argWireSize(f.argEnd[i] - f.argStart[i]);
  const buf = new Uint8Array(total);
  const g = new MultiKeyGather(parent, spec);
  let o = 0;
  for (let k = 0, i = 1; k < keys; k++, i += step) {
    const at = o;
    o = writeHeader(buf, o, 42, 1 + step);
    buf.set(name, o);
    o += name.length;
    for (let j = i; j < i + step; j++) {
      const s = base + f.argStart[j], e = base + f.argEnd[j];
      o = writeHeader(buf, o, 36, e - s);
      buf.set(src.subarray(s, e), o);
      o += e - s;
      buf[o++] = 13;
      buf[o++] = 10;
    }
    g.addPart(buf, at, o, keySlots[k], null);
  }
  return g;
}

/** A multi-key command split per key; merge() answers as the whole command would have. */
export class MultiKeyGather extends Gather {
  constructor(parent: Request, private readonly spec: CommandSpec) {
    super(parent);
  }

  merge(): Uint8Array {
    const parts = this.parts;
    for (const r of parts) if (isError(r)) return partFailure(this, r, this.spec);
    switch (this.spec.merge) {
      case Merge.VALUES: return this.values();
      case Merge.SUM: {
        let sum = 0;
        for (const r of parts) {
          const n = replyInteger(r);
          if (Number.isNaN(n)) return partFailure(this, r, this.spec);
          sum += n;
        }
        return new TextEncoder().encode(`:${sum}\r\n`);
      }
      default: {
        for (const r of parts) if (r.reply[r.replyStart] !== 43) return partFailure(this, r, this.spec);
        return parts[0].reply.slice(parts[0].replyStart, parts[0].replyEnd);
      }
    }
  }

  /** MGET: each part answered a one-element array; the elements, in key order. */
  private values(): Uint8Array {
    const parts = this.parts;
    let total = headerSize(parts.length);
    for (const r of parts) {
      // `*1\r\n` then exactly one element.
      if (r.reply[r.replyStart] !== 42 || r.reply[r.replyStart + 1] !== 49 || r.reply[r.replyStart + 2] !== 13) {
        return partFailure(this, r, this.spec);
      }
      const n = scanReply(r.reply, r.replyStart + 4, r.replyEnd, scan);
      if (n !== r.replyEnd - r.replyStart - 4) {
        scan.reset();
        return partFailure(this, r, this.spec);
      }
      total += n;
    }
    const out = new Uint8Array(total);
    let o = writeHeader(out, 0, 42, parts.length);
    for (const r of parts) {
      out.set(r.reply.subarray(r.replyStart + 4, r.replyEnd), o);
      o += r.replyEnd - r.replyStart - 4;
    }
    return out;
  }
}

const names = new Map<string, Uint8Array>();

/** `$4\r\nmget\r\n`: the command name as a bulk string. */
function nameWire(name: string): Uint8Array {
  let w = names.get(name);
  if (w === undefined) {
    w = new TextEncoder().encode(`$${name.length}\r\n${name}\r\n`);
    names.set(name, w);
  }
  return w;
}

function digits(n: number): number {
  let d = 1;
  while (n >= 10) { n = Math.floor(n / 10); d++; }
  return d;
}

/** `*12\r\n` or `$12\r\n`. */
export function headerSize(n: number): number {
  return digits(n) + 3;
}

function argWireSize(len: number): number {
  return headerSize(len) + len + 2;
}

/** Writes `<type><n>\r\n` at `o`; returns the offset after it. */
export function writeHeader(buf: Uint8Array, o: number, type: number, n: number): number {
  buf[o++] = type;
  const d = digits(n);
  for (let i = d - 1; i >= 0; i--) {
    buf[o + i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  o += d;
  buf[o++] = 13;
  buf[o++] = 10;
  return o;
}

function grow(n: number): number {
  let size = 256;
  while (size < n) size *= 2;
  return size;
}
