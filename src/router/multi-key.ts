// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH over keys in several slots: one part per slot, replies merged.

import { Merge, type CommandSpec } from "../commands/command-table.ts";
import { slotOf } from "../cluster/key-slot.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { copyBytes } from "../util/copy-bytes.ts";
import { Slab } from "../util/slab.ts";
import { Gather, isError, partFailure, replyInteger } from "./gather.ts";
import type { Request } from "./request.ts";

/** keysSlot's answer when the keys hash to more than one slot. */
export const MIXED = -2;

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
  const src = f.src, base = f.base, argEnd = f.argEnd;
  const name = spec.wireName;
  // Every frame is multibulk (an inline command is re-encoded), so a key's arguments are one
  // run of the client's own bytes, from after the previous argument's CRLF to after their own:
  // a part is the constant head and one copy of that run.
  const headLen = headerSize(1 + step) + name.length;
  const first = base + argEnd[0] + 2;
  let o = slab.alloc(keys * headLen + (base + argEnd[f.argc - 1] + 2 - first));
  const buf = slab.buf;
  writeHeader(buf, o, 42, 1 + step);
  copyBytes(buf, o + headLen - name.length, name, 0, name.length);
  const head = o;
  const g = gathers.pop()?.reuse(parent, spec) ?? new MultiKeyGather(parent, spec);
  let from = first;
  for (let k = 0, last = step; k < keys; k++, last += step) {
    const at = o;
    o = k === 0 ? o + headLen : copyBytes(buf, o, buf, head, head + headLen);
    const to = base + argEnd[last] + 2;
    o = copyBytes(buf, o, src, from, to);
    from = to;
    g.addPart(buf, at, o, keySlots[k], null);
  }
  return g;
}

/** A multi-key command split per key; merge() answers as the whole command would have. */
export class MultiKeyGather extends Gather {
  constructor(parent: Request, private spec: CommandSpec) {
    super(parent);
  }

  /**
   * Pooled, with its parts array: under a split-MGET load, making these afresh for every command
   * had the garbage collector take a sixth of the proxy's time.
   */
  reuse(parent: Request, spec: CommandSpec): this {
    this.parent = parent;
    this.spec = spec;
    this.waiting = 0;
    parent.gather = this;
    return this;
  }

  override recycle(): void {
    this.parts.length = 0;
    if (gathers.length < 1024) gathers.push(this);
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
        return writeInt(sum);
      }
      default: {
        for (const r of parts) if (!isOk(r)) return partFailure(this, r, this.spec);
        return R.OK;
      }
    }
  }

  /** MGET: each part answered a one-element array; the elements, in key order. */
  private values(): Uint8Array {
    const parts = this.parts;
    let total = headerSize(parts.length);
    for (const r of parts) {
      // `*1\r\n` and then, the backend's framing having checked that the reply ends there,
      // exactly one element.
      if (r.reply[r.replyStart] !== 42 || r.reply[r.replyStart + 1] !== 49 || r.reply[r.replyStart + 2] !== 13) {
        return partFailure(this, r, this.spec);
      }
      total += r.replyEnd - r.replyStart - 4;
    }
    const at = slab.alloc(total), out = slab.buf;
    let o = writeHeader(out, at, 42, parts.length);
    for (const r of parts) o = copyBytes(out, o, r.reply, r.replyStart + 4, r.replyEnd);
    return out.subarray(at, o);
  }
}

const gathers: MultiKeyGather[] = [];
/** Parts' commands and merged replies (see util/slab.ts). */
const slab = new Slab();
/** `:n\r\n` for a count (n >= 0). */
function writeInt(n: number): Uint8Array {
  const out = new Uint8Array(headerSize(n));
  writeHeader(out, 0, 58, n);
  return out;
}

function isOk(r: Request): boolean {
  const b = r.reply, s = r.replyStart;
  return r.replyEnd - s === 5 && b[s] === 43 && b[s + 1] === 79 && b[s + 2] === 75;
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
