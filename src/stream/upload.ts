// A client's command with a large argument, forwarded to its node as its bytes arrive.

import type { BackendConn } from "../backend/backend-conn.ts";
import { ConnState } from "../backend/backend-conn.ts";
import type { Request } from "../router/request.ts";
import { CONTINUES, MALFORMED, StreamScan } from "../resp/stream-scan.ts";

/**
 * A bulk argument at least this long is streamed rather than assembled: below it, assembling
 * costs less than the bookkeeping (measured: bench/RESULTS.md, "big values").
 */
export const STREAM_MIN_BYTES = 64 * 1024;

/**
 * What streamed commands keep of their bytes, process-wide, so that one redirected (MOVED, ASK)
 * or retried after being sent can be sent again. Views of the chunks as the client's socket
 * delivered them: keeping them copies nothing. Past the budget a streamed command keeps
 * nothing, and a redirect of it is answered with an error instead.
 */
export const retained = { max: 64 * 1024 * 1024, bytes: 0 };

/**
 * One upload: the command's bytes from its first, checked as they pass (StreamScan), written
 * to one node connection, which sends nothing else until the command's last byte (other
 * commands for it wait behind, as they would behind it on the wire).
 */
export class Upload {
  private readonly scan = new StreamScan(true);
  /** Views of every byte so far, while within the budget; null: not kept. */
  private chunks: Uint8Array[] | null = [];
  private kept = 0;
  /** Bytes of the command seen so far. */
  size = 0;
  /** Every byte has passed. */
  complete = false;
  /** The connection went while the command was on its way: the rest is read and dropped. */
  private dead = false;

  constructor(readonly req: Request, private readonly conn: BackendConn) {
    conn.beginUpload(req);
  }

  /**
   * Takes `buf[start, end)`, the next bytes from the client: returns the offset just past the
   * command's end, CONTINUES (all of it was the command's), or MALFORMED (the command is
   * refused: nothing of the bad bytes was passed on, and the connection will be closed).
   */
  feed(buf: Uint8Array, start: number, end: number): number {
    const r = this.scan.feed(buf, start, end);
    if (r === MALFORMED) {
      this.abandon();
      return MALFORMED;
    }
    const stop = r === CONTINUES ? end : r;
    this.size += stop - start;
    if (!this.dead && this.conn.state === ConnState.CLOSED) this.dead = true;
    if (!this.dead) this.conn.uploadMore(buf, start, stop, this.req.sink);
    this.keep(buf, start, stop);
    if (r !== CONTINUES) {
      this.complete = true;
      if (!this.dead) this.conn.endUpload(this.req);
    }
    return r;
  }

  private keep(buf: Uint8Array, start: number, end: number): void {
    if (this.chunks === null) return;
    const n = end - start;
    if (retained.bytes + n > retained.max) return this.forget();
    this.chunks.push(buf.subarray(start, end));
    this.kept += n;
    retained.bytes += n;
  }

  /** Lets go of the kept bytes (the request is answered, or they went past the budget). */
  forget(): void {
    retained.bytes -= this.kept;
    this.kept = 0;
    this.chunks = null;
  }

  /**
   * The whole command as one buffer, to send it again (a redirect, a retry); null when its
   * bytes were not kept or have not all arrived. The kept views are released.
   */
  bytes(): Uint8Array | null {
    if (!this.complete || this.chunks === null) return null;
    const out = Buffer.concat(this.chunks, this.kept);
    this.forget();
    return out;
  }

  /** The client went or sent something malformed mid-command: the node must not get the rest. */
  abandon(): void {
    this.forget();
    if (this.complete || this.dead) return;
    this.dead = true;
    this.conn.abandonUpload(this.req);
  }
}

