// Bump allocation of short-lived byte ranges from shared buffers: one allocation per slab, not per message.

/**
 * Split commands and merged replies live from a dispatch to a write. A fresh Uint8Array for
 * each was a third of the split path's time in profiles; carving them from one large buffer
 * costs an add. A slab is never rewritten: when it is full, a new one is started, and the old
 * one is freed once nothing refers to it (a request holding a range holds the slab).
 */
export class Slab {
  buf: Uint8Array;
  private used = 0;

  constructor(private readonly size = 256 * 1024) {
    this.buf = Bun.allocUnsafe(size);
  }

  /** Reserves `n` bytes; they are `this.buf[at, at + n)` for the returned `at` (read `buf` after the call). */
  alloc(n: number): number {
    if (this.used + n > this.buf.length) {
      this.buf = Bun.allocUnsafe(Math.max(this.size, n));
      this.used = 0;
    }
    const at = this.used;
    this.used += n;
    return at;
  }
}
