// One client connection: frames its commands, keeps replies in request order, flushes once per tick.

import type { Socket } from "bun";
import { getLogger } from "@logtape/logtape";
import { hotKeys } from "../metrics/hot-keys.ts";
import { ErrorKind, metrics } from "../metrics/recorder.ts";
import { slowlog, slowlogArgs } from "../metrics/slowlog.ts";
import type { Acl } from "../acl/acl.ts";
import type { AclUser } from "../acl/user.ts";
import type { Stats } from "../metrics/stats.ts";
import { Frame, NEED_MORE, readCommand } from "../resp/request-reader.ts";
import { CONTINUES, MALFORMED } from "../resp/stream-scan.ts";
import * as R from "../resp/replies.ts";
import type { Proto } from "../resp/reply-writer.ts";
import { abandonHeld } from "../router/gather.ts";
import { Route } from "../commands/command-table.ts";
import { acquire, Kind, release, setReply, type Request } from "../router/request.ts";
import type { ClientSubs } from "../session/pubsub.ts";
import type { ClientSession, Router } from "../router/router.ts";
import type { Session } from "../session/session.ts";
import { STREAM_MIN_BYTES, type Upload } from "../stream/upload.ts";
import { ByteQueue } from "../util/byte-queue.ts";
import { markClientDirty, type Flushable } from "../util/flush-scheduler.ts";
import { InputBuffer } from "../util/input-buffer.ts";
import type { BudgetedClient, MemoryBudget } from "./memory-budget.ts";

export interface ClientLimits {
  /** In-flight commands past which reading pauses (`performance.batch_size`). */
  batchSize: number;
  /** Bytes of one unfinished request past which the client is disconnected (Redis' client-query-buffer-limit). */
  maxInputBytes: number;
  /** Queued reply bytes past which the client is disconnected; 0 = no limit. */
  maxOutputBytes: number;
  bufferSize: number;
  /** Users: a new client is the default user, authenticated if that needs no password. */
  acl: Acl;
  /** 0: clients are never closed for idleness, so their activity need not be timed. */
  idleTimeoutMs: number;
  /** A client whose socket has taken no reply bytes for this long is closed; 0 = never. */
  writeTimeoutMs: number;
  /** Pub/sub messages queued for a client past which it is closed (Redis' pubsub output limit); 0 = none. */
  maxPubsubBytes: number;
  /** A client that sends nothing for this long in the middle of a streamed command is closed (`command_timeout_ms`). */
  uploadStallMs: number;
}

const log = getLogger(["predixy", "client"]);
const EMPTY = new Uint8Array(0);
const MINUS = 45;

let nextId = 1;

/**
 * The most reply bytes one client may have queued when max_client_output_bytes is 0: the queue
 * doubles as it grows, and Bun cannot allocate a buffer past 4 GiB (the attempt throws).
 */
const OUTPUT_CEILING = 2 ** 31;

/** Replies of one read are held back for their siblings only up to this many bytes. */
const HOLD_MAX_BYTES = 64 * 1024;

export class ClientConn implements Flushable, ClientSession, BudgetedClient {
  readonly id = nextId++;
  closed = false;
  flushQueued = false;
  name = "";
  proto: Proto = 2;
  session: Session | null = null;
  subs: ClientSubs | null = null;
  /** Bytes of pub/sub messages in the reply order, not yet queued in `out`. */
  private pushBytes = 0;
  retrying = 0;
  held = 0;
  retrySlots: Map<number, number> | null = null;
  user!: AclUser;
  acl: AclUser | null = null;
  cred = 0;
  /** "address:port" of the client, once asked for (the slowlog). */
  private peerAddr: string | null = null;
  /** A command with a large argument being streamed to its node as it arrives (stream/upload.ts). */
  private upload: Upload | null = null;
  /** What this client makes the proxy hold (see MemoryBudget): replies not written, unparsed input, waiting commands' copies. */
  private replyBytes = 0;
  private countedInput = 0;
  private waitingBytes = 0;
  /** Not read because clients hold too much memory (MemoryBudget). */
  private memoryPaused = false;
  /** Bytes read from the socket so far: the stream offset of what arrives next. */
  private bytesRead = 0;
  /** Draining (shutdown): commands starting at or past this stream offset are not run; -1 = not draining. */
  private drainAt = -1;
  /** Node connections whose queue is too full for this client to be read (see waitForBackend). */
  private backendWaits = 0;
  /** Reading is paused: batch_size in flight, or a node behind. */
  private paused = false;
  /** The command at the front of the input waits until nothing is in flight (see deferUntilIdle). */
  private deferred = false;
  /** The socket refused bytes; wait for drain. */
  private blocked = false;
  /** While blocked: when the socket last took reply bytes (performance.now()). */
  private blockedSince = 0;
  /** After QUIT, a protocol error or at shutdown: no more commands; close once replies are written. */
  private closing = false;
  /** The client sent FIN: run what it sent, close once replies are written. */
  private ending = false;
  private head: Request | null = null;
  private tail: Request | null = null;
  private inFlight = 0;
  /** Numbers this client's reads (data events); each request carries the number of its read. */
  private reads = 0;
  /** The read whose reply was the last one queued in `out`. */
  private lastQueuedRead = 0;
  private readonly out: ByteQueue;
  private readonly input: InputBuffer;
  private readonly frame = new Frame();
  private lastActive = performance.now();
  /** When the latest read arrived: the arrival time of the commands it carried. */
  private readAt = performance.now();
  private readonly connectedAt = performance.now();
  /** max_client_output_bytes, with 0 meaning the ceiling. */
  private maxOutputBytes: number;

  constructor(
    private readonly socket: Socket<ClientConn>,
    private readonly router: Router,
    private readonly limits: ClientLimits,
    private readonly stats: Stats,
    private readonly budget: MemoryBudget,
  ) {
    limits.acl.attachDefault(this);
    this.maxOutputBytes = limits.maxOutputBytes || OUTPUT_CEILING;
    this.out = new ByteQueue(limits.bufferSize);
    this.input = new InputBuffer(limits.bufferSize);
  }

  get authed(): boolean {
    return !this.frame.unauthenticated;
  }

  /** Until then the parser holds the client to Redis' small pre-AUTH limits. */
  set authed(v: boolean) {
    this.frame.unauthenticated = !v;
  }

  onData(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.closing && this.upload === null) return;
    this.lastActive = this.readAt = metrics.now = performance.now();
    this.stats.bytesIn += chunk.length;
    this.bytesRead += chunk.length;
    if (this.upload !== null) {
      // The streamed command's bytes go on to its node, whatever else holds the client.
      const r = this.upload.feed(chunk, 0, chunk.length);
      if (r === CONTINUES) return;
      this.upload = null;
      if (r === MALFORMED) return this.protocolError("Protocol error: malformed streamed command");
      if (this.closing) return;
      if (r === chunk.length) {
        // Draining, and the upload was the last command before the cut-off.
        if (this.drainAt >= 0 && this.bytesRead >= this.drainAt) this.drained();
        return;
      }
      chunk = chunk.subarray(r);
    }
    const buf = this.input.feed(chunk);
    if (this.paused || this.deferred) {
      // Data that was on its way when reading paused, or behind a command waiting for the
      // client to be idle: keep it for later (a blocked client's input waits, as on Redis).
      if (this.paused) this.socket.pause();
      this.input.keep(buf, 0, 0);
      this.countInput();
      this.checkInputLimit();
      return;
    }
    this.parse(buf);
  }

  /** Dispatches the commands in `buf` until batch_size are in flight; keeps the rest for later. */
  private parse(buf: Uint8Array): void {
    if (this.closing || this.closed) return;
    this.deferred = false;
    this.reads++;
    const f = this.frame;
    const end = buf.length;
    const max = this.limits.batchSize;
    // Draining: commands that start before the cut-off run, the rest were sent after the signal.
    const stop = this.drainAt < 0 ? end : Math.min(end, this.drainAt - (this.bytesRead - end));
    let at = 0;
    while (at < stop && this.inFlight < max && this.backendWaits === 0) {
      const n = readCommand(buf, at, end, f);
      if (n === NEED_MORE) {
        if (f.partialBulk >= STREAM_MIN_BYTES && this.startUpload(buf, at, end)) {
          this.input.clear();
          this.countInput();
          return;
        }
        break; // (also when waiting to upload: backendWaits says so, and the command stays buffered)
      }
      if (n < 0) {
        this.protocolError(f.error);
        return;
      }
      if (f.argc > 0) this.router.dispatch(this, f);
      if (this.closing || this.closed) return;
      if (this.deferred) break; // not taken: read again from here once idle
      at += n;
    }
    if (this.drainAt >= 0 && at >= stop && at < end) return this.drained();
    this.input.keep(buf, at, f.needBytes);
    this.countInput();
    if (this.checkInputLimit()) return;
    if (this.inFlight >= max) this.pause();
    // Draining, and all that came before the cut-off is dispatched.
    if (this.drainAt >= 0 && this.bytesRead >= this.drainAt && this.input.pending === 0) this.drained();
  }

  /** Keeps the memory budget's count of this client's unparsed input current. */
  private countInput(): void {
    const d = this.input.pending - this.countedInput;
    if (d !== 0) {
      this.countedInput += d;
      this.stats.clientMemory += d;
    }
  }

  /**
   * A command whose large argument is still arriving: streamed to its node from here on when
   * the router can route it already (else it is assembled, as any other).
   */
  private startUpload(buf: Uint8Array, at: number, end: number): boolean {
    const f = this.frame;
    f.src = buf;
    f.base = at;
    const upload = this.router.startUpload(this, f);
    if (upload === null) return false;
    f.restart();
    this.upload = upload;
    const r = upload.feed(buf, at, end);
    if (r === MALFORMED) {
      this.upload = null;
      this.protocolError("Protocol error: malformed streamed command");
    }
    return true;
  }

  /** Closes the client when its unparsed input is over max_client_input_bytes; true if so. */
  private checkInputLimit(): boolean {
    // The unparsed bytes, and an unfinished command's argument offsets (8 bytes each).
    const f = this.frame;
    if (this.input.pending + (f.expected >= 0 ? f.argc * 8 : 0) <= this.limits.maxInputBytes) return false;
    this.stats.inputLimitDisconnections++;
    log.warn("client {client}: request larger than max_client_input_bytes ({limit}), closing", { client: this.label(), limit: this.limits.maxInputBytes });
    this.protocolError("Protocol error: request exceeds max_client_input_bytes");
    return true;
  }

  /**
   * Once a second (listener): closes an idle client past client_idle_timeout_ms, and one whose
   * replies cannot be written that has taken none for client_write_timeout_ms: one that stopped
   * reading, or a peer that vanished without a FIN or RST. (Sending does not count: a client
   * that trickles bytes while never reading would otherwise hold its backlog for good.)
   */
  sweep(now: number): void {
    if (this.closed) return;
    if (this.upload !== null && now - this.lastActive > this.limits.uploadStallMs) {
      // The node connection the upload holds waits for the rest, and so does all queued behind it.
      log.warn("client {id}: sent nothing for {ms} ms in the middle of a streamed command, closing", { id: this.id, ms: Math.round(now - this.lastActive) });
      return this.close();
    }
    const idleMs = this.limits.idleTimeoutMs;
    if (idleMs > 0 && now - this.lastActive > idleMs && this.idle) return this.finish();
    if (!this.blocked) return;
    // A slow reader frees send-buffer space too slowly for Bun's drain, which waits for a good
    // part of the buffer: offer the bytes now, and count any taken as the client reading.
    const before = this.out.size;
    if (this.writeOut()) {
      this.onDrain();
      return;
    }
    if (this.out.size < before) this.blockedSince = now;
    if (this.limits.writeTimeoutMs > 0 && now - this.blockedSince > this.limits.writeTimeoutMs) {
      log.info("client {client}: took none of its replies for {ms} ms, closing", { client: this.label(), ms: Math.round(now - this.blockedSince) });
      this.close();
    }
  }

  /** Commands read and not answered yet; reply and request bytes held (for metrics). */
  get pendingCommands(): number {
    return this.inFlight;
  }

  get outputBytes(): number {
    return this.out.size;
  }

  get inputBytes(): number {
    return this.input.pending;
  }

  oldestPending(): Request | null {
    return this.head;
  }

  track(req: Request): void {
    req.read = this.reads;
    req.arrivedAt = this.readAt;
    if (this.tail === null) this.head = req;
    else this.tail.next = req;
    this.tail = req;
    this.inFlight++;
  }

  /** `req`'s reply is set. Writes out every reply now complete at the head of the FIFO. */
  complete(req: Request): void {
    req.done = true;
    // Held from now until written, in the FIFO or in `out`.
    const n = req.replyEnd - req.replyStart;
    this.replyBytes += n;
    if ((this.stats.clientMemory += n) > this.budget.mark) this.budget.press();
    if (req !== this.head) return;
    let r: Request | null = req;
    while (r !== null && r.done) {
      // Checked before the copy, so the buffer never grows past what the limit allows.
      const size = this.out.size + r.replyEnd - r.replyStart;
      // (A streamed reply's bytes are queued already, see streamReply.)
      if (size > this.maxOutputBytes) return this.outputOverLimit(size);
      this.lastQueuedRead = r.read;
      if (r.kind === Kind.PUSH) this.pushBytes -= r.replyEnd - r.replyStart;
      else this.record(r);
      if (r.replyStreaming) this.stats.streamedReplies++;
      this.out.appendRange(r.reply, r.replyStart, r.replyEnd);
      const next: Request | null = r.next;
      release(r);
      // Kept current at each step: a close from here on must not see released requests.
      this.head = r = next;
      this.inFlight--;
    }
    if (r === null) {
      this.tail = null;
      // Idle: the deferred command may go now (from flush, not from inside a reply's handling).
      if (this.deferred) markClientDirty(this);
    }
    markClientDirty(this);
  }

  streamReply(req: Request, buf: Uint8Array, start: number, end: number): void {
    if (this.closed || req !== this.head) return;
    this.stats.bytesOut += end - start;
    // Everything before this reply is in `out` (it is the head): that goes first, then these
    // bytes straight to the socket, copied only if it refuses them. (Queuing a large value whole
    // to write it at the tick's end cost more CPU in copies and buffer growth than the writes.)
    if (!this.blocked) {
      if (this.out.size === 0 || this.writeOut()) {
        const w = Math.max(this.socket.write(buf, start, end - start), 0);
        if (w === end - start) return;
        start += w;
      }
      this.blocked = true;
      this.blockedSince = performance.now();
    }
    const size = this.out.size + end - start;
    if (size > this.maxOutputBytes) return this.outputOverLimit(size);
    const n = end - start;
    this.replyBytes += n;
    if ((this.stats.clientMemory += n) > this.budget.mark) this.budget.press();
    this.out.appendRange(buf, start, end);
    markClientDirty(this);
  }

  replyCut(): void {
    log.info("client {id}: the node connection closed in the middle of a reply streamed to it, closing", { id: this.id });
    this.close();
  }

  deferUntilIdle(): void {
    this.deferred = true;
  }

  deliver(resp2: Uint8Array, start: number, end: number, resp3: Uint8Array | null): void {
    if (this.closed || this.closing) return;
    // A subscriber that does not read its messages is closed past the limit, as Redis does.
    const limit = this.limits.maxPubsubBytes;
    if (limit > 0 && this.out.size + this.pushBytes > limit) {
      this.stats.outputLimitDisconnections++;
      log.warn("client {id}: over {limit} bytes of pub/sub messages queued (max_pubsub_output_bytes), closing", { id: this.id, limit });
      return this.close();
    }
    const req = acquire();
    req.kind = Kind.PUSH;
    req.sink = this;
    this.track(req);
    if (this.proto === 3 && resp3 !== null) setReply(req, resp3, 0, resp3.length);
    else setReply(req, resp2, start, end);
    this.pushBytes += req.replyEnd - req.replyStart;
    this.complete(req);
  }

  /** Counts `r`'s reply in the metrics (its reply is being queued now): see metrics/recorder.ts. */
  private record(r: Request): void {
    const bytes = r.replyEnd - r.replyStart;
    this.stats.bytesOut += bytes;
    const kind = r.reply[r.replyStart] === MINUS ? metrics.errorReply(r.reply, r.replyStart, r.replyEnd, r.errKind) : ErrorKind.NONE;
    if (metrics.commandDone(r.spec === null ? 0 : r.spec.id, r.arrivedAt, kind) && slowlog.admits(metrics.now)) this.logSlow(r);
    if (hotKeys.k > 0 && --hotKeys.countdown <= 0) this.sampleKey(r, bytes + r.end - r.start);
  }

  /** Rare: a command slower than the slowlog threshold. */
  private logSlow(r: Request): void {
    let args: string[] = r.spec === null ? [] : [r.spec.name.replace("|", " ")];
    const f = new Frame();
    if (r.end > r.start && readCommand(r.src, r.start, r.end, f) > 0) args = slowlogArgs(f.argc, (i) => f.arg(i));
    // As Redis does, credentials never reach the log.
    if (r.spec !== null && (r.spec.name === "auth" || r.spec.name === "hello")) args = [r.spec.name, "(redacted)"];
    this.peerAddr ??= `${this.socket.remoteAddress}:${this.socket.remotePort}`;
    slowlog.add(Math.floor(Date.now() / 1000), Math.floor((metrics.now - r.arrivedAt) * 1000), args, this.peerAddr, this.name,
      r.nodeId >= 0 ? metrics.nodeAddrs[r.nodeId] : "");
  }

  /** One command in hotKeys.sampleEvery: its (first) key, from the bytes it was sent as. */
  private sampleKey(r: Request, bytes: number): void {
    const spec = r.spec;
    let key = "";
    const f = new Frame();
    if (spec !== null && spec.keyAt > 0 && r.slot >= 0 && readCommand(r.src, r.start, r.end, f) > 0) {
      // NUMKEYS commands name the count at keyAt, the first key after it.
      const i = spec.route === Route.NUMKEYS ? spec.keyAt + 1 : spec.keyAt;
      if (i < f.argc) key = new TextDecoder().decode(f.arg(i));
    }
    if (key === "") hotKeys.countdown = 1; // keyless: the next command is sampled instead
    else hotKeys.sample(key, bytes);
  }

  private outputOverLimit(bytes: number): void {
    this.stats.outputLimitDisconnections++;
    log.warn("client {client}: {bytes} reply bytes would be queued, over max_client_output_bytes, closing", { client: this.label(), bytes });
    this.close();
  }

  flushSoon(): void {
    markClientDirty(this);
  }

  flush(): void {
    if (this.closed) return;
    // Reading goes on while the replies back up, as Redis does: a client may write a whole
    // pipeline before it reads (redis-py, Jedis), and would wait forever for its own write if
    // the proxy stopped reading it. What piles up is bounded by max_client_output_bytes.
    if (this.paused && !this.closing && this.inFlight < this.limits.batchSize && this.backendWaits === 0 && !this.memoryPaused) this.resume();
    else if (this.deferred && this.head === null && !this.paused) {
      this.deferred = false;
      this.parse(this.input.feed(EMPTY));
    }
    if (this.closed || this.blocked || this.waitsForSiblings()) return;
    if (!this.writeOut()) {
      this.blocked = true;
      this.blockedSince = performance.now();
      return;
    }
    if (this.limits.idleTimeoutMs > 0) this.lastActive = performance.now();
    // Once ending, all that was read has been parsed when reading is not paused; a partial
    // command left over can never complete. (Replies the resume just completed go out first:
    // they marked this client for another flush.)
    if ((this.closing || (this.ending && !this.paused)) && this.head === null && this.out.size === 0) this.socket.end();
  }

  /** Writes what the socket takes of `out`; true if all of it. */
  private writeOut(): boolean {
    const before = this.out.size;
    const all = this.out.writeTo(this.socket);
    const written = before - this.out.size;
    this.replyBytes -= written;
    this.stats.clientMemory -= written;
    return all;
  }

  holdBytes(bytes: number): void {
    if (this.closed) return;
    this.waitingBytes += bytes;
    if ((this.stats.clientMemory += bytes) > this.budget.mark) this.budget.press();
  }

  memory(): { replies: number; input: number; waiting: number } {
    return { replies: this.replyBytes, input: this.countedInput, waiting: this.waitingBytes };
  }

  pauseForMemory(on: boolean): void {
    if (this.closed || on === this.memoryPaused) return;
    this.memoryPaused = on;
    if (on) this.pause();
    else this.flush();
  }

  evict(why: string): void {
    log.debug("client {id}: closed ({why})", { id: this.id, why });
    this.close();
  }

  label(): string {
    const s = this.socket;
    return `id=${this.id} addr=${s.remoteAddress}:${s.remotePort}${this.name ? ` name=${this.name}` : ""}`;
  }

  /** The peer's address as /proc/net/tcp shows it, for finding what waits in its socket at shutdown. */
  get peer(): { address: string; port: number } {
    return { address: this.socket.remoteAddress, port: this.socket.remotePort };
  }

  /** Applies reloaded limits (the shared `limits` object is already updated). */
  limitsChanged(): void {
    this.maxOutputBytes = this.limits.maxOutputBytes || OUTPUT_CEILING;
    if (!this.closed) this.flush();
  }

  /**
   * Shutdown: run every command the client sent before the signal — what was read, and the
   * `queued` bytes still in the socket's receive buffer (-1: unknown, taken as none) — answer
   * them all, then close. Commands sent after the cut-off are not run.
   */
  drain(queued: number): void {
    if (this.closed || this.closing) return;
    this.drainAt = this.bytesRead + Math.max(0, queued);
    // (An upload under way finishes first: its command started before the cut-off.)
    if (queued <= 0 && this.input.pending === 0 && this.upload === null) this.drained();
    else this.flush();
  }

  /** Everything up to the drain cut-off is dispatched: no more reading; close once answered. */
  private drained(): void {
    this.closing = true;
    this.socket.pause();
    this.input.clear();
    this.countInput();
    this.flush();
  }

  waitForBackend(): void {
    this.backendWaits++;
    this.pause();
  }

  backendReady(): void {
    if (--this.backendWaits === 0) this.flush();
  }

  /**
   * True while the replies queued so far are part of a read whose next reply is still pending.
   * A client that pipelined the read's commands usually waits for all their replies before it
   * sends more, so one send instead of one per answering node halves the sends here and the
   * client's wake-ups (pipeline 16: +13% throughput, -17% CPU per request; bench/RESULTS.md).
   * The wait ends when the read's last reply arrives, a retry starts (which can take up to
   * retry_timeout_ms), or the queued bytes reach HOLD_MAX_BYTES.
   */
  private waitsForSiblings(): boolean {
    const h = this.head;
    // (The head is never held: a held command always has an older one in retry ahead of it.)
    return h !== null && h.read === this.lastQueuedRead && !h.inRetry && !h.replyStreaming && this.out.size < HOLD_MAX_BYTES;
  }

  onDrain(): void {
    this.blocked = false;
    this.flush();
  }

  /**
   * Every field of Redis 7's CLIENT INFO, as client libraries parse them all (redis-py's
   * client_info() fails on a missing one). It describes the client asking, which is never idle;
   * fields about state the proxy does not have (file descriptor, MULTI, subscriptions) read as
   * Redis reads them for a client without it.
   */
  describe(cmd = "client|info"): string {
    const s = this.socket;
    const now = performance.now();
    const age = Math.floor((now - this.connectedAt) / 1000);
    const idle = this.limits.idleTimeoutMs > 0 ? Math.floor((now - this.lastActive) / 1000) : 0;
    const qbuf = this.input.pending, omem = this.out.size;
    const subs = this.subs;
    const flags = (subs !== null ? "P" : "") + (this.session?.blocked ? "b" : "") || "N";
    return `id=${this.id} addr=${s.remoteAddress}:${s.remotePort} laddr=${s.localAddress}:${s.localPort} fd=-1 ` +
      `name=${this.name} age=${age} idle=${idle} flags=${flags} db=0 sub=${subs?.channels.size ?? 0} ` +
      `psub=${subs?.patterns.size ?? 0} ssub=${subs?.shard.size ?? 0} multi=-1 qbuf=${qbuf} qbuf-free=0 ` +
      `argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=${omem} tot-mem=${qbuf + omem} events=r cmd=${cmd} ` +
      `user=${this.user.name} redir=-1 resp=${this.proto}`;
  }

  get localAddress(): string {
    return this.socket.localAddress;
  }

  get localPort(): number {
    return this.socket.localPort;
  }

  closeAfterReplies(): void {
    this.closing = true;
  }

  /** The client sent FIN (it may still read, as `printf … | nc` does): answer all it sent, then close. */
  peerEnded(): void {
    if (this.closed) return;
    // A blocked call would never end for it: Redis frees a client at end of input, and so the
    // node gets no chance to pop an element for a client that is gone.
    if (this.session?.blocked) return this.close();
    // A command cut short can never be finished: the node must not wait for the rest.
    if (this.upload !== null) {
      this.upload.abandon();
      this.upload = null;
    }
    this.ending = true;
    this.flush();
  }

  /** Shutdown or idle timeout: no more commands; close once what was dispatched is answered. */
  finish(): void {
    if (this.closed) return;
    this.closing = true;
    this.flush();
  }

  /** Nothing in flight and nothing left to write (what an idle timeout may close). */
  private get idle(): boolean {
    return this.head === null && this.out.size === 0;
  }

  /** Redis closes a client after a protocol error, once the error reply is written. */
  private protocolError(message: string): void {
    this.stats.protocolErrors++;
    const req = acquire();
    req.sink = this;
    this.track(req);
    this.closing = true;
    const reply = R.errorReply(`ERR ${message}`);
    setReply(req, reply, 0, reply.length);
    this.input.clear();
    this.complete(req);
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private resume(): void {
    this.paused = false;
    this.socket.resume();
    // Commands read but not dispatched yet: the batch limit stopped parsing them, or they
    // arrived while reading was paused.
    if (this.input.pending > 0) this.parse(this.input.feed(EMPTY));
  }

  close(): void {
    if (this.closed) return;
    this.onClosed();
    this.socket.terminate();
  }

  /**
   * CLIENT KILL: closed now, replies not written yet dropped, as Redis frees a killed client; but
   * with a FIN, as Redis closes it: a reset would reach the client as an error (ECONNRESET).
   */
  kill(): void {
    if (this.closed) return;
    this.onClosed();
    this.socket.end();
  }

  /** The socket is gone. Finished replies are dropped; in-flight requests are released by their holders. */
  onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.clientMemory -= this.replyBytes + this.countedInput + this.waitingBytes;
    this.replyBytes = this.countedInput = this.waitingBytes = 0;
    let r = this.head;
    while (r !== null) {
      const next: Request | null = r.next;
      r.next = null;
      // Held requests were never sent, so nobody else will release them.
      if (r.done) release(r);
      else if (r.held) abandonHeld(r);
      r = next;
    }
    this.head = this.tail = null;
    this.out.clear();
    this.input.clear();
    this.upload?.abandon();
    this.upload = null;
    this.session?.clientGone();
    this.session = null;
    this.router.clientClosed(this);
  }
}
