// Client request framing: finds one command in a byte stream, as offsets, without decoding text.

import { decimalValue, NEED_MORE, PROTOCOL_ERROR, readDecimal } from "./decimal.ts";

/** readCommand returns NEED_MORE when the command is not complete yet, PROTOCOL_ERROR on
 * malformed input (`frame.error` says why, in Redis' wording). */
export { NEED_MORE, PROTOCOL_ERROR };

/** Redis' own limits (proto-max-bulk-len, PROTO_INLINE_MAX_SIZE, multibulk sanity bound). */
export const MAX_BULK_LEN = 512 * 1024 * 1024;
export const MAX_INLINE = 64 * 1024;
export const MAX_MULTIBULK = 1024 * 1024 * 1024;
/** Redis' caps for a client that has not authenticated yet (so it cannot make us buffer much). */
export const UNAUTH_MAX_ARGS = 10;
export const UNAUTH_MAX_BULK = 16 * 1024;

const CR = 13, LF = 10, STAR = 42, DOLLAR = 36;

/**
 * One parsed command. Its RESP bytes are `src[base, base + size)`; argument i is
 * `src[base + argStart[i], base + argEnd[i])`. For multibulk input `src` is the caller's
 * buffer (zero-copy); an inline command is re-encoded as multibulk into a fresh `src`.
 * The private fields carry a partly read command across calls (see readCommand).
 */
export class Frame {
  src: Uint8Array = EMPTY;
  base = 0;
  size = 0;
  argc = 0;
  argStart = new Int32Array(8);
  argEnd = new Int32Array(8);
  inline = false;
  error = "";
  /** Bytes (from the command's start) that must be buffered before progress is possible. */
  needBytes = 0;
  /**
   * After NEED_MORE inside an argument's body: that argument's length (the args before it are
   * complete, `argc` of them); else -1. A large one can be streamed (see stream/upload.ts).
   */
  partialBulk = -1;
  // Resume state, relative to the command's first byte.
  expected = -1;
  scanned = 0;
  /** Limits below Redis' own while the client has not authenticated. */
  unauthenticated = false;

  /** Arg i as a fresh view (for the control path; the hot path reads offsets). */
  arg(i: number): Uint8Array {
    return this.src.subarray(this.base + this.argStart[i], this.base + this.argEnd[i]);
  }

  /** The command's bytes as they are to be forwarded. */
  bytes(): Uint8Array {
    return this.src.subarray(this.base, this.base + this.size);
  }

  /** Forgets a command read in part (it is being streamed instead): the next call starts afresh. */
  restart(): void {
    this.expected = -1;
    this.scanned = 0;
    this.needBytes = 0;
    this.partialBulk = -1;
  }

  push(start: number, end: number): void {
    if (this.argc === this.argStart.length) {
      const s = new Int32Array(this.argc * 2), e = new Int32Array(this.argc * 2);
      s.set(this.argStart); e.set(this.argEnd);
      this.argStart = s; this.argEnd = e;
    }
    this.argStart[this.argc] = start;
    this.argEnd[this.argc] = end;
    this.argc++;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Reads one command starting at `at`. Returns the bytes consumed (> 0), NEED_MORE or
 * PROTOCOL_ERROR. A consumed command with `argc === 0` is an empty request (`*0`, blank
 * line) that Redis ignores. After NEED_MORE, call again with the same prefix at `at`
 * (possibly moved to another buffer) plus more bytes: the frame resumes where it stopped.
 */
export function readCommand(buf: Uint8Array, at: number, end: number, f: Frame): number {
  if (f.expected < 0) {
    if (at >= end) return NEED_MORE;
    if (buf[at] !== STAR) return readInline(buf, at, end, f);
    const p = readDecimal(buf, at + 1, end);
    if (p === NEED_MORE) {
      f.needBytes = end - at + 1;
      if (end - at > MAX_INLINE) return fail(f, "Protocol error: too big mbulk count string");
      return NEED_MORE;
    }
    if (p < 0 || decimalValue > MAX_MULTIBULK) return fail(f, "Protocol error: invalid multibulk length");
    if (f.unauthenticated && decimalValue > UNAUTH_MAX_ARGS) return fail(f, "Protocol error: unauthenticated multibulk length");
    f.argc = 0;
    f.inline = false;
    f.scanned = p - at;
    if (decimalValue <= 0) return done(buf, at, p - at, f);
    f.expected = decimalValue;
  }
  let p = at + f.scanned;
  while (f.argc < f.expected) {
    if (p >= end) return needMore(f, p - at + 1);
    if (buf[p] !== DOLLAR) {
      return fail(f, `Protocol error: expected '$', got '${String.fromCharCode(buf[p])}'`);
    }
    const body = readDecimal(buf, p + 1, end);
    if (body === NEED_MORE) {
      if (end - p > 32) return fail(f, "Protocol error: invalid bulk length");
      return needMore(f, end - at + 1);
    }
    if (body < 0 || decimalValue < 0 || decimalValue > MAX_BULK_LEN) {
      return fail(f, "Protocol error: invalid bulk length");
    }
    if (f.unauthenticated && decimalValue > UNAUTH_MAX_BULK) return fail(f, "Protocol error: unauthenticated bulk length");
    const bodyEnd = body + decimalValue;
    if (bodyEnd + 2 > end) {
      needMore(f, bodyEnd + 2 - at);
      f.partialBulk = decimalValue;
      return NEED_MORE;
    }
    if (buf[bodyEnd] !== CR || buf[bodyEnd + 1] !== LF) {
      return fail(f, "Protocol error: expected CRLF after bulk string");
    }
    f.push(body - at, bodyEnd - at);
    p = bodyEnd + 2;
    f.scanned = p - at;
  }
  f.expected = -1;
  return done(buf, at, p - at, f);
}

function needMore(f: Frame, bytes: number): number {
  f.needBytes = bytes;
  f.partialBulk = -1;
  return NEED_MORE;
}

function done(buf: Uint8Array, at: number, size: number, f: Frame): number {
  f.src = buf;
  f.base = at;
  f.size = size;
  f.scanned = 0;
  f.needBytes = 0;
  f.partialBulk = -1;
  return size;
}

function fail(f: Frame, msg: string): number {
  f.error = msg;
  f.expected = -1;
  f.scanned = 0;
  f.partialBulk = -1;
  return PROTOCOL_ERROR;
}

/** Inline commands (`PING\r\n`): split like Redis' sdssplitargs, then re-encoded as multibulk. */
function readInline(buf: Uint8Array, at: number, end: number, f: Frame): number {
  let nl = at + f.scanned;
  while (nl < end && buf[nl] !== LF) nl++;
  if (nl >= end) {
    if (end - at > MAX_INLINE) return fail(f, "Protocol error: too big inline request");
    f.scanned = end - at;
    return needMore(f, end - at + 1);
  }
  const lineEnd = nl > at && buf[nl - 1] === CR ? nl - 1 : nl;
  const args = splitArgs(buf, at, lineEnd);
  if (args === null) return fail(f, "Protocol error: unbalanced quotes in request");
  const consumed = nl + 1 - at;
  f.inline = true;
  f.argc = 0;
  f.scanned = 0;
  f.needBytes = 0;
  if (args.length === 0) return consumed;
  encodeInto(args, f);
  return consumed;
}

function encodeInto(args: number[][], f: Frame): void {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`*${args.length}\r\n`)];
  let size = parts[0].length;
  const offsets: number[] = [];
  for (const a of args) {
    const head = enc.encode(`$${a.length}\r\n`);
    parts.push(head, Uint8Array.from(a), CRLF);
    offsets.push(size + head.length);
    size += head.length + a.length + 2;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const part of parts) { out.set(part, o); o += part.length; }
  for (let i = 0; i < args.length; i++) f.push(offsets[i], offsets[i] + args[i].length);
  f.src = out;
  f.base = 0;
  f.size = size;
}

const CRLF = new Uint8Array([CR, LF]);

const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
const hexVal = (c: number) =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;

/** Redis' sdssplitargs over bytes: quotes, "\xHH" and "\n"-style escapes. Null = unbalanced. */
export function splitArgs(buf: Uint8Array, p: number, end: number): number[][] | null {
  const out: number[][] = [];
  for (;;) {
    while (p < end && isSpace(buf[p])) p++;
    if (p >= end) return out;
    const cur: number[] = [];
    let inDq = false, inSq = false;
    for (;;) {
      if (inDq) {
        if (p >= end) return null;
        const c = buf[p];
        if (c === 92 && p + 3 < end && buf[p + 1] === 120 && hexVal(buf[p + 2]) >= 0 && hexVal(buf[p + 3]) >= 0) {
          cur.push(hexVal(buf[p + 2]) * 16 + hexVal(buf[p + 3]));
          p += 3;
        } else if (c === 92 && p + 1 < end) {
          p++;
          const e = buf[p];
          cur.push(e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e);
        } else if (c === 34) {
          if (p + 1 < end && !isSpace(buf[p + 1])) return null;
          inDq = false;
        } else cur.push(c);
      } else if (inSq) {
        if (p >= end) return null;
        const c = buf[p];
        if (c === 92 && p + 1 < end && buf[p + 1] === 39) { p++; cur.push(39); }
        else if (c === 39) {
          if (p + 1 < end && !isSpace(buf[p + 1])) return null;
          inSq = false;
        } else cur.push(c);
      } else {
        if (p >= end) break;
        const c = buf[p];
        if (isSpace(c)) break;
        if (c === 34) inDq = true;
        else if (c === 39) inSq = true;
        else cur.push(c);
      }
      p++;
    }
    out.push(cur);
  }
}
