// A blocking call (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK …) on a pinned connection, for as long as it blocks.

import type { BackendConn } from "../backend/backend-conn.ts";
import type { BackendNode } from "../backend/backend-node.ts";
import type { CommandSpec } from "../commands/command-table.ts";
import { Frame, readCommand } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeCommand } from "../resp/reply-value.ts";
import { ASKING_REQUEST, type Request } from "../router/request.ts";
import { parseRedirect, type ClientSession } from "../router/router.ts";
import type { Session, SessionHost } from "./session.ts";

const MAX_REDIRECTS = 5;
const scratch = new Frame();

/**
 * The call's own timeout governs (0 = forever: no deadline of the proxy's applies to it). The
 * client's later commands wait for its reply, as on Redis. A client that disconnects has the
 * connection closed at once, so the node never pops an element for a client that is gone. A
 * slot migrated while the call blocks gets MOVED from Redis: the call is sent again to the new
 * owner with what is left of its timeout; TRYAGAIN and CLUSTERDOWN are retried likewise.
 */
export class BlockingCall implements Session {
  readonly blocked = true;
  private node: BackendNode | null = null;
  private conn: BackendConn | null = null;
  private req: Request | null = null;
  private readonly since = performance.now();
  private retryUntil = 0;
  private retries = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** The backend credential the connection was opened with (the client's when the call began). */
  private cred = 0;
  /** The session the call runs within (a transaction between WATCH and MULTI): the client's again after it. */
  private outer: Session | null = null;

  constructor(private readonly c: ClientSession, private readonly host: SessionHost) {}

  start(f: Frame, spec: CommandSpec): void {
    const slot = this.host.slotOf(f, spec);
    const req = this.host.track(this.c, f, spec, slot);
    req.session = this;
    this.req = req;
    this.outer = this.c.session;
    this.c.session = this;
    this.sendTo(slot >= 0 ? this.host.topology.table.nodeFor(slot) : this.host.anyMaster(), false);
  }

  private sendTo(node: BackendNode | null, asking: boolean): void {
    const req = this.req!;
    if (node === null) {
      this.host.topology.requestRefresh();
      return this.retry(R.ERR_NO_NODE);
    }
    this.cred = this.c.cred;
    const conn = node.pinned.acquire(this.c.proto, this.cred);
    if (conn === null) return this.fail(R.errorReply(`ERR too many pinned connections to ${node.addr} (pool.max_pinned)`));
    this.node = node;
    this.conn = conn;
    conn.noDeadline = true;
    if (asking) conn.enqueue(ASKING_REQUEST);
    conn.enqueue(req);
  }

  dispatch(): void {
    this.c.deferUntilIdle();
  }

  onReply(req: Request, buf: Uint8Array, start: number, end: number): void {
    if (buf[start] === 45) {
      const head = new TextDecoder().decode(buf.subarray(start, Math.min(end, start + 16)));
      const ask = head.startsWith("-ASK ");
      if ((ask || head.startsWith("-MOVED ")) && ++req.redirects <= MAX_REDIRECTS) {
        const target = parseRedirect(buf, start + (ask ? 5 : 7), end - 2, this.node!.host);
        if (target !== null) {
          this.giveBack(true);
          if (!ask) this.host.topology.requestRefresh();
          this.rewriteTimeout();
          return this.sendTo(this.host.topology.node(target.host, target.port), ask);
        }
      }
      if (/^-(TRYAGAIN|CLUSTERDOWN|LOADING|MASTERDOWN) /.test(head)) {
        this.giveBack(true);
        return this.retry(buf.slice(start, end));
      }
    }
    this.end(true);
    this.host.finish(req, buf, start, end);
  }

  /** Sends the call again after a backoff, to the slot's owner then, within retry_timeout_ms. */
  private retry(lastError: Uint8Array): void {
    const now = performance.now();
    if (this.retryUntil === 0) this.retryUntil = now + this.host.retryTimeoutMs;
    if (now >= this.retryUntil) return this.fail(lastError);
    this.host.topology.requestRefresh();
    const delay = Math.min(200, 10 * 2 ** this.retries++, this.retryUntil - now);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.rewriteTimeout();
      const slot = this.req!.slot;
      this.sendTo(slot >= 0 ? this.host.topology.table.nodeFor(slot) : this.host.anyMaster(), false);
    }, delay);
  }

  onLost(req: Request, written: boolean, reason: string): void {
    this.end(false);
    // A pop may have happened on the node and its reply been lost with the connection.
    this.host.finish(req, R.errorReply(written
      ? `ERR connection to the cluster node was lost (${reason}); the command may or may not have run`
      : `CLUSTERDOWN ${reason}`));
  }

  refused(): boolean {
    return false;
  }

  clientGone(): void {
    this.outer?.clientGone();
    if (this.timer !== null) {
      // Between two tries: nothing is on a node, so nobody else will let go of the request.
      clearTimeout(this.timer);
      this.timer = null;
      this.host.finish(this.req!, R.OK);
      return;
    }
    // Closing the connection unblocks the call on the node; its loss comes back through onLost.
    this.giveBack(false);
  }

  private fail(reply: Uint8Array): void {
    this.end(true);
    this.host.finish(this.req!, reply);
  }

  /** Ends the session: later commands go on; the connection goes back clean, or is closed. */
  private end(clean: boolean): void {
    if (this.c.session === this) this.c.session = this.outer;
    this.giveBack(clean);
  }

  private giveBack(clean: boolean): void {
    const conn = this.conn, node = this.node;
    if (conn === null) return;
    // Cleared first: closing the connection reports its request lost, which comes back here.
    this.conn = null;
    this.node = null;
    conn.noDeadline = false;
    node!.pinned.release(conn, clean, this.c.proto, this.cred);
  }

  /** Before sending the call again: its timeout argument becomes what is left of it. */
  private rewriteTimeout(): void {
    const req = this.req!;
    if (readCommand(req.src, req.start, req.end, scratch) !== req.end - req.start) return;
    const args = Array.from({ length: scratch.argc }, (_, i) => scratch.arg(i).slice());
    const name = new TextDecoder().decode(args[0]).toLowerCase();
    let at = args.length - 1, millis = false;
    if (name === "blmpop" || name === "bzmpop") at = 1;
    else if (name === "xread" || name === "xreadgroup") {
      at = args.findIndex((a) => new TextDecoder().decode(a).toLowerCase() === "block") + 1;
      millis = true;
      if (at <= 0) return;
    }
    const original = Number(new TextDecoder().decode(args[at]));
    if (!(original > 0)) return; // 0: forever, still
    const elapsedMs = performance.now() - this.since;
    const left = millis ? Math.max(1, Math.ceil(original - elapsedMs)) : Math.max(0.001, original - elapsedMs / 1000);
    args[at] = new TextEncoder().encode(millis ? String(left) : left.toFixed(3));
    const bytes = encodeCommand(args);
    req.src = bytes;
    req.start = 0;
    req.end = bytes.length;
  }
}
