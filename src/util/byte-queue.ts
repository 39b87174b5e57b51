// A growable byte buffer that collects output for one socket and writes it with backpressure.

import type { Socket } from "bun";
import { copyBytes } from "./copy-bytes.ts";

/** Output bytes waiting for one socket: appended by many producers, written once per tick. */
export class ByteQueue {
  private buf: Uint8Array;
  /** Bytes before `start` were written already; the queued bytes are buf[start, len). */
  private start = 0;
  private len = 0;

  constructor(private readonly initial: number) {
    this.buf = new Uint8Array(initial);
  }

  get size(): number {
    return this.len - this.start;
  }

  append(src: Uint8Array): void {
    const n = src.length;
    if (this.len + n > this.buf.length) this.makeRoom(n);
    this.buf.set(src, this.len);
    this.len += n;
  }

  appendRange(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.makeRoom(n);
    this.len = copyBytes(this.buf, this.len, src, start, end);
  }

  /**
   * Room for `n` more bytes at the end. The written bytes at the front are reclaimed in place
   * only once there are at least as many of them as queued ones (else the buffer grows), so a
   * socket that drains a little at a time under a large backlog does not make every append move
   * the whole backlog.
   */
  private makeRoom(n: number): void {
    const live = this.len - this.start;
    if (live + n <= this.buf.length && this.start >= live) {
      this.buf.copyWithin(0, this.start, this.len);
    } else {
      let cap = this.buf.length * 2;
      while (cap < live + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(this.start, this.len));
      this.buf = next;
    }
    this.start = 0;
    this.len = live;
  }

  /**
   * Writes what the socket accepts. Returns true when everything went out; otherwise the
   * rest stays queued for the next `drain`. Bun's write() does not buffer what it refuses.
   */
  writeTo(socket: Socket<unknown>): boolean {
    const live = this.len - this.start;
    if (live === 0) return true;
    const n = socket.write(this.buf, this.start, live);
    if (n >= live) {
      this.start = this.len = 0;
      // A burst of large replies must not pin a huge buffer for the life of the connection.
      if (this.buf.length > this.initial * 16) this.buf = new Uint8Array(this.initial);
      return true;
    }
    if (n > 0) this.start += n;
    return false;
  }

  clear(): void {
    this.start = this.len = 0;
    if (this.buf.length > this.initial) this.buf = new Uint8Array(this.initial);
  }
}
