// The `<digits>\r\n` line after a RESP type byte, shared by the request and reply readers.

/** Returned when the line is not complete yet. */
export const NEED_MORE = 0;
/** Returned on malformed input. */
export const PROTOCOL_ERROR = -1;

const CR = 13, LF = 10, MINUS = 45;

/** The number parsed by the last successful readDecimal (a result slot, not a tuple per call). */
export let decimalValue = 0;

/**
 * Reads an optionally negative decimal ending in CRLF, starting at p. Returns the offset after
 * the LF, NEED_MORE or PROTOCOL_ERROR (no digits, a non-digit, more than 15 digits, CR without
 * LF, and like Redis' string2ll a leading zero or "-0": a node would reject those bytes, and
 * forwarded as they are they would break a connection other clients share).
 */
export function readDecimal(buf: Uint8Array, p: number, end: number): number {
  let neg = false, n = 0, digits = 0;
  if (p < end && buf[p] === MINUS) { neg = true; p++; }
  while (p < end) {
    const c = buf[p];
    if (c === CR) {
      if (p + 1 >= end) return NEED_MORE;
      if (buf[p + 1] !== LF || digits === 0 || (neg && n === 0)) return PROTOCOL_ERROR;
      decimalValue = neg ? -n : n;
      return p + 2;
    }
    const d = c - 48;
    if (d < 0 || d > 9 || ++digits > 15 || (n === 0 && digits > 1)) return PROTOCOL_ERROR;
    n = n * 10 + d;
    p++;
  }
  return NEED_MORE;
}
