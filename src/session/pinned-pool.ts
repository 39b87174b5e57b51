// Private backend connections lent to one client at a time: transactions, blocking calls.

import type { BackendEvents } from "../backend/backend-conn.ts";
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
  /** First request on a RESP2 connection (AUTH), if the cluster needs one. */
  authRequest: Request | null;
  /** First request on a RESP3 connection (HELLO 3 [AUTH …]). */
  helloRequest: Request;
}

/**
 * One node's private connections. A connection is lent to one client for a session and given
 * back clean (no MULTI, WATCH or blocked call left on it) to be kept idle, or closed when it may
 * hold state. Shared connections never carry session state: these do, one client at a time.
 */
export class PinnedPool {
  private readonly idle: [BackendConn[], BackendConn[]] = [[], []];
  private readonly lent = new Set<BackendConn>();

  constructor(
    private readonly node: BackendNode,
    private readonly opts: PinnedOptions,
    private readonly events: BackendEvents,
  ) {}

  /** An idle connection or a new one; null when the node is at `max_pinned`. */
  acquire(proto: Proto): BackendConn | null {
    const idle = this.idle[proto === 3 ? 1 : 0];
    for (let c = idle.pop(); c !== undefined; c = idle.pop()) {
      if (c.state !== ConnState.CLOSED) {
        this.lent.add(c);
        return c;
      }
      metrics.pinnedClosed(this.node.id); // closed by the node while idle
    }
    if (this.size >= this.opts.maxPinned) return null;
    const authRequest = proto === 3 ? this.opts.helloRequest : this.opts.authRequest;
    const conn = new BackendConn({
      host: this.node.host, port: this.node.port, bufferSize: this.opts.bufferSize,
      connectTimeoutMs: this.opts.connectTimeoutMs, authRequest, nodeId: this.node.id,
    }, this.events);
    this.lent.add(conn);
    metrics.pinnedOpened(this.node.id);
    return conn;
  }

  /** Takes `conn` back: kept if it holds no state and nothing waits on it, else closed. */
  release(conn: BackendConn, clean: boolean, proto: Proto): void {
    this.lent.delete(conn);
    const idle = this.idle[proto === 3 ? 1 : 0];
    if (clean && conn.state !== ConnState.CLOSED && conn.inFlight === 0 && idle.length < this.opts.maxIdle) return void idle.push(conn);
    metrics.pinnedClosed(this.node.id);
    conn.shut(clean ? "pinned connection not needed" : "pinned connection may hold session state");
  }

  /** Lent and idle connections (INFO, limits). */
  get size(): number {
    return this.lent.size + this.idle[0].length + this.idle[1].length;
  }

  /** Visits the connections lent out (deadline sweeps). */
  forEachLent(fn: (c: BackendConn) => void): void {
    for (const c of this.lent) fn(c);
  }

  closeIdle(reason: string): void {
    for (const list of this.idle) {
      for (const c of list.splice(0)) {
        metrics.pinnedClosed(this.node.id);
        c.shut(reason);
      }
    }
  }
}
