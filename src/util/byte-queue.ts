// A growable byte buffer that collects output for one socket and writes it with backpressure.

import type { Socket } from "bun";

/** Output bytes waiting for one socket: appended by many producers, written once per tick. */
export class ByteQueue {
  private buf: Uint8Array;
  private len = 0;

  constructor(private readonly initial: number) {
    this.buf = new Uint8Array(initial);
  }

  get size(): number {
    return this.len;
  }

  append(src: Uint8Array): void {
    const n = src.length;
    if (this.len + n > this.buf.length) this.grow(this.len + n);
    this.buf.set(src, this.len);
    this.len += n;
  }

  appendRange(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n > 256) return this.append(src.subarray(start, end));
    // Most commands and replies are small: a byte loop beats making a view to copy from.
    if (this.len + n > this.buf.length) this.grow(this.len + n);
    const buf = this.buf;
    let o = this.len;
    for (let i = start; i < end; i++) buf[o++] = src[i];
    this.len = o;
  }

  private grow(need: number): void {
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /**
   * Writes what the socket accepts. Returns true when everything went out; otherwise the
   * rest stays queued for the next `drain`. Bun's write() does not buffer what it refuses.
   */
  writeTo(socket: Socket<unknown>): boolean {
    if (this.len === 0) return true;
    const n = socket.write(this.buf, 0, this.len);
    if (n >= this.len) {
      this.len = 0;
      // A burst of large replies must not pin a huge buffer for the life of the connection.
      if (this.buf.length > this.initial * 16) this.buf = new Uint8Array(this.initial);
      return true;
    }
    if (n > 0) {
      this.buf.copyWithin(0, n, this.len);
      this.len -= n;
    }
    return false;
  }

  clear(): void {
    this.len = 0;
    if (this.buf.length > this.initial) this.buf = new Uint8Array(this.initial);
  }
}
