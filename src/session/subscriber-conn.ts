// One connection to a node in subscribed mode: (un)subscribe commands out, messages in.

import type { Socket } from "bun";
import { NEED_MORE, ReplyScan, scanReply } from "../resp/reply-reader.ts";
import { encodeCommand } from "../resp/reply-value.ts";
import { peerRefusal, type BackendTls } from "../tls/backend-tls.ts";
import { InputBuffer } from "../util/input-buffer.ts";
import { bytesOf, nameOf } from "./channel-name.ts";

/** What a subscriber connection reports. */
export interface SubscriberEvents {
  /**
   * A message: `buf[start, end)` is the whole frame (`*3 message ch payload`, `*4 pmessage pattern
   * ch payload`, `*3 smessage ch payload`) as clients receive it in RESP2; `key` is the channel, or
   * the pattern for pmessage.
   */
  onMessage(conn: SubscriberConn, kind: MessageKind, key: string, buf: Uint8Array, start: number, end: number): void;
  /** The node unsubscribed a shard channel by itself (its slot moved away). */
  onShardDropped(conn: SubscriberConn, channel: string): void;
  /** The connection is gone (refused, closed, lost): its subscriptions with it. */
  onClosed(conn: SubscriberConn, reason: string): void;
}

export const enum MessageKind { CHANNEL, PATTERN, SHARD }

const dec = new TextDecoder();
const MESSAGE = "message", PMESSAGE = "pmessage", SMESSAGE = "smessage", SUNSUBSCRIBE = "sunsubscribe", PONG = "pong";
const PING = encodeCommand(["PING"]);

/**
 * Subscriptions of all of predixy's clients go over such connections, each channel subscribed
 * once however many clients want it: the node sends a message once, and predixy hands the same
 * bytes to every subscriber. Confirmations are not needed (predixy answers its clients itself);
 * the node's own `sunsubscribe` says a shard channel's slot has moved.
 */
export class SubscriberConn {
  private socket: Socket<SubscriberConn> | null = null;
  private readonly out: Uint8Array[] = [];
  private readonly input = new InputBuffer(16 * 1024);
  private readonly scan = new ReplyScan();
  private closed = false;
  /** Credentials not accepted yet: the first reply is AUTH's. */
  private authPending: boolean;
  /** Called as the PINGs sent (see ping) come back, in order. */
  private readonly pings: (() => void)[] = [];

  constructor(
    readonly host: string,
    readonly port: number,
    auth: { username: string; password: string } | null,
    connectTimeoutMs: number,
    tls: BackendTls | null,
    private readonly events: SubscriberEvents,
  ) {
    this.authPending = auth !== null && auth.password !== "";
    if (this.authPending) this.out.push(encodeCommand(auth!.username ? ["AUTH", auth!.username, auth!.password] : ["AUTH", auth!.password]));
    const timer = setTimeout(() => { if (this.socket === null) this.close("connect timeout"); }, connectTimeoutMs);
    Bun.connect<SubscriberConn>({
      hostname: host, port, data: this, tls: tls?.options,
      socket: {
        // Over TLS nothing is written (AUTH included) until the node's certificate is accepted.
        open: (s) => { if (tls === null) { clearTimeout(timer); this.opened(s); } },
        handshake: (s, ok, err) => {
          clearTimeout(timer);
          const refusal = peerRefusal(tls!.verify, ok, err);
          if (refusal !== null) this.close(refusal);
          else this.opened(s);
        },
        data: (_s, chunk) => this.onData(chunk),
        drain: () => this.flush(),
        close: () => this.close("closed by peer"),
        end: () => this.close("closed by peer"),
        error: (_s, err) => this.close(`socket error: ${err.message}`),
        connectError: (_s, err) => { clearTimeout(timer); this.close(`connect failed: ${err.message}`); },
      },
    }).catch((err: Error) => { clearTimeout(timer); this.close(`connect failed: ${err.message}`); });
  }

  /** Sends `[command, …names]` (SUBSCRIBE ch …, PUNSUBSCRIBE p …): in order, once connected. */
  send(args: string[]): void {
    if (this.closed || args.length < 2) return;
    this.out.push(encodeCommand([args[0], ...args.slice(1).map(bytesOf)]));
    if (this.socket !== null) this.flush();
  }

  /** Calls `done` once the node has answered a PING sent now: every message it sent before is read by then (or at once if closed). */
  ping(done: () => void): void {
    if (this.closed) return done();
    this.pings.push(done);
    this.out.push(PING);
    if (this.socket !== null) this.flush();
  }

  /** PINGs sent and not answered yet. */
  get pingsPending(): number {
    return this.pings.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private opened(s: Socket<SubscriberConn>): void {
    if (this.closed) { s.terminate(); return; }
    this.socket = s;
    s.setNoDelay(true);
    this.flush();
  }

  private flush(): void {
    const s = this.socket;
    while (s !== null && this.out.length > 0) {
      const b = this.out[0];
      const n = s.write(b);
      if (n < b.length) { this.out[0] = b.subarray(Math.max(n, 0)); return; }
      this.out.shift();
    }
  }

  private onData(chunk: Uint8Array): void {
    if (this.closed) return;
    const buf = this.input.feed(chunk);
    let at = 0;
    while (at < buf.length) {
      const n = scanReply(buf, at, buf.length, this.scan);
      if (n === NEED_MORE) break;
      if (n < 0) return this.close("protocol error");
      this.frame(buf, at, at + n);
      if (this.closed) return;
      at += n;
    }
    this.input.keep(buf, at, this.scan.needBytes);
  }

  /** One frame: AUTH's reply, an error, a confirmation, or a message. */
  private frame(buf: Uint8Array, start: number, end: number): void {
    if (this.authPending) {
      this.authPending = false;
      if (buf[start] === 45) this.close(`refused AUTH: ${dec.decode(buf.subarray(start + 1, end - 2))}`);
      return;
    }
    if (buf[start] === 43) return this.pings.shift()?.(); // +PONG: subscribed to nothing just now
    if (buf[start] !== 42 && buf[start] !== 62) return; // an error reply to a (un)subscribe: nothing to undo
    // [kind, a, b (, c)]: bulk strings; the first says what the frame is.
    const parts = bulks(buf, start, end);
    if (parts.length === 0) return;
    const kind = dec.decode(buf.subarray(parts[0][0], parts[0][1]));
    if (kind === PONG) return this.pings.shift()?.();
    if (parts.length < 3) return;
    const key = nameOf(buf.subarray(parts[1][0], parts[1][1]));
    if (kind === MESSAGE) this.events.onMessage(this, MessageKind.CHANNEL, key, buf, start, end);
    else if (kind === PMESSAGE) this.events.onMessage(this, MessageKind.PATTERN, key, buf, start, end);
    else if (kind === SMESSAGE) this.events.onMessage(this, MessageKind.SHARD, key, buf, start, end);
    else if (kind === SUNSUBSCRIBE) this.events.onShardDropped(this, key);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.terminate();
    this.socket = null;
    this.out.length = 0;
    this.input.clear();
    for (const done of this.pings.splice(0)) done(); // nothing more will come
    this.events.onClosed(this, reason);
  }
}

/** Offsets of the bulk strings of the array frame at `start` (nulls and non-bulks end the list). */
function bulks(buf: Uint8Array, start: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  let p = buf.indexOf(10, start) + 1;
  while (p > 0 && p < end && buf[p] === 36) {
    const lf = buf.indexOf(10, p);
    const len = Number(dec.decode(buf.subarray(p + 1, lf - 1)));
    if (!(len >= 0)) break;
    out.push([lf + 1, lf + 1 + len]);
    p = lf + 1 + len + 2;
  }
  return out;
}
