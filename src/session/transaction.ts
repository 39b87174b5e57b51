// MULTI … EXEC / DISCARD and WATCH on a pinned connection to the node of the transaction's first key.

import { ConnState, type BackendConn } from "../backend/backend-conn.ts";
import type { BackendNode } from "../backend/backend-node.ts";
import { Route, type CommandSpec } from "../commands/command-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import type { Proto } from "../resp/reply-writer.ts";
import * as R from "../resp/replies.ts";
import { RESET } from "../router/local-commands.ts";
import { internalRequest, Kind, type Request } from "../router/request.ts";
import type { ClientSession } from "../router/router.ts";
import { keysSlot, MIXED } from "../router/multi-key.ts";
import type { Session, SessionHost } from "./session.ts";

const enc = new TextEncoder();
const MULTI = internalRequest(Kind.PRELOAD, enc.encode("*1\r\n$5\r\nMULTI\r\n"));
/** The pinned connection follows a client that switches protocol between WATCH and MULTI. */
const HELLO_2 = internalRequest(Kind.PRELOAD, enc.encode("*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n"));
const HELLO_3 = internalRequest(Kind.PRELOAD, enc.encode("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"));
const DISCARD = enc.encode("*1\r\n$7\r\nDISCARD\r\n");
const UNWATCH = enc.encode("*1\r\n$7\r\nUNWATCH\r\n");
const QUEUED = enc.encode("+QUEUED\r\n");
const ERR_NESTED = R.errorReply("ERR MULTI calls can not be nested");
const ERR_EXEC_WITHOUT = R.errorReply("ERR EXEC without MULTI");
const ERR_DISCARD_WITHOUT = R.errorReply("ERR DISCARD without MULTI");
const ERR_WATCH_IN_MULTI = R.errorReply("ERR WATCH inside MULTI is not allowed");
const EXECABORT = R.errorReply("EXECABORT Transaction discarded because of previous errors.");
const EXECABORT_LOST = R.errorReply("EXECABORT Transaction discarded: the connection to the cluster node was lost (nothing ran)");
const ERR_CROSSSLOT = R.errorReply("CROSSSLOT Keys in request don't hash to the same slot");
const ERR_WATCH_NODES = R.errorReply(
  "ERR WATCH of keys on several cluster nodes is not supported by proxy (a transaction runs on one node: use hash tags)");
const ERR_OTHER_NODE = R.errorReply(
  "ERR command not queued: its key is on another cluster node than the transaction's (a transaction runs on one node: use hash tags)");
/** Commands sent on the pinned connection between WATCH and MULTI (MULTI and the rest then follow). */
const TO_PINNED = new Set(["multi", "exec", "discard", "watch", "unwatch", "reset"]);
/** Commands that change the client's state in predixy, which the pinned connection must not carry. */
const PROXY_STATE = new Set(["auth", "hello", "select", "client|setname", "client|setinfo", "readonly", "readwrite"]);

/** A MOVED/ASK/TRYAGAIN/CLUSTERDOWN reply: the node refused because of where the slot is. */
function slotError(buf: Uint8Array, start: number, end: number): boolean {
  return /^-(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(new TextDecoder().decode(buf.subarray(start, Math.min(end, start + 16))));
}

/**
 * A client's transaction. The node is the first key's owner (WATCH's, or the first queued
 * command's); commands queued before a key appears are answered +QUEUED and wait in `unsent`,
 * and MULTI goes to the node just before them. A command for another node is refused and aborts the transaction, so EXEC
 * answers EXECABORT and nothing runs, never half a transaction. After WATCH and after EXEC or
 * DISCARD, the client's later commands wait for that reply (`fenced`), as they would run after
 * it on one Redis.
 */
export class Transaction implements Session {
  readonly blocked = false;
  private node: BackendNode | null = null;
  private conn: BackendConn | null = null;
  private inMulti = false;
  /** MULTI was answered by the proxy and is still to be sent, before the first queued command. */
  private multiUnsent = false;
  /** Copies of keyless commands queued (and answered) before the transaction's node was known. */
  private readonly unsent: Request[] = [];
  /** Why EXEC will answer EXECABORT (a command was refused), or null. */
  private aborted = false;
  /** The connection was lost: nothing more can be sent on it. */
  private broken = false;
  /** A reply later commands must wait for is outstanding (WATCH, EXEC, DISCARD, UNWATCH). */
  private fenced: Request | null = null;
  /** A command went the shared way between WATCH and MULTI: the pinned connection's next one waits for its reply. */
  private outside = false;
  /** EXEC's reply once the transaction is aborted. */
  private execAbort = EXECABORT;
  /** The backend credential the connection was opened with. */
  private cred = 0;
  /** The protocol the connection speaks (the client's, followed by HELLO). */
  private proto: Proto = 2;

  constructor(private readonly c: ClientSession, private readonly host: SessionHost) {}

  dispatch(f: Frame, spec: CommandSpec): void {
    const c = this.c;
    if (this.fenced !== null) return c.deferUntilIdle();
    // Closed while it waited for the client (the node's idle timeout, CLIENT KILL, a restart):
    // its WATCH and MULTI are gone with it.
    if (this.conn !== null && this.conn.state === ConnState.CLOSED) this.broken = this.aborted = true;
    if (this.outside && TO_PINNED.has(spec.name)) {
      // As on one connection, what the client sent the shared way runs first (a GET between
      // WATCH and MULTI must not see EXEC's writes).
      if (c.oldestPending() !== null) return c.deferUntilIdle();
      this.outside = false;
    }
    switch (spec.name) {
      case "multi":
        return this.multi(f, spec);
      case "exec":
        return this.exec(f, spec);
      case "discard":
        return this.discard(f, spec);
      case "watch":
        return this.watch(f, spec);
      case "unwatch":
        if (!this.inMulti) return this.unwatch(f, spec);
        break;
      case "quit":
        return this.host.route(c, f, spec);
      case "hello":
        if (!this.inMulti) return this.hello(f, spec);
        break;
      case "reset":
        return this.reset(f, spec);
    }
    if (!this.inMulti) {
      // Between WATCH and MULTI: as usual.
      this.outside = true;
      return this.host.route(c, f, spec);
    }
    // Blocking commands do not block inside MULTI; WAIT and pub/sub have no place in it here.
    if (spec.route === Route.UNSUPPORTED || (spec.route === Route.SESSION && spec.local !== "blocking") ||
        (spec.route === Route.PUBSUB && spec.name.endsWith("subscribe")) || PROXY_STATE.has(spec.local)) {
      this.aborted = true;
      return this.host.answer(c, R.errorReply(`ERR command '${spec.name.replace("|", " ").toUpperCase()}' cannot be queued in a transaction through the proxy`));
    }
    const slot = this.host.slotOf(f, spec);
    const req = this.host.track(c, f, spec, slot);
    req.session = this;
    if (slot >= 0) {
      const owner = this.host.topology.table.nodeFor(slot);
      if (this.node === null) {
        if (!this.bind(owner, req)) return;
      } else if (owner !== this.node) {
        this.aborted = true;
        return this.host.finish(req, ERR_OTHER_NODE);
      }
    } else if (this.node === null) {
      // Keyless, and the node is not known yet: +QUEUED now, as the node answers it (a client
      // may wait for it before sending more); its bytes follow MULTI once the node is known.
      this.unsent.push(this.copyOf(req));
      return this.host.finish(req, QUEUED);
    }
    this.send(req);
  }

  private multi(f: Frame, spec: CommandSpec): void {
    if (this.inMulti) return this.host.answer(this.c, ERR_NESTED);
    this.inMulti = true;
    if (this.conn !== null) return this.send(this.track(f, spec));
    this.multiUnsent = true;
    this.host.answer(this.c, R.OK);
  }

  private exec(f: Frame, spec: CommandSpec): void {
    if (!this.inMulti) return this.host.answer(this.c, ERR_EXEC_WITHOUT);
    const req = this.track(f, spec);
    if (this.aborted || this.broken) {
      if (this.conn === null || this.broken) {
        this.unsent.length = 0;
        this.end(false);
        return this.host.finish(req, this.broken ? EXECABORT_LOST : EXECABORT);
      }
      // DISCARD in EXEC's place: the node answers what it queued, then drops it; nothing runs.
      req.src = DISCARD;
      req.start = 0;
      req.end = DISCARD.length;
      return this.fence(req);
    }
    if (this.node === null && !this.bind(this.host.anyMaster(), req)) return;
    this.fence(req);
  }

  private discard(f: Frame, spec: CommandSpec): void {
    if (!this.inMulti) return this.host.answer(this.c, ERR_DISCARD_WITHOUT);
    if (this.conn === null || this.broken) {
      this.unsent.length = 0;
      this.end(!this.broken);
      return this.host.answer(this.c, R.OK);
    }
    this.fence(this.track(f, spec));
  }

  private watch(f: Frame, spec: CommandSpec): void {
    if (this.inMulti) return this.host.answer(this.c, ERR_WATCH_IN_MULTI);
    const slot = keysSlot(f, 1);
    if (slot === MIXED) return this.endIfIdle(ERR_CROSSSLOT);
    const owner = this.host.topology.table.nodeFor(slot);
    if (this.node !== null && owner !== this.node) return this.endIfIdle(ERR_WATCH_NODES);
    const req = this.track(f, spec);
    req.slot = slot;
    if (this.node === null && !this.bind(owner, req)) return;
    this.fence(req);
  }

  private unwatch(f: Frame, spec: CommandSpec): void {
    if (this.conn === null || this.broken) {
      this.end(!this.broken);
      return this.host.answer(this.c, R.OK);
    }
    this.fence(this.track(f, spec));
  }

  /** HELLO between WATCH and MULTI: answered by predixy; a new protocol is the connection's too (WATCH stays). */
  private hello(f: Frame, spec: CommandSpec): void {
    this.host.route(this.c, f, spec);
    if (this.conn === null || this.broken || this.c.proto === this.proto) return;
    this.proto = this.c.proto;
    this.conn.enqueue(this.proto === 3 ? HELLO_3 : HELLO_2);
  }

  /**
   * RESET: the node drops what it queued or watches for this connection (DISCARD or UNWATCH in
   * RESET's place, after the replies still due), then the client is reset as usual. Not RESET
   * itself on the node: it would also turn a RESP3 connection back into RESP2.
   */
  private reset(f: Frame, spec: CommandSpec): void {
    if (!this.dropOnNode(f, spec)) this.host.route(this.c, f, spec);
  }

  /**
   * DISCARD or UNWATCH in the place of `f`, after the replies still due: the node drops what it
   * queued or watches for this connection. False (the session simply ends) when no connection
   * holds anything, or the one that did is lost.
   */
  private dropOnNode(f: Frame, spec: CommandSpec): boolean {
    if (this.conn === null || this.broken) {
      this.unsent.length = 0;
      this.end(!this.broken);
      return false;
    }
    const req = this.track(f, spec);
    const bytes = this.inMulti ? DISCARD : UNWATCH;
    req.src = bytes;
    req.start = 0;
    req.end = bytes.length;
    this.fence(req);
    return true;
  }

  /** Answers with `reply` and ends a session that holds nothing yet (a refused first WATCH). */
  private endIfIdle(reply: Uint8Array): void {
    if (this.conn === null && !this.inMulti) this.end(true);
    this.host.answer(this.c, reply);
  }

  private track(f: Frame, spec: CommandSpec): Request {
    const req = this.host.track(this.c, f, spec, -1);
    req.session = this;
    return req;
  }

  /** Sends `req`, and makes the client's later commands wait for its reply. */
  private fence(req: Request): void {
    this.fenced = req;
    this.send(req);
  }

  private send(req: Request): void {
    if (this.broken) {
      if (req === this.fenced) this.fenced = null; // answered now: nothing to wait for
      return this.host.finish(req, R.errorReply("ERR the transaction's connection to the cluster node was lost"));
    }
    this.conn!.enqueue(req);
  }

  /**
   * Takes a pinned connection to `node` for the transaction; MULTI (if already answered) and
   * the commands queued so far go first. False, with `req` failed and the transaction aborted,
   * if the node is unknown or has no connection to lend.
   */
  private bind(node: BackendNode | null, req: Request): boolean {
    this.cred = this.c.cred;
    this.proto = this.c.proto;
    const conn = node?.pinned.acquire(this.proto, this.cred) ?? null;
    if (node === null || conn === null) {
      this.aborted = true;
      this.host.finish(req, node === null ? R.ERR_NO_NODE : R.errorReply(`ERR too many pinned connections to ${node.addr} (pool.max_pinned)`));
      return false;
    }
    this.node = node;
    this.conn = conn;
    if (this.multiUnsent) {
      conn.enqueue(MULTI);
      this.multiUnsent = false;
    }
    for (const r of this.unsent.splice(0)) conn.enqueue(r);
    return true;
  }

  /** A command answered +QUEUED before the node was known, to be sent there: its reply comes back here, unseen by the client. */
  private copyOf(req: Request): Request {
    const copy = internalRequest(Kind.PRELOAD, req.src.slice(req.start, req.end));
    copy.session = this;
    return copy;
  }

  onReply(req: Request, buf: Uint8Array, start: number, end: number): void {
    if (req.kind !== Kind.CLIENT) {
      // A copy of a command the client was answered +QUEUED for: refused, it aborts the
      // transaction (the node answers EXEC with EXECABORT).
      if (buf[start] === 45) this.aborted = true;
      return;
    }
    if (req === this.fenced) {
      this.fenced = null;
      const name = req.spec!.name;
      if (name === "exec" || name === "discard" || name === "unwatch" || name === "reset") {
        // The node has no MULTI or WATCH left for this connection: it can serve someone else.
        this.end(true);
        if (name === "reset") {
          this.host.resetClient(this.c);
          return this.host.finish(req, RESET);
        }
        if (name === "exec" && this.aborted) return this.host.finish(req, this.execAbort);
        if (name === "exec" && slotError(buf, start, end)) {
          return this.host.finish(req, R.errorReply(
            `EXECABORT Transaction discarded: its slot moved to another node meanwhile (nothing ran; run it again): ${text(buf, start, end)}`));
        }
      }
      return this.host.finish(req, buf, start, end);
    }
    if (buf[start] === 45) {
      // Refused at queue time: the node flags the transaction (EXEC will answer EXECABORT). A
      // MOVED or ASK names a node address the client must not need: say what it means.
      this.aborted = true;
      if (slotError(buf, start, end)) return this.host.finish(req, ERR_OTHER_NODE);
    }
    this.host.finish(req, buf, start, end);
  }

  onLost(req: Request, written: boolean, reason: string): void {
    this.broken = true;
    this.aborted = true;
    if (req.kind !== Kind.CLIENT) return; // a copy (see copyOf): the client has its answer
    const exec = req.spec?.name === "exec";
    if (req === this.fenced) {
      this.fenced = null;
      this.end(false);
    }
    this.host.finish(req, R.errorReply(exec && written
      ? `ERR connection to the cluster node was lost (${reason}); the transaction may or may not have run`
      : `ERR connection to the cluster node was lost (${reason}); the transaction is aborted`));
  }

  refused(f: Frame, spec: CommandSpec | null, reply: Uint8Array): boolean {
    if (spec === null || spec.name !== "exec") {
      if (this.inMulti) this.aborted = true;
      return false;
    }
    // Redis discards the transaction, WATCH included: DISCARD or UNWATCH in EXEC's place, after
    // the replies still due, and `reply` (EXECABORT …) for it.
    if (this.fenced !== null) {
      this.c.deferUntilIdle();
      return true;
    }
    this.aborted = true;
    this.execAbort = reply;
    return this.dropOnNode(f, spec);
  }

  clientGone(): void {
    this.unsent.length = 0;
    this.end(false);
  }

  /** The session is over: the connection goes back (or is closed if it may hold state). */
  private end(clean: boolean): void {
    if (this.c.session === this) this.c.session = null;
    const conn = this.conn;
    if (conn === null) return;
    // Cleared first: closing the connection reports its requests lost, which come back here.
    this.conn = null;
    this.node!.pinned.release(conn, clean && !this.broken, this.proto, this.cred);
  }
}

function text(buf: Uint8Array, start: number, end: number): string {
  return new TextDecoder().decode(buf.subarray(start + 1, end - 2));
}
