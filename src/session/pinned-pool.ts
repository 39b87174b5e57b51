// Private backend connections lent to one client at a time: transactions, blocking calls.

import type { BackendEvents } from "../backend/backend-conn.ts";
import type { BackendTls } from "../tls/backend-tls.ts";
import { BackendConn, ConnState } from "../backend/backend-conn.ts";
import type { BackendNode } from "../backend/backend-node.ts";
import type { Proto } from "../resp/reply-writer.ts";
import { metrics } from "../metrics/recorder.ts";
import type { Request } from "../router/request.ts";

export interface PinnedOptions {
  /** Idle connections kept per node and protocol (`pool.max_idle`). */
  maxIdle: number;
  /** Connections a node may have lent out and idle at once (`pool.max_pinned`). */
  maxPinned: number;
  bufferSize: number;
  connectTimeoutMs: number;
  /** Per backend credential: the first request on a RESP2 connection (AUTH, if needed) and on a RESP3 one (HELLO 3 [AUTH …]). */
  authRequests: (Request | null)[];
  helloRequests: Request[];
  tls: BackendTls | null;
}

/**
 * One node's private connections. A connection is lent to one client for a session and given
 * back clean (no MULTI, WATCH or blocked call left on it) to be kept idle, or closed when it may
 * hold state. Shared connections never carry session state: these do, one client at a time.
 */
export class PinnedPool {
  /** Idle connections by 2 × credential + (RESP3 ? 1 : 0): a connection serves one user and protocol. */
  private readonly idle: BackendConn[][] = [];
  private idleCount = 0;
  private readonly lent = new Set<BackendConn>();

  constructor(
    private readonly node: BackendNode,
    private readonly opts: PinnedOptions,
    private readonly events: BackendEvents,
  ) {}

  /** An idle connection of the client's protocol and credential, or a new one; null when the node is at `max_pinned`. */
  acquire(proto: Proto, cred: number): BackendConn | null {
    const idle = this.idleOf(proto, cred);
    for (let c = idle.pop(); c !== undefined; c = idle.pop()) {
      this.idleCount--;
      if (c.state !== ConnState.CLOSED) {
        this.lent.add(c);
        return c;
      }
      metrics.pinnedClosed(this.node.id); // closed by the node while idle
    }
    if (this.size >= this.opts.maxPinned) return null;
    const authRequest = proto === 3 ? this.opts.helloRequests[cred] : this.opts.authRequests[cred];
    const conn = new BackendConn({
      host: this.node.host, port: this.node.port, bufferSize: this.opts.bufferSize,
      connectTimeoutMs: this.opts.connectTimeoutMs, authRequest, nodeId: this.node.id, tls: this.opts.tls,
    }, this.events, this.node);
    this.lent.add(conn);
    metrics.pinnedOpened(this.node.id);
    return conn;
  }

  /** Takes `conn` back: kept if it holds no state and nothing waits on it, else closed. */
  release(conn: BackendConn, clean: boolean, proto: Proto, cred: number): void {
    this.lent.delete(conn);
    const idle = this.idleOf(proto, cred);
    if (clean && conn.state !== ConnState.CLOSED && conn.inFlight === 0 && idle.length < this.opts.maxIdle) {
      idle.push(conn);
      this.idleCount++;
      return;
    }
    metrics.pinnedClosed(this.node.id);
    conn.shut(clean ? "pinned connection not needed" : "pinned connection may hold session state");
  }

  /** Lent and idle connections (INFO, limits). */
  get size(): number {
    return this.lent.size + this.idleCount;
  }

  private idleOf(proto: Proto, cred: number): BackendConn[] {
    const i = 2 * cred + (proto === 3 ? 1 : 0);
    return (this.idle[i] ??= []);
  }

  /** Visits the connections lent out (deadline sweeps). */
  forEachLent(fn: (c: BackendConn) => void): void {
    for (const c of this.lent) fn(c);
  }

  closeIdle(reason: string): void {
    this.idleCount = 0;
    for (const list of this.idle) {
      for (const c of list?.splice(0) ?? []) {
        metrics.pinnedClosed(this.node.id);
        c.shut(reason);
      }
    }
  }
}
