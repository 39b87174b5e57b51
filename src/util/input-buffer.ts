// Input assembly for a socket: parse chunks in place, keep only an unfinished message's bytes.

/**
 * Bun hands each `data` event a fresh buffer, so complete messages are parsed and forwarded
 * as views of it. Only the tail of an unfinished message is copied, into a buffer of its own
 * that is never overwritten once a view into it has been handed out.
 */
const MAX_PREALLOC = 16 * 1024 * 1024;

export class InputBuffer {
  private acc: Uint8Array | null = null;
  private len = 0;

  constructor(private readonly initial: number) {}

  /** Bytes buffered from earlier chunks (an unfinished message). */
  get pending(): number {
    return this.len;
  }

  /** The buffer to parse from offset 0: `chunk` itself, or the kept tail with `chunk` appended. */
  feed(chunk: Uint8Array): Uint8Array {
    if (this.acc === null) return chunk;
    const need = this.len + chunk.length;
    if (need > this.acc.length) {
      let cap = this.acc.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.acc.subarray(0, this.len));
      this.acc = next;
    }
    this.acc.set(chunk, this.len);
    this.len = need;
    return this.acc.subarray(0, need);
  }

  /**
   * Call after parsing `buf` (from feed) up to `at`. Keeps `[at, buf.length)` for the next
   * feed; `hint` is how many bytes the unfinished message needs in total, if known.
   */
  keep(buf: Uint8Array, at: number, hint: number): void {
    const rest = buf.length - at;
    if (rest === 0) {
      this.acc = null;
      this.len = 0;
      return;
    }
    // Nothing consumed from our own buffer: no views into it exist, keep filling it.
    if (at === 0 && this.acc !== null && buf.buffer === this.acc.buffer) return;
    // The hint comes from a peer's length header: trust it only so far before bytes arrive.
    const next = new Uint8Array(Math.max(Math.min(hint, rest + MAX_PREALLOC), rest * 2, this.initial));
    next.set(buf.subarray(at));
    this.acc = next;
    this.len = rest;
  }

  clear(): void {
    this.acc = null;
    this.len = 0;
  }
}
