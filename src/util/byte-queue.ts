// A byte queue that collects output for one socket and writes it with backpressure.

import type { Socket } from "bun";
import { copyBytes } from "./copy-bytes.ts";

/**
 * The contiguous buffer grows (doubling) up to this; past it, bytes go to segments of this
 * size. A backlog of hundreds of MB (a client that does not read) then costs no copy larger
 * than this, where doubling one buffer copied it whole at each step and stalled the event
 * loop (and every other client) for tens of milliseconds at a time.
 */
const SEGMENT = 1024 * 1024;

/**
 * Buffers whose queue emptied (or outgrew them), by size, for the next queue that needs one: an
 * idle connection holds none (10,000 idle clients each kept a touched 64 KiB buffer: ~5 KB of
 * RSS apiece), busy ones take turns with a few warm buffers, and a stream of 100 KB values does
 * not allocate and zero a new buffer at every step of growth (that was a fifth of the CPU).
 */
const spare = new Map<number, Uint8Array[]>();
const SPARE_MAX_BYTES = 32 * 1024 * 1024;
let spareBytes = 0;

function take(size: number): Uint8Array {
  const b = spare.get(size)?.pop();
  if (b === undefined) return new Uint8Array(size);
  spareBytes -= size;
  return b;
}

/** `b` (a whole buffer of ours, or a view from its start) is not used any more. */
function putBack(b: Uint8Array, initial: number, cap: number): void {
  // (Reading `.buffer` makes JSC give a small typed array an ArrayBuffer object of its own: only
  // a segment's view, never the common buffer of the initial size, needs it.)
  const size = b.length === initial ? initial : b.buffer.byteLength;
  // Sizes other than the initial one doubled keep the map small (a one-off huge append is dropped).
  if (size > cap || size % initial !== 0 || spareBytes + size > SPARE_MAX_BYTES) return;
  let list = spare.get(size);
  if (list === undefined) spare.set(size, (list = []));
  list.push(b.length === size ? b : new Uint8Array(b.buffer));
  spareBytes += size;
}

/** Output bytes waiting for one socket: appended by many producers, written once per tick. */
export class ByteQueue {
  /** EMPTY while nothing is queued: a buffer is taken on the first append (see `spare`). */
  private buf: Uint8Array = EMPTY;
  /** Bytes before `start` were written already; the queued bytes are buf[start, len), then the segments. */
  private start = 0;
  private len = 0;
  /** Past the buffer: full segments (exact views), oldest first from `sealedAt`, then `tail`. */
  private sealed: Uint8Array[] = [];
  private sealedAt = 0;
  private sealedBytes = 0;
  private tail: Uint8Array | null = null;
  private tailLen = 0;
  private readonly cap: number;

  /** `segment`: the size past which the buffer stops growing and segments start (tests make it small). */
  constructor(private readonly initial: number, private readonly segment = SEGMENT) {
    this.cap = Math.max(initial, segment);
  }

  get size(): number {
    return this.len - this.start + this.sealedBytes + this.tailLen;
  }

  append(src: Uint8Array): void {
    this.appendRange(src, 0, src.length);
  }

  appendRange(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.tail === null) {
      if (this.len + n <= this.buf.length || this.makeRoom(n)) {
        this.len = copyBytes(this.buf, this.len, src, start, end);
        return;
      }
    }
    this.appendSegment(src, start, end);
  }

  /**
   * Room for `n` more bytes at the end of the buffer, or false when that would take it past
   * `cap` (the bytes then go to a segment). The written bytes at the front are reclaimed in
   * place only once there are at least as many of them as queued ones (else the buffer grows),
   * so a socket that drains a little at a time under a large backlog does not make every append
   * move the whole backlog.
   */
  private makeRoom(n: number): boolean {
    if (this.buf === EMPTY && n <= this.initial) {
      this.buf = take(this.initial);
      return true;
    }
    const live = this.len - this.start;
    if (live + n <= this.buf.length && this.start >= live) {
      this.buf.copyWithin(0, this.start, this.len);
    } else {
      if (live + n > this.cap && live > 0) return false;
      let cap = Math.max(this.buf.length, this.initial) * 2;
      while (cap < live + n) cap *= 2;
      const next = take(Math.max(live + n, Math.min(cap, this.cap)));
      next.set(this.buf.subarray(this.start, this.len));
      if (this.buf !== EMPTY) putBack(this.buf, this.initial, this.cap);
      this.buf = next;
    }
    this.start = 0;
    this.len = live;
    return true;
  }

  private appendSegment(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.tail !== null && this.tailLen + n <= this.tail.length) {
      this.tailLen = copyBytes(this.tail, this.tailLen, src, start, end);
      return;
    }
    if (this.tail !== null) {
      this.sealed.push(this.tail.subarray(0, this.tailLen));
      this.sealedBytes += this.tailLen;
    }
    this.tail = take(Math.max(this.segment, n));
    this.tailLen = copyBytes(this.tail, 0, src, start, end);
  }

  /**
   * Writes what the socket accepts. Returns true when everything went out; otherwise the
   * rest stays queued for the next `drain`. Bun's write() does not buffer what it refuses.
   */
  writeTo(socket: Socket<unknown>): boolean {
    for (;;) {
      const live = this.len - this.start;
      if (live > 0) {
        const n = socket.write(this.buf, this.start, live);
        if (n < live) {
          if (n > 0) this.start += n;
          return false;
        }
      }
      if (!this.promote()) {
        this.start = this.len = 0;
        this.giveBack();
        return true;
      }
    }
  }

  /** The buffer is written out: the next segment (if any) becomes the buffer. */
  private promote(): boolean {
    if (this.sealedAt < this.sealed.length || this.tail !== null) putBack(this.buf, this.initial, this.cap);
    if (this.sealedAt < this.sealed.length) {
      const next = this.sealed[this.sealedAt];
      this.sealed[this.sealedAt++] = EMPTY;
      this.sealedBytes -= next.length;
      if (this.sealedAt === this.sealed.length) {
        this.sealed = [];
        this.sealedAt = 0;
      }
      this.buf = next;
      this.start = 0;
      this.len = next.length;
      return true;
    }
    if (this.tail !== null) {
      this.buf = this.tail;
      this.start = 0;
      this.len = this.tailLen;
      this.tail = null;
      this.tailLen = 0;
      return true;
    }
    return false;
  }

  clear(): void {
    this.start = this.len = 0;
    this.sealed = [];
    this.sealedAt = this.sealedBytes = 0;
    this.tail = null;
    this.tailLen = 0;
    this.giveBack();
  }

  /** Empty: the buffer goes back to `spare`. */
  private giveBack(): void {
    if (this.buf !== EMPTY) putBack(this.buf, this.initial, this.cap);
    this.buf = EMPTY;
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);
