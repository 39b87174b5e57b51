// One client command in flight: the unit that moves between client FIFO, backend FIFO and retries.

import type { BackendNode } from "../backend/backend-node.ts";
import type { CommandSpec } from "../commands/command-table.ts";
import type { Session } from "../session/session.ts";
import type { Upload } from "../stream/upload.ts";
import type { Gather } from "./gather.ts";

/** The owner of a request's reply: a client connection (see client/client-conn.ts). */
export interface ReplySink {
  readonly closed: boolean;
  /** The reply for `req` is ready (`req.reply` set): deliver in request order. */
  complete(req: Request): void;
  /** Writes the replies queued so far without waiting for the rest of their read (a retry began). */
  flushSoon(): void;
  /**
   * Bytes of the reply to `req`, the oldest request without a written reply, as they arrive
   * from its node (a large reply, streamed): queued at once. `complete(req)` follows the last.
   */
  streamReply(req: Request, buf: Uint8Array, start: number, end: number): void;
  /** The node connection went in the middle of a reply streamed to this client: it cannot be answered, close it. */
  replyCut(): void;
  /** The client's oldest request without a written reply (the head of its FIFO; `next` links on). */
  oldestPending(): Request | null;
  /** This client's requests being retried (from the first retry until their final reply). */
  retrying: number;
  /** This client's requests held back until no retry of its is pending. */
  held: number;
  /** While `retrying` > 0: how many of them wait per slot (see router/retry.ts); null otherwise. */
  retrySlots: Map<number, number> | null;
  /** The router keeps `bytes` (negative: releases them) for this client's waiting commands: count them in its memory. */
  holdBytes(bytes: number): void;
  /** A node connection has too much queued: stop reading this client until backendReady. */
  waitForBackend(): void;
  backendReady(): void;
}

/** Why a request is in a backend FIFO: a client's command, or a proxy-internal one. */
export const enum Kind {
  CLIENT,
  /** ASKING before a redirected command; its +OK is dropped. */
  ASKING,
  /** AUTH on a new backend connection; an error reply closes the connection. */
  AUTH,
  /** SCRIPT LOAD / FUNCTION LOAD sent ahead of a command that met NOSCRIPT; its reply is dropped. */
  PRELOAD,
  /** A health check; the reply itself says the node answers (see BackendConn.onData). */
  PING,
  /** READONLY or READWRITE when a node starts or stops serving reads as a replica; the reply is dropped. */
  READONLY,
  /** INFO replication for replica lag (cluster/replica-reads.ts). */
  INFO,
  /** A pub/sub message for a client: an entry in its reply order, no command behind it. */
  PUSH,
}

/**
 * A pending command. Pooled: fields are reset on release, never replaced by new objects.
 * Invariant: a request sits in at most one backend FIFO or retry timer at a time, and is
 * released exactly once — by the client after writing its reply, or by whoever holds it
 * when its client has gone.
 */
export class Request {
  kind: Kind = Kind.CLIENT;
  sink: ReplySink | null = null;
  spec: CommandSpec | null = null;
  /** The command exactly as it goes to the backend, `src[start, end)` (replayed on redirect). */
  src: Uint8Array = EMPTY;
  start = 0;
  end = 0;
  /** Hash slot, or -1 for a keyless command sent to any node. */
  slot = -1;
  /** The client's protocol: a RESP3 client's commands go on a node's RESP3 connections. */
  proto = 2;
  /** A node chosen by the command's meaning rather than its slot (a fan-out part); null: by slot. */
  target: BackendNode | null = null;
  /** For a client command answered from several node replies: how they merge (its parts hold it). */
  gather: Gather | null = null;
  /** For such a part: the client command it belongs to. Its final reply goes to the gather. */
  parent: Request | null = null;
  /** Sent by a client's session (src/session/) on a connection it holds: its reply goes there first. */
  session: Session | null = null;
  /**
   * Picks the connection among a node's pool: the client's id, so one client's commands to a
   * node share a connection and run in the order sent.
   */
  affinity = 0;
  /** Which backend credentials (and so which pool of node connections) it runs under; 0 = [cluster] username/password. */
  cred = 0;
  /** The reply, `reply[replyStart, replyEnd)`: offsets, so the hot path makes no views. */
  reply: Uint8Array = EMPTY;
  replyStart = 0;
  replyEnd = 0;
  done = false;
  /** Which read (data event) of its client brought the command: a read's replies go out together. */
  read = 0;
  /** Next request of the same client (the client's reply-order FIFO). */
  next: Request | null = null;
  redirects = 0;
  /** When retrying TRYAGAIN/CLUSTERDOWN/unreachable-node errors must stop (ms, 0 = not retrying). */
  retryUntil = 0;
  retries = 0;
  /** Counted in its sink's `retrying`: from its first retry until its final reply. */
  inRetry = false;
  /** Counted in its sink's `held`: waits for the client's pending retries before being sent. */
  held = false;
  /** NOSCRIPT was healed once already (the script was loaded on the node, then this resent). */
  preloaded = false;
  /** `src` is a copy of its own, made when it first had to wait (router/retry.ts). */
  detached = false;
  /** Bytes counted in its client's memory while it is parked or held (0 otherwise). */
  waitBytes = 0;
  /** When the command arrived: its client's read (performance.now() ms). */
  arrivedAt = 0;
  /** When its bytes were last written to a node (0: not yet); for per-node latency. */
  sentAt = 0;
  /** The metrics id of the node that last answered it (-1: none), for the slowlog. */
  nodeId = -1;
  /** An error the proxy knows the kind of (ErrorKind: a lost connection, a refusal); 0 = none. */
  errKind = 0;
  /** Its bytes were streamed to the node as they arrived (`src` has only their start): see stream/upload.ts. */
  upload: Upload | null = null;
  /** Its reply is being streamed to its client: what came so far is queued there already. */
  replyStreaming = false;
}

const EMPTY = new Uint8Array(0);
const pool: Request[] = [];

export function acquire(): Request {
  return pool.pop() ?? new Request();
}

export function release(r: Request): void {
  r.kind = Kind.CLIENT;
  r.sink = null;
  r.spec = null;
  r.src = EMPTY;
  r.reply = EMPTY;
  r.replyStart = r.replyEnd = 0;
  r.done = false;
  r.next = null;
  r.redirects = 0;
  r.retryUntil = 0;
  r.retries = 0;
  r.inRetry = false;
  r.held = false;
  r.preloaded = false;
  r.detached = false;
  r.waitBytes = 0;
  r.slot = -1;
  r.cred = 0;
  r.target = null;
  r.session = null;
  if (r.gather !== null) {
    r.gather.recycle();
    r.gather = null;
  }
  r.parent = null;
  r.sentAt = 0;
  r.nodeId = -1;
  r.errKind = 0;
  if (r.upload !== null) {
    r.upload.forget();
    r.upload = null;
  }
  r.replyStreaming = false;
  // Split commands put many parts in flight at once (10 per MGET of 10 keys): keep enough.
  if (pool.length < 32768) pool.push(r);
}

/** Sets the reply to `buf[start, end)`. */
export function setReply(r: Request, buf: Uint8Array, start: number, end: number): void {
  r.reply = buf;
  r.replyStart = start;
  r.replyEnd = end;
}

/** An internal command with fixed bytes. One instance can sit in many FIFOs: it has no per-use state. */
export function internalRequest(kind: Kind, bytes: Uint8Array): Request {
  return Object.assign(new Request(), { kind, src: bytes, start: 0, end: bytes.length });
}

const ASKING_BYTES = new TextEncoder().encode("*1\r\n$6\r\nASKING\r\n");
export const ASKING_REQUEST = internalRequest(Kind.ASKING, ASKING_BYTES);
