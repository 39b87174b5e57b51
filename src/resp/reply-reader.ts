// Backend reply framing: finds where one complete RESP2/RESP3 value ends, resumable across chunks.

import { decimalValue, NEED_MORE, PROTOCOL_ERROR, readDecimal } from "./decimal.ts";
import { MAX_BULK_LEN } from "./request-reader.ts";

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
        next = readDecimal(buf, p + 1, end);
        if (next === NEED_MORE) { s.needBytes = end - at + 1; return NEED_MORE; }
        if (next < 0 || decimalValue < -1 || decimalValue > MAX_BULK_LEN) return PROTOCOL_ERROR;
        if (decimalValue >= 0) {
          const bodyEnd = next + decimalValue;
          if (bodyEnd + 2 > end) { s.needBytes = bodyEnd + 2 - at; return NEED_MORE; }
          if (buf[bodyEnd] !== CR || buf[bodyEnd + 1] !== LF) return PROTOCOL_ERROR;
          next = bodyEnd + 2;
        }
        s.owed--;
        break;
      }
      case 42: case 126: case 62: case 37: case 124: { // * ~ > % |
        next = readDecimal(buf, p + 1, end);
        if (next === NEED_MORE) { s.needBytes = end - at + 1; return NEED_MORE; }
        if (next < 0 || decimalValue < -1) return PROTOCOL_ERROR;
        const n = decimalValue < 0 ? 0 : type === 37 || type === 124 ? 2 * decimalValue : decimalValue;
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
