// One client command in flight: the unit that moves between client FIFO, backend FIFO and retries.

import type { CommandSpec } from "../commands/command-table.ts";

/** The owner of a request's reply: a client connection (see client/client-conn.ts). */
export interface ReplySink {
  readonly closed: boolean;
  /** The reply for `req` is ready (`req.reply` set): deliver in request order. */
  complete(req: Request): void;
}

/** Why a request is in a backend FIFO: a client's command, or a proxy-internal one. */
export const enum Kind {
  CLIENT,
  /** ASKING before a redirected command; its +OK is dropped. */
  ASKING,
  /** AUTH on a new backend connection; an error reply closes the connection. */
  AUTH,
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
  /** The command exactly as it goes to the backend (a view; replayed on redirect). */
  bytes: Uint8Array = EMPTY;
  /** Hash slot, or -1 for a keyless command sent to any node. */
  slot = -1;
  reply: Uint8Array = EMPTY;
  done = false;
  /** Next request of the same client (the client's reply-order FIFO). */
  next: Request | null = null;
  redirects = 0;
  /** When retrying TRYAGAIN/CLUSTERDOWN/unreachable-node errors must stop (ms, 0 = not retrying). */
  retryUntil = 0;
  retries = 0;
  /** performance.now() when handed to a backend connection. */
  sentAt = 0;
}

const EMPTY = new Uint8Array(0);
const pool: Request[] = [];

export function acquire(): Request {
  return pool.pop() ?? new Request();
}

export function release(r: Request): void {
  r.sink = null;
  r.spec = null;
  r.bytes = EMPTY;
  r.reply = EMPTY;
  r.done = false;
  r.next = null;
  r.redirects = 0;
  r.retryUntil = 0;
  r.retries = 0;
  r.slot = -1;
  if (pool.length < 4096) pool.push(r);
}

/** Shared markers for internal commands: they carry no per-use state. */
export const ASKING_REQUEST = Object.assign(new Request(), { kind: Kind.ASKING });
export const AUTH_REQUEST = Object.assign(new Request(), { kind: Kind.AUTH });
