// WAIT numreplicas timeout: the client's writes, on every master, acknowledged by that many replicas.

import type { BackendConn } from "../backend/backend-conn.ts";
import type { BackendNode } from "../backend/backend-node.ts";
import type { CommandSpec } from "../commands/command-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeCommand } from "../resp/reply-value.ts";
import type { Proto } from "../resp/reply-writer.ts";
import { acquire, Kind, release, type Request } from "../router/request.ts";
import type { ClientSession } from "../router/router.ts";
import type { Session, SessionHost } from "./session.ts";

const WAIT_NOW = new TextEncoder().encode("*3\r\n$4\r\nWAIT\r\n$1\r\n0\r\n$1\r\n0\r\n");
const ERR_NOT_INTEGER = R.errorReply("ERR value is not an integer or out of range");
const ERR_TIMEOUT = R.errorReply("ERR timeout is not an integer or out of range");
const ERR_NEGATIVE = R.errorReply("ERR timeout is negative");

/**
 * A client's writes went over shared connections, whose replication offset (what WAIT waits
 * for on a node) covers them, and other clients' writes after them. So, once every earlier
 * command of the client is answered, WAIT asks each master `WAIT 0 0` on the client's own
 * shared connection: it never blocks, and counts the replicas that acknowledged that
 * connection's last write. Until every master has `numreplicas`, a `WAIT` that blocks for 1 ms
 * on a connection of its own makes the master ask its replicas for acknowledgements, and the
 * count is asked again (that WAIT goes on a pinned connection, kept in the pool for the next
 * one: a shared one would hold everyone's commands, a new one per round piles up closed
 * sockets). The answer is the smallest count over the masters: it can be higher
 * than Redis' (the offsets include later writes of other clients, so it waits as long or longer),
 * never lower than what the client's own writes have.
 */
export class WaitCall implements Session {
  readonly blocked = true;
  private parent: Request | null = null;
  private want = 0;
  private deadline = 0;
  private pending = 0;
  private least = Infinity;
  private delay = 2;
  private gone = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** WAITs that make masters ask their replicas now, each on a pinned connection of its node. */
  private readonly nudges = new Map<Request, BackendConn>();
  private proto: Proto = 2;
  private cred = 0;
  /** The session WAIT runs within (a transaction between WATCH and MULTI): the client's again after it. */
  private outer: Session | null = null;

  constructor(private readonly c: ClientSession, private readonly host: SessionHost) {}

  start(f: Frame, spec: CommandSpec): void {
    const n = integer(f.arg(1)), t = integer(f.arg(2));
    if (n === null) return this.host.answer(this.c, ERR_NOT_INTEGER);
    if (t === null) return this.host.answer(this.c, ERR_TIMEOUT);
    if (t < 0) return this.host.answer(this.c, ERR_NEGATIVE);
    this.want = n;
    this.deadline = t > 0 ? performance.now() + t : 0;
    this.parent = this.host.track(this.c, f, spec, -1);
    this.proto = this.c.proto;
    this.cred = this.c.cred;
    this.outer = this.c.session;
    this.c.session = this;
    this.round();
  }

  /** Asks every master how many replicas acknowledged the client's connection to it. */
  private round(): void {
    this.timer = null;
    const masters = this.host.topology.table.masters;
    if (masters.length === 0) return this.done(0);
    this.least = Infinity;
    this.pending = masters.length;
    for (const m of masters) {
      const p = acquire();
      p.sink = this.c;
      p.session = this;
      p.src = WAIT_NOW;
      p.start = 0;
      p.end = WAIT_NOW.length;
      p.affinity = this.c.id;
      p.proto = this.c.proto;
      p.cred = this.c.cred;
      p.target = m;
      m.send(p);
    }
  }

  dispatch(): void {
    this.c.deferUntilIdle();
  }

  onReply(req: Request, buf: Uint8Array, start: number): void {
    if (req.kind !== Kind.CLIENT) return this.nudged(req, true);
    this.count(req, buf[start] === 58 ? Number(new TextDecoder().decode(buf.subarray(start + 1, buf.indexOf(13, start)))) : 0);
  }

  onLost(req: Request): void {
    if (req.kind !== Kind.CLIENT) return this.nudged(req, false);
    this.count(req, 0);
  }

  /** Replicas acknowledge once a second on their own; a WAIT that blocks 1 ms has the master ask them now. */
  private nudge(node: BackendNode): void {
    const conn = node.pinned.acquire(this.proto, this.cred);
    if (conn === null) return; // at max_pinned: the replicas' own acknowledgement will do
    const r = acquire();
    r.kind = Kind.PRELOAD;
    r.session = this;
    r.target = node;
    r.src = encodeCommand(["WAIT", String(this.want + 1000), "1"]);
    r.end = r.src.length;
    this.nudges.set(r, conn);
    conn.enqueue(r);
  }

  private nudged(req: Request, clean: boolean): void {
    const conn = this.nudges.get(req);
    this.nudges.delete(req);
    if (conn !== undefined) req.target!.pinned.release(conn, clean, this.proto, this.cred);
    release(req);
  }

  private count(req: Request, replicas: number): void {
    const node = req.target!;
    release(req);
    this.least = Math.min(this.least, replicas);
    if (replicas < this.want && !this.gone) this.nudge(node);
    if (--this.pending > 0) return;
    if (this.gone) return this.host.finish(this.parent!, R.OK); // released: the client is closed
    const now = performance.now();
    if (this.least >= this.want || (this.deadline > 0 && now >= this.deadline)) return this.done(this.least);
    this.delay = Math.min(this.delay * 2, 100);
    this.timer = setTimeout(() => this.round(), this.deadline > 0 ? Math.min(this.delay, this.deadline - now) : this.delay);
  }

  private done(n: number): void {
    if (this.c.session === this) this.c.session = this.outer;
    this.host.finish(this.parent!, R.intReply(n));
  }

  refused(): boolean {
    return false;
  }

  clientGone(): void {
    this.outer?.clientGone();
    this.gone = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.host.finish(this.parent!, R.OK); // released: the client is closed
    }
  }
}

/** A decimal integer argument, as Redis' getLongLongFromObject reads it; null if not one. */
function integer(b: Uint8Array): number | null {
  const s = new TextDecoder().decode(b);
  return /^-?\d{1,18}$/.test(s) ? Number(s) : null;
}
