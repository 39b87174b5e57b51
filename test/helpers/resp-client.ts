// Raw RESP over a socket for byte-for-byte tests: send bytes, read back a given number of replies.

import type { TLSOptions } from "bun";
import { NEED_MORE, ReplyScan, scanReply } from "../../src/resp/reply-reader.ts";
import { encodeCommand } from "../../src/resp/reply-value.ts";

/** Encodes commands (string or binary arguments) back to back, as one pipeline. */
export function pipeline(commands: (string | Uint8Array)[][]): Uint8Array {
  const parts = commands.map((c) => encodeCommand(c));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/**
 * Sends `payload` to 127.0.0.1:`port` and resolves with the replies, each as its own bytes,
 * once `count` have arrived. Rejects if the peer closes first or `timeoutMs` passes.
 */
export async function exchange(port: number, payload: Uint8Array, count: number, timeoutMs = 30_000): Promise<Uint8Array[]> {
  const replies: Uint8Array[] = [];
  const framer = new ReplyFramer();
  const { promise, resolve, reject } = Promise.withResolvers<Uint8Array[]>();
  let written = 0;
  const pump = (s: { write(b: Uint8Array): number }) => {
    while (written < payload.length) {
      const n = s.write(payload.subarray(written));
      if (n <= 0) return;
      written += n;
    }
  };
  const sock = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: {
      data(_s, chunk) {
        if (!framer.feed(chunk, (r) => replies.push(r.slice()))) return reject(new Error("protocol error in reply"));
        if (replies.length >= count) resolve(replies);
      },
      drain(s) { pump(s); },
      close() { reject(new Error(`closed after ${replies.length}/${count} replies`)); },
      error(_s, e) { reject(e); },
    },
  });
  const timer = setTimeout(() => reject(new Error(`${replies.length}/${count} replies after ${timeoutMs} ms`)), timeoutMs);
  pump(sock);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
    sock.end();
  }
}

const dec = new TextDecoder();
/** A reply as text, for readable assertions. */
export const text = (b: Uint8Array) => dec.decode(b);

/** A plain (non-cluster) redis-server on `port`, for comparing answers with one Redis. */
export async function startStandalone(port: number): Promise<{ stop(): Promise<void> }> {
  const proc = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--protected-mode", "no"], { stdout: "ignore", stderr: "ignore" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const [r] = await exchange(port, encodeCommand(["PING"]), 1, 1000);
      if (dec.decode(r) === "+PONG\r\n") break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill("SIGKILL"); throw new Error(`redis-server on ${port} did not start`); }
    await Bun.sleep(50);
  }
  return { async stop() { proc.kill("SIGTERM"); await proc.exited; } };
}

/**
 * A client connection kept open across steps: bytes are sent when the test says, replies are
 * collected as they come (each as its own bytes), and the close is noticed.
 */
export class RespConn {
  readonly replies: Uint8Array[] = [];
  closed = false;
  private readonly framer = new ReplyFramer();
  private pending: Uint8Array[] = [];
  private sock!: Awaited<ReturnType<typeof Bun.connect<undefined>>>;

  static async open(port: number, tls?: TLSOptions): Promise<RespConn> {
    const c = new RespConn();
    c.sock = await Bun.connect({
      hostname: "127.0.0.1", port, tls,
      socket: {
        data: (_s, chunk) => c.onData(chunk),
        drain: () => c.pump(),
        close: () => { c.closed = true; },
        error: () => { c.closed = true; },
      },
    });
    return c;
  }

  /** Queues `bytes` (all of them are written, as the socket takes them). */
  send(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.pump();
  }

  /** Whether everything sent has been handed to the socket. */
  get sent(): boolean {
    return this.pending.length === 0;
  }

  /** Resolves once `count` replies in all have arrived; rejects on close or after `timeoutMs`. */
  async waitReplies(count: number, timeoutMs = 30_000): Promise<Uint8Array[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count) {
      if (this.closed) throw new Error(`closed after ${this.replies.length}/${count} replies`);
      if (Date.now() > deadline) throw new Error(`${this.replies.length}/${count} replies after ${timeoutMs} ms`);
      await Bun.sleep(5);
    }
    return this.replies.slice(0, count);
  }

  /** Resolves once the server has closed the connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`still open after ${timeoutMs} ms`);
      await Bun.sleep(5);
    }
  }

  /** Closes from the client's side, at once (RST if bytes are unsent). */
  destroy(): void {
    this.pending = [];
    this.sock.terminate();
    this.closed = true;
  }

  private pump(): void {
    while (this.pending.length > 0 && !this.closed) {
      const b = this.pending[0];
      const n = this.sock.write(b);
      if (n < b.length) { this.pending[0] = b.subarray(Math.max(n, 0)); return; }
      this.pending.shift();
    }
  }

  private onData(chunk: Uint8Array): void {
    this.framer.feed(chunk, (r) => this.replies.push(r.slice()));
  }

}

/**
 * Whole replies out of a stream of bytes split anywhere: `feed` hands each reply completed so far
 * to `each` (a view, valid during the call) and keeps the rest for the next chunk. False on bytes
 * that are not RESP.
 */
export class ReplyFramer {
  // A doubling buffer: large replies arrive in many chunks.
  private buf = new Uint8Array(4096);
  private len = 0;
  private readonly scan = new ReplyScan();

  feed(chunk: Uint8Array, each: (reply: Uint8Array) => void): boolean {
    if (this.len + chunk.length > this.buf.length) {
      const next = new Uint8Array(Math.max(2 * this.buf.length, this.len + chunk.length));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
    let at = 0, ok = true;
    for (;;) {
      const n = scanReply(this.buf, at, this.len, this.scan);
      if (n === NEED_MORE) break;
      if (n < 0) { ok = false; break; }
      each(this.buf.subarray(at, at + n));
      at += n;
    }
    if (at > 0) {
      this.buf.copyWithin(0, at, this.len);
      this.len -= at;
    }
    return ok;
  }
}
