// Finds where one RESP value ends in bytes that pass through in pieces and are not kept.

import { MAX_BULK_LEN } from "./request-reader.ts";

/** feed's results besides an offset: the value goes on past these bytes, or is malformed. */
export const CONTINUES = -1;
export const MALFORMED = -2;

const CR = 13, LF = 10;
/** A header line (`$123`, `*4`, `+OK`, `-ERR …`) longer than this is malformed here. */
const MAX_LINE = 64 * 1024;

/**
 * Scans a value whose bytes are seen once each, chunk by chunk (a large value streamed between a
 * client and a node): bulk bodies are counted past, never looked at, and only a header line cut
 * by a chunk boundary is copied. With `request`, only a command's shape is accepted (an array of
 * bulk strings), and each body's CRLF is checked, so that nothing malformed reaches a node.
 */
export class StreamScan {
  /** Values still owed before the value is complete (an aggregate of n owes n more). */
  private owed = 1;
  /** Bulk body bytes still to pass, then its CRLF (`crlf` bytes of it). */
  private body = 0;
  private crlf = 0;
  private line = new Uint8Array(64);
  private lineLen = 0;
  private first = true;

  constructor(private readonly request: boolean) {}

  /** Ready for the next value. */
  reset(): void {
    this.owed = 1;
    this.body = this.crlf = this.lineLen = 0;
    this.first = true;
  }

  /**
   * Consumes `buf[start, end)`: returns the offset just past the value's end, CONTINUES when all
   * of it belongs to the value and more is to come, or MALFORMED (bytes before the bad one may
   * belong to the value: the caller must not pass them on).
   */
  feed(buf: Uint8Array, start: number, end: number): number {
    let p = start;
    while (p < end) {
      if (this.body > 0) {
        const n = Math.min(this.body, end - p);
        this.body -= n;
        p += n;
        continue;
      }
      if (this.crlf > 0) {
        if (this.request && buf[p] !== (this.crlf === 2 ? CR : LF)) return MALFORMED;
        this.crlf--;
        p++;
        if (this.crlf === 0 && this.owed === 0) return p;
        continue;
      }
      const lf = buf.indexOf(LF, p);
      if (lf < 0 || lf >= end) {
        if (!this.keepLine(buf, p, end)) return MALFORMED;
        return CONTINUES;
      }
      if (!this.keepLine(buf, p, lf + 1) || !this.header()) return MALFORMED;
      p = lf + 1;
      if (this.owed === 0 && this.body === 0 && this.crlf === 0) return p;
    }
    return CONTINUES;
  }

  private keepLine(buf: Uint8Array, from: number, to: number): boolean {
    const n = to - from;
    if (this.lineLen + n > MAX_LINE) return false;
    if (this.lineLen + n > this.line.length) {
      const next = new Uint8Array(Math.min(MAX_LINE, Math.max(2 * this.line.length, this.lineLen + n)));
      next.set(this.line.subarray(0, this.lineLen));
      this.line = next;
    }
    this.line.set(buf.subarray(from, to), this.lineLen);
    this.lineLen += n;
    return true;
  }

  /** The complete line in `line` (ending in LF): what it opens or ends. */
  private header(): boolean {
    const l = this.line, len = this.lineLen;
    this.lineLen = 0;
    if (len < 3 || l[len - 2] !== CR) return false;
    const type = l[0];
    const first = this.first;
    this.first = false;
    if (this.request) {
      if (first ? type !== 42 : type !== 36) return false; // '*' then '$'
    }
    switch (type) {
      case 43: case 45: case 58: case 95: case 35: case 44: case 40: // + - : _ # , (
        this.owed--;
        return true;
      case 36: case 33: case 61: { // $ ! =
        const n = decimal(l, 1, len - 2);
        if (n < (this.request ? 0 : -1) || n > MAX_BULK_LEN) return false;
        this.owed--;
        if (n >= 0) {
          this.body = n;
          this.crlf = 2;
        }
        return true;
      }
      case 42: case 126: case 62: case 37: case 124: { // * ~ > % |
        const n = decimal(l, 1, len - 2);
        if (n < -1 || (this.request && n < 1)) return false;
        const count = n < 0 ? 0 : type === 37 || type === 124 ? 2 * n : n;
        // An attribute (|) decorates the value after it, so it owes that value too.
        this.owed += type === 124 ? count : count - 1;
        return true;
      }
      default:
        return false;
    }
  }
}

/** The decimal in `b[from, to)`, or -2 when it is not one (an optional '-', then digits). */
function decimal(b: Uint8Array, from: number, to: number): number {
  let neg = false, p = from;
  if (b[p] === 45) { neg = true; p++; }
  if (p >= to || to - p > 12) return -2;
  let n = 0;
  for (; p < to; p++) {
    const d = b[p] - 48;
    if (d < 0 || d > 9) return -2;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}
