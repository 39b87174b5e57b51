// Backend reply framing: finds where one complete RESP2/RESP3 value ends, resumable across chunks.

import { MAX_BULK_LEN, NEED_MORE, PROTOCOL_ERROR } from "./request-reader.ts";

export { NEED_MORE, PROTOCOL_ERROR };

const CR = 13, LF = 10;

/**
 * Progress through one reply. Nesting needs no stack: a reply is complete when the count
 * of values still owed drops to zero (an aggregate of n owes n more, a scalar owes none).
 */
export class ReplyScan {
  /** Offset, from the reply's first byte, of the next value to read. */
  pos = 0;
  /** Values still owed before the reply is complete. */
  owed = 1;
  /** Bytes (from the reply's start) needed before scanning can go on. */
  needBytes = 0;

  reset(): void {
    this.pos = 0;
    this.owed = 1;
    this.needBytes = 0;
  }
}

let lineValue = 0;

/** Parses a signed decimal up to CRLF from p; offset after LF, NEED_MORE or PROTOCOL_ERROR. */
function readLen(buf: Uint8Array, p: number, end: number): number {
  let neg = false, n = 0, digits = 0;
  if (p < end && buf[p] === 45) { neg = true; p++; }
  while (p < end) {
    const c = buf[p];
    if (c === CR) {
      if (p + 1 >= end) return NEED_MORE;
      if (buf[p + 1] !== LF || digits === 0) return PROTOCOL_ERROR;
      lineValue = neg ? -n : n;
      return p + 2;
    }
    const d = c - 48;
    if (d < 0 || d > 9 || ++digits > 15) return PROTOCOL_ERROR;
    n = n * 10 + d;
    p++;
  }
  return NEED_MORE;
}

/** Offset after the CRLF ending the line at p, or NEED_MORE. */
function skipLine(buf: Uint8Array, p: number, end: number): number {
  while (p < end) {
    if (buf[p] === LF && p > 0 && buf[p - 1] === CR) return p + 1;
    p++;
  }
  return NEED_MORE;
}

/**
 * Scans the reply starting at `at`. Returns its total size in bytes once complete,
 * NEED_MORE (call again with the same prefix plus more bytes; `s` remembers progress), or
 * PROTOCOL_ERROR. `s` is reset on completion.
 */
export function scanReply(buf: Uint8Array, at: number, end: number, s: ReplyScan): number {
  let p = at + s.pos;
  while (s.owed > 0) {
    if (p >= end) { s.needBytes = p - at + 1; return NEED_MORE; }
    const type = buf[p];
    let next: number;
    switch (type) {
      case 43: case 45: case 58: case 95: case 35: case 44: case 40: // + - : _ # , (
        next = skipLine(buf, p + 1, end);
        if (next === NEED_MORE) { s.needBytes = end - at + 1; return NEED_MORE; }
        s.owed--;
        break;
      case 36: case 33: case 61: { // $ ! =
        next = readLen(buf, p + 1, end);
        if (next === NEED_MORE) { s.needBytes = end - at + 1; return NEED_MORE; }
        if (next < 0 || lineValue < -1 || lineValue > MAX_BULK_LEN) return PROTOCOL_ERROR;
        if (lineValue >= 0) {
          const bodyEnd = next + lineValue;
          if (bodyEnd + 2 > end) { s.needBytes = bodyEnd + 2 - at; return NEED_MORE; }
          if (buf[bodyEnd] !== CR || buf[bodyEnd + 1] !== LF) return PROTOCOL_ERROR;
          next = bodyEnd + 2;
        }
        s.owed--;
        break;
      }
      case 42: case 126: case 62: case 37: case 124: { // * ~ > % |
        next = readLen(buf, p + 1, end);
        if (next === NEED_MORE) { s.needBytes = end - at + 1; return NEED_MORE; }
        if (next < 0 || lineValue < -1) return PROTOCOL_ERROR;
        const n = lineValue < 0 ? 0 : type === 37 || type === 124 ? 2 * lineValue : lineValue;
        // An attribute (|) decorates the value after it, so it owes that value too.
        s.owed += type === 124 ? n : n - 1;
        break;
      }
      default:
        return PROTOCOL_ERROR;
    }
    p = next;
    s.pos = p - at;
  }
  const size = s.pos;
  s.reset();
  return size;
}
