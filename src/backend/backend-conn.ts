// One multiplexed connection to a Redis node: pipelined writes out, FIFO-matched replies in.

import type { Socket, SocketHandler } from "bun";
import type { BackendNode } from "./backend-node.ts";
import { ErrorKind, metrics, replyErrorKind } from "../metrics/recorder.ts";
import { NEED_MORE, ReplyScan, scanReply } from "../resp/reply-reader.ts";
import { CONTINUES, StreamScan } from "../resp/stream-scan.ts";
import { Kind, type ReplySink, type Request } from "../router/request.ts";
import { peerRefusal, type BackendTls } from "../tls/backend-tls.ts";
import { ByteQueue } from "../util/byte-queue.ts";
import { markBackendDirty, type Flushable } from "../util/flush-scheduler.ts";
import { InputBuffer } from "../util/input-buffer.ts";
import { Ring } from "../util/ring.ts";

/** What the connection reports upward (implemented by the router). */
export interface BackendEvents {
  /** The reply to `req` is `buf[start, end)` (a view, valid as long as it is referenced). */
  onReply(req: Request, buf: Uint8Array, start: number, end: number, conn: BackendConn): void;
  /**
   * The connection is gone. `written` requests may have reached the node; `unwritten` ones
   * certainly did not and are safe to send elsewhere. `writeFollows`: a written read followed
   * by a written write of its client to its slot (see readsBeforeWrites).
   */
  onLost(req: Request, written: boolean, reason: string, writeFollows?: boolean): void;
  onConnectionState(conn: BackendConn, state: ConnEvent, reason: string): void;
  /** A node marked as not answering (`stalled`) sent a reply: it answers again. */
  onNodeAnswered(node: BackendNode): void;
}

export const enum ConnState { CONNECTING, OPEN, CLOSED }

/**
 * UP: connected. LOST: a working connection ended (the node may be fine: idle timeout,
 * CLIENT KILL). FAILED: the node could not be used at all (connect error, AUTH refused).
 * CLOSED: the proxy closed it on purpose (shut), which says nothing about the node.
 */
export const enum ConnEvent { UP, LOST, FAILED, CLOSED }

export interface BackendOptions {
  host: string;
  port: number;
  bufferSize: number;
  connectTimeoutMs: number;
  /** Sent first on every new connection when the cluster needs authentication. */
  authRequest: Request | null;
  /** The node's metrics id (Metrics.nodeId). */
  nodeId: number;
  /** Connect over TLS (the cluster's tls-port). */
  tls: BackendTls | null;
}

/**
 * Bytes owed on this connection past which clients sending here stop being read, and below
 * which they resume: the commands queued or on their way (no reply yet), plus their replies to
 * come, estimated from the replies seen so far. Unsent bytes alone would not do: a node reads
 * all it can into its query buffer, so a few clients pipelining faster than it runs commands
 * grew the requests waiting here (and the client buffers they point into) to 9 GB in a minute;
 * and 12,800 small GETs of a 1 MB value had the node buffer 12 GB of replies.
 */
const PENDING_HIGH_BYTES = 8 * 1024 * 1024;
const PUSH = 62; // '>'
const PENDING_LOW_BYTES = 4 * 1024 * 1024;
const MINUS = 45;
/**
 * An upload's bytes queued here past which its client stops being read, and below which it
 * resumes: about one buffer per large value in flight, not the value.
 */
const UPLOAD_HIGH_BYTES = 1024 * 1024;
const UPLOAD_LOW_BYTES = 256 * 1024;
/** A reply with at least this many bytes still to come is streamed to its client (see startReplyStream). */
const STREAM_REPLY_MIN_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);

export class BackendConn implements Flushable {
  state = ConnState.CONNECTING;
  flushQueued = false;
  /** Set while the socket refuses bytes; cleared on drain. */
  private blocked = false;
  private socket: Socket<BackendConn> | null = null;
  private readonly out: ByteQueue;
  private readonly input: InputBuffer;
  private readonly scan = new ReplyScan();
  /** Requests awaiting replies, in the order their bytes were queued. */
  private readonly awaitingReply = new Ring<Request>();
  /** How many of the newest awaitingReply entries have not been handed to the socket yet. */
  private unwritten = 0;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the node last made progress: a reply arrived, or the queue went from empty to busy. */
  progressAt = 0;
  /** Closed by shut(): reported as CLOSED, not as a failure. */
  private deliberate = false;
  /** Closed because the node stopped answering (checkStalled): its requests count as timeouts. */
  private timedOut = false;
  /** Bytes of the requests in awaitingReply. */
  private pendingBytes = 0;
  /** Running mean of reply sizes here (bytes), to estimate the replies still to come. */
  private replyMean = 0;
  /** Clients paused until owed() falls below PENDING_LOW_BYTES. */
  private readonly waiters = new Set<ReplySink>();
  /** Since when the node has answered only CLUSTERDOWN, LOADING or MASTERDOWN here (0: it has not). */
  clusterDownSince = 0;
  /** A blocking call waits here: its own timeout governs, not command_timeout_ms (nor the health check). */
  noDeadline = false;
  /** A client's command being streamed here (stream/upload.ts): nothing else may be written until its last byte. */
  private upload: Request | null = null;
  /** Requests that came while an upload was under way, to be queued after it (never written yet). */
  private readonly behind: Request[] = [];
  /** The uploading client, while it is not read because its bytes queued here past UPLOAD_HIGH_BYTES. */
  private uploadPaused: ReplySink | null = null;
  /** Clients whose own upload waits for this one to end (they are not read meanwhile). */
  private readonly uploadWaiters = new Set<ReplySink>();
  /** An upload its client abandoned: the connection closes once the replies before it are in. */
  private abandoned: Request | null = null;
  /** A reply being streamed to its client as it arrives, and where it ends. */
  private replyStream: Request | null = null;
  private readonly replyScan = new StreamScan(false);
  private replyBytes = 0;

  constructor(readonly opts: BackendOptions, private readonly events: BackendEvents, readonly node: BackendNode) {
    this.out = new ByteQueue(opts.bufferSize);
    this.input = new InputBuffer(opts.bufferSize);
    if (opts.authRequest) this.enqueue(opts.authRequest);
    this.connectTimer = setTimeout(onConnectTimeout, opts.connectTimeoutMs, this);
    Bun.connect<BackendConn>({ hostname: opts.host, port: opts.port, data: this, socket: opts.tls ? TLS_HANDLERS : HANDLERS, tls: opts.tls?.options })
      .catch((err: unknown) => this.lose(`connect failed: ${(err as Error).message ?? err}`));
  }

  get inFlight(): number {
    return this.awaitingReply.size;
  }

  /**
   * Closes an open connection when requests have waited `timeoutMs` with no reply at all (one
   * still connecting is bounded by connect_timeout_ms instead).
   */
  checkStalled(now: number, timeoutMs: number): void {
    if (this.waitedLongerThan(now, timeoutMs)) {
      this.timedOut = true;
      this.close(`no reply for ${timeoutMs} ms`);
    }
  }

  /** Whether requests (or a PING) have waited on this open connection `ms` with no reply at all (a blocking call aside). */
  waitedLongerThan(now: number, ms: number): boolean {
    // (During an upload the node cannot answer before the client has sent it all.)
    return this.state === ConnState.OPEN && !this.noDeadline && this.upload === null && this.awaitingReply.size > 0 && now - this.progressAt > ms;
  }

  /** Whether the connection is open with nothing in flight since `ms` ago (the health check PINGs it). */
  idleLongerThan(now: number, ms: number): boolean {
    return this.state === ConnState.OPEN && this.awaitingReply.size === 0 && now - this.progressAt > ms;
  }

  /**
   * While still connecting (nothing written yet), removes the client requests `stays` rejects
   * and appends them to `out`, in their order; the rest, AUTH included, stay queued.
   */
  takeUnsent(stays: (req: Request) => boolean, out: Request[]): void {
    if (this.state !== ConnState.CONNECTING) return;
    const n = this.awaitingReply.size;
    const before = out.length;
    const kept: Request[] = [];
    for (let i = 0; i < n; i++) {
      const req = this.awaitingReply.shift()!;
      if (req.kind === Kind.CLIENT && !stays(req)) out.push(req);
      else kept.push(req);
    }
    for (const req of kept) this.awaitingReply.push(req);
    if (out.length === before) return;
    this.out.clear();
    this.pendingBytes = 0;
    for (const req of kept) {
      this.out.appendRange(req.src, req.start, req.end);
      this.pendingBytes += req.end - req.start;
    }
    this.unwritten = kept.length;
    if (this.owed() < PENDING_LOW_BYTES) this.releaseWaiters();
  }

  /** Bytes of pending commands plus the estimated bytes of their replies. */
  private owed(): number {
    return this.pendingBytes + this.awaitingReply.size * this.replyMean;
  }

  /** Visits the requests sent on an open connection and not answered yet, oldest first. */
  forEachInFlight(fn: (req: Request) => void): void {
    if (this.state === ConnState.OPEN) this.awaitingReply.forEach(fn);
  }

  /** Queues `req`'s bytes for the node and `req` for its reply; written at the end of this tick. */
  enqueue(req: Request): void {
    if (this.upload !== null || this.abandoned !== null) {
      this.behind.push(req);
      return;
    }
    if (this.awaitingReply.size === 0) this.progressAt = performance.now();
    this.awaitingReply.push(req);
    this.unwritten++;
    this.out.appendRange(req.src, req.start, req.end);
    this.pendingBytes += req.end - req.start;
    if (this.state === ConnState.OPEN) markBackendDirty(this);
    const sink = req.sink;
    if (sink !== null && this.owed() > PENDING_HIGH_BYTES && !this.waiters.has(sink)) {
      this.waiters.add(sink);
      sink.waitForBackend();
    }
  }

  /**
   * Whether `sink` may start an upload here now. If not, and it is worth waiting (another
   * upload is under way, or the node owes more than PENDING_HIGH_BYTES), `sink` is not read
   * until then (its bytes would wait behind on the wire anyway; they wait in its socket instead
   * of being assembled here). Once an upload starts it is never paused for the node's replies
   * (only for its own bytes not leaving): the connection is the upload's until its last byte.
   */
  mayUpload(sink: ReplySink): boolean {
    if (this.state !== ConnState.OPEN || this.abandoned !== null) return false;
    if (this.upload !== null) {
      if (!this.uploadWaiters.has(sink)) {
        this.uploadWaiters.add(sink);
        sink.waitForBackend();
      }
      return false;
    }
    if (this.owed() > PENDING_HIGH_BYTES) {
      if (!this.waiters.has(sink)) {
        this.waiters.add(sink);
        sink.waitForBackend();
      }
      return false;
    }
    return true;
  }

  private resumeUploader(): void {
    const sink = this.uploadPaused;
    this.uploadPaused = null;
    sink?.backendReady();
  }

  private releaseUploadWaiters(): void {
    if (this.uploadWaiters.size === 0) return;
    const all = [...this.uploadWaiters];
    this.uploadWaiters.clear();
    for (const w of all) w.backendReady();
  }

  /** `req`'s bytes come next, through uploadMore, until endUpload. */
  beginUpload(req: Request): void {
    if (this.awaitingReply.size === 0) this.progressAt = performance.now();
    this.awaitingReply.push(req);
    this.unwritten++;
    this.upload = req;
  }

  /** More of the upload's bytes; past UPLOAD_HIGH_BYTES queued, its client waits for the node to take them. */
  uploadMore(buf: Uint8Array, start: number, end: number, sink: ReplySink | null): void {
    this.pendingBytes += end - start;
    // The connection is the upload's alone, so there is nothing to batch: the bytes go to the
    // socket at once, after what is queued before them, and are copied only if it refuses them
    // (copying each large value whole cost more CPU than the writes did).
    if (this.out.size > 0) this.flush();
    if (this.out.size === 0 && this.state === ConnState.OPEN && !this.blocked && this.socket !== null) {
      const n = end - start;
      const w = Math.max(this.socket.write(buf, start, n), 0);
      if (w > 0) {
        metrics.nodeBytesOut[this.opts.nodeId] += w;
        if (metrics.enabled) this.stampWritten();
        this.unwritten = 0;
      }
      if (w === n) return;
      this.blocked = true;
      start += w;
    }
    this.out.appendRange(buf, start, end);
    markBackendDirty(this);
    if (sink !== null && this.out.size > UPLOAD_HIGH_BYTES && this.uploadPaused === null) {
      this.uploadPaused = sink;
      sink.waitForBackend();
    }
  }

  /** The upload's last byte is queued: what waited behind it goes out now, in order. */
  endUpload(req: Request): void {
    if (this.upload !== req) return;
    this.upload = null;
    this.progressAt = performance.now();
    this.requeueBehind();
    this.releaseUploadWaiters();
  }

  /**
   * The upload stops short of its command's end: the node holds part of a command, so nothing
   * else can follow it here. The connection closes once the replies to what was sent before it
   * are in; what waited behind it goes to a new connection.
   */
  abandonUpload(req: Request): void {
    if (this.upload !== req) return;
    this.upload = null;
    this.abandoned = req;
    this.closeIfAbandonedFirst();
    this.releaseUploadWaiters();
  }

  /** Closes the connection if the abandoned upload is next to be answered (nothing owed before it); true if so. */
  private closeIfAbandonedFirst(): boolean {
    if (this.abandoned === null || this.awaitingReply.size === 0 || this.awaitingReply.at(0) !== this.abandoned) return false;
    this.shut("a client left in the middle of a streamed command");
    return true;
  }

  private requeueBehind(): void {
    const waiting = this.behind.splice(0);
    for (const r of waiting) this.enqueue(r);
  }

  private releaseWaiters(): void {
    if (this.waiters.size === 0) return;
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w.backendReady();
  }

  flush(): void {
    if (this.state !== ConnState.OPEN || this.blocked || this.socket === null) return;
    const before = this.out.size;
    if (before === 0) return;
    const all = this.out.writeTo(this.socket);
    const written = before - this.out.size;
    metrics.nodeBytesOut[this.opts.nodeId] += written;
    // Partly written: any request may have reached the node, so none may be replayed.
    if (written > 0) {
      if (metrics.enabled) this.stampWritten();
      this.unwritten = 0;
    }
    if (!all) this.blocked = true;
    if (this.uploadPaused !== null && this.out.size < UPLOAD_LOW_BYTES) this.resumeUploader();
  }

  /** The requests just handed to the socket start their per-node latency now (one clock read per write). */
  private stampWritten(): void {
    const now = performance.now();
    const q = this.awaitingReply;
    for (let i = q.size - this.unwritten; i < q.size; i++) q.at(i).sentAt = now;
  }

  onOpen(socket: Socket<BackendConn>): void {
    if (this.state === ConnState.CLOSED) { socket.terminate(); return; }
    this.clearConnectTimer();
    this.socket = socket;
    this.state = ConnState.OPEN;
    socket.setNoDelay(true);
    this.events.onConnectionState(this, ConnEvent.UP, "connected");
    this.flush();
  }

  /** TLS: nothing is written before the node's certificate is accepted (AUTH would give the password away). */
  onHandshake(socket: Socket<BackendConn>, ok: boolean, err: Error | null): void {
    if (this.state === ConnState.CLOSED) { socket.terminate(); return; }
    const refusal = peerRefusal(this.opts.tls!.verify, ok, err);
    if (refusal === null) return this.onOpen(socket);
    this.lose(refusal, true);
    socket.terminate();
  }

  onDrain(): void {
    this.blocked = false;
    this.flush();
  }

  onData(chunk: Uint8Array): void {
    this.progressAt = metrics.now = performance.now();
    if (this.node.stalled) this.events.onNodeAnswered(this.node);
    const nodeId = this.opts.nodeId;
    metrics.nodeBytesIn[nodeId] += chunk.length;
    if (this.replyStream !== null) {
      const r = this.streamReply(chunk, 0, chunk.length);
      if (r === CONTINUES || this.state === ConnState.CLOSED) return;
      chunk = chunk.subarray(r);
    }
    const buf = this.input.feed(chunk);
    const end = buf.length;
    let at = 0;
    while (at < end) {
      const n = scanReply(buf, at, end, this.scan);
      if (n === NEED_MORE) {
        // A large reply goes to its client as it arrives, when nothing of the client's comes before it.
        if (this.scan.needBytes - (end - at) >= STREAM_REPLY_MIN_BYTES && this.startReplyStream(buf, at)) {
          const r = this.streamReply(buf, at, end);
          if (r === CONTINUES || this.state === ConnState.CLOSED) {
            this.input.keep(buf, end, 0);
            return;
          }
          at = r;
          continue;
        }
        break;
      }
      // A RESP3 push answers no request: a shared connection never subscribes, so drop it.
      if (buf[at] === PUSH && n > 0) {
        at += n;
        continue;
      }
      const req = n > 0 ? this.awaitingReply.shift() : undefined;
      if (req === undefined) {
        this.close(n > 0 ? "reply without a request" : "protocol error in reply");
        return;
      }
      if (this.awaitingReply.size < this.unwritten) this.unwritten = this.awaitingReply.size;
      this.pendingBytes -= sentBytes(req);
      this.replyMean = this.replyMean === 0 ? n : this.replyMean + (n - this.replyMean) / 16;
      req.nodeId = nodeId;
      // Clients' commands only: AUTH, HELLO and ASKING are the proxy's own overhead.
      if (req.kind === Kind.CLIENT) metrics.nodeReply(nodeId, req.sentAt, buf[at] === MINUS ? replyErrorKind(buf, at, at + n) : ErrorKind.NONE);
      this.events.onReply(req, buf, at, at + n, this);
      at += n;
      if (this.state === ConnState.CLOSED) return;
      if (this.abandoned !== null && this.closeIfAbandonedFirst()) return;
    }
    this.input.keep(buf, at, this.scan.needBytes);
    if (this.owed() < PENDING_LOW_BYTES) this.releaseWaiters();
  }

  /**
   * Whether the reply starting at `buf[at]` (incomplete) is streamed: its request is a client's
   * plain command (no session, no split), the oldest its client waits for, and the reply is not
   * an error (errors may be redirected or retried).
   */
  private startReplyStream(buf: Uint8Array, at: number): boolean {
    if (this.awaitingReply.size === 0 || buf[at] === MINUS || buf[at] === 33 || buf[at] === PUSH) return false;
    const req = this.awaitingReply.at(0);
    const sink = req.sink;
    if (req.kind !== Kind.CLIENT || req.session !== null || req.parent !== null || sink === null || sink.closed ||
        sink.oldestPending() !== req) return false;
    this.awaitingReply.shift();
    if (this.awaitingReply.size < this.unwritten) this.unwritten = this.awaitingReply.size;
    this.pendingBytes -= sentBytes(req);
    this.scan.reset();
    this.replyScan.reset();
    this.replyStream = req;
    this.replyBytes = 0;
    req.replyStreaming = true;
    return true;
  }

  /** Passes `buf[start, end)` of the streamed reply on; its end offset, or CONTINUES. */
  private streamReply(buf: Uint8Array, start: number, end: number): number {
    const req = this.replyStream!;
    const r = this.replyScan.feed(buf, start, end);
    if (r < 0 && r !== CONTINUES) {
      this.close("protocol error in a streamed reply");
      return CONTINUES;
    }
    const stop = r === CONTINUES ? end : r;
    this.replyBytes += stop - start;
    req.sink!.streamReply(req, buf, start, stop);
    if (r === CONTINUES) return CONTINUES;
    this.replyStream = null;
    const n = this.replyBytes;
    this.replyMean = this.replyMean === 0 ? n : this.replyMean + (n - this.replyMean) / 16;
    req.nodeId = this.opts.nodeId;
    metrics.nodeReply(this.opts.nodeId, req.sentAt, ErrorKind.NONE);
    this.events.onReply(req, EMPTY, 0, 0, this);
    if (this.abandoned !== null) this.closeIfAbandonedFirst();
    return r;
  }

  /**
   * Closes the connection; every request still waiting is reported lost. `unusable`: the
   * node ran none of them (e.g. it refused AUTH), so all may be retried, and it counts as
   * a failed connect.
   */
  close(reason: string, unusable = false): void {
    const sock = this.socket;
    this.lose(reason, unusable);
    sock?.terminate();
  }

  /** Closes the connection on purpose (the node left the table, shutdown): not a failure. */
  shut(reason: string): void {
    this.deliberate = true;
    this.close(reason);
  }

  /** Idempotent: the first call reports the requests and the state change. */
  lose(reason: string, unusable = false): void {
    if (this.state === ConnState.CLOSED) return;
    const wasOpen = this.state === ConnState.OPEN;
    this.state = ConnState.CLOSED;
    metrics.tick();
    this.clearConnectTimer();
    this.socket = null;
    this.out.clear();
    this.input.clear();
    this.scan.reset();
    const writtenCount = unusable ? 0 : this.awaitingReply.size - this.unwritten;
    this.unwritten = 0;
    let i = 0;
    this.pendingBytes = 0;
    const event = this.deliberate ? ConnEvent.CLOSED : wasOpen && !unusable ? ConnEvent.LOST : ConnEvent.FAILED;
    const kind = this.timedOut ? ErrorKind.TIMEOUT : event === ConnEvent.FAILED ? ErrorKind.CONNECT_FAILED : ErrorKind.CONN_LOST;
    if (event !== ConnEvent.CLOSED) metrics.nodeEvent(this.opts.nodeId, kind);
    this.upload = this.abandoned = null;
    const cut = this.replyStream;
    this.replyStream = null;
    if (cut !== null) {
      // Part of its reply is with the client already: nothing can follow it there.
      cut.sink?.replyCut();
      cut.errKind = kind;
      this.events.onLost(cut, true, reason);
    }
    const beforeWrites = writtenCount > 1 ? readsBeforeWrites(this.awaitingReply, writtenCount) : null;
    for (let req = this.awaitingReply.shift(); req !== undefined; req = this.awaitingReply.shift()) {
      req.errKind = kind;
      this.events.onLost(req, i++ < writtenCount, reason, beforeWrites?.has(req) ?? false);
    }
    // Queued behind an upload, never written: safe to send elsewhere.
    for (const req of this.behind.splice(0)) this.events.onLost(req, false, reason);
    this.releaseUploadWaiters();
    this.resumeUploader();
    this.releaseWaiters();
    this.events.onConnectionState(this, event, reason);
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }
}

/** The bytes `req` was sent as: its source, or what an upload of it streamed so far. */
function sentBytes(req: Request): number {
  return req.upload !== null ? req.upload.size : req.end - req.start;
}

function onConnectTimeout(conn: BackendConn): void {
  if (conn.state === ConnState.CONNECTING) conn.lose("connect timeout");
}

function guard(conn: BackendConn, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    conn.close(`internal error: ${(err as Error)?.stack ?? err}`);
  }
}

const HANDLERS: SocketHandler<BackendConn> = {
  open(sock) { guard(sock.data, () => sock.data.onOpen(sock)); },
  data(sock, chunk) {
    try { sock.data.onData(chunk); }
    catch (err) { sock.data.close(`internal error: ${(err as Error)?.stack ?? err}`); }
  },
  drain(sock) { guard(sock.data, () => sock.data.onDrain()); },
  close(sock, err) { sock.data.lose(err ? `closed: ${err.message}` : "closed by peer"); },
  end(sock) { sock.data.close("closed by peer"); },
  error(sock, err) { sock.data.close(`socket error: ${err.message}`); },
  connectError(sock, err) { sock.data.lose(`connect failed: ${err.message}`); },
};

/** Over TLS the connection is usable once the handshake is judged, not when TCP connects. */
const TLS_HANDLERS: SocketHandler<BackendConn> = {
  ...HANDLERS,
  open() {},
  handshake(sock, ok, err) { guard(sock.data, () => sock.data.onHandshake(sock, ok, err)); },
};

/**
 * The client reads among the first `written` requests of `q` (all may have run) that a write of
 * the same client to the same slot follows there (any slot when either is keyless). The node
 * may have run both before the connection was lost; repeated elsewhere, such a read would show
 * the write's effect to the command sent before it. Null when there is none.
 */
function readsBeforeWrites(q: Ring<Request>, written: number): Set<Request> | null {
  let writes: Map<ReplySink, Set<number>> | null = null;
  let out: Set<Request> | null = null;
  for (let i = written - 1; i >= 0; i--) {
    const req = q.at(i);
    const sink = req.sink;
    if (req.kind !== Kind.CLIENT || sink === null) continue;
    if (req.spec?.readonly !== true) {
      writes ??= new Map();
      let slots = writes.get(sink);
      if (slots === undefined) writes.set(sink, slots = new Set());
      slots.add(req.slot < 0 ? -1 : req.slot);
      continue;
    }
    const slots = writes?.get(sink);
    if (slots !== undefined && (slots.has(req.slot) || slots.has(-1) || req.slot < 0)) (out ??= new Set()).add(req);
  }
  return out;
}

