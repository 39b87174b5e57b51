// Commands that cannot go now: parked until a node can take them, retried after a backoff, or held behind their client's older command for the same slot.

import type { BackendNode } from "../backend/backend-node.ts";
import type { Topology } from "../cluster/topology.ts";
import { ErrorKind, metrics } from "../metrics/recorder.ts";
import type { Stats } from "../metrics/stats.ts";
import * as R from "../resp/replies.ts";
import type { Request, ReplySink } from "./request.ts";

/** What Retry needs of the router. */
export interface RetryHost {
  /** Routes and sends `req` (it may come back here, parked again). */
  send(req: Request): void;
  /** Gives `req` its final reply. */
  finish(req: Request, buf: Uint8Array, start?: number, end?: number): void;
  /** Lets go of a request whose client has gone. */
  drop(req: Request): void;
}

/** In a client's `retrySlots`: a fan-out part is being retried, so every later command waits. */
const EVERY_SLOT = -3;
/** Parked requests are checked this often: deadlines, probes of the nodes they wait for. */
const TICK_MS = 100;
/** What a waiting request costs besides its bytes (the pooled Request itself), for the memory budget. */
const REQUEST_OVERHEAD = 256;

/**
 * Three ways a command waits, all bounded by `retry_timeout_ms` counted from its first wait:
 *
 * - **Parked**: its slot has no node, or the node is not available (refusing connections, not
 *   answering, or failed by the cluster's own verdict). Nothing is sent; it is re-sent when the
 *   table changes or a node becomes available, so a failover costs its clients the failover
 *   itself, not a polling interval. A node (or an unserved slot) that has been out for longer
 *   than the budget fails its commands at once instead: an outage is not made to cost every
 *   command the whole budget.
 * - **Backing off**: a node answered TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN or READONLY, or
 *   the connection was lost before the command was written (or it is a read): resent after
 *   10 ms doubling to 200 ms.
 * - **Held**: an older command of the same client for the same slot is parked or backing off.
 *   Held commands go, in order, once no older command for their slot waits; commands for
 *   other slots are not held, so a client's commands to healthy masters are not delayed by one
 *   to a failed master (their replies still wait for its reply: replies go in request order).
 *
 * Parked and held commands get copies of their bytes, counted in their client's memory, so
 * that a few waiting commands do not pin whole input buffers.
 */
export class Retry {
  private parked: Request[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly host: RetryHost,
    private readonly topology: Topology,
    private readonly stats: Stats,
    /** Read at each use: a reload changes it. */
    private readonly budget: { retryTimeoutMs: number },
  ) {}

  /** Commands parked now (INFO, tests). */
  get parkedCount(): number {
    return this.parked.length;
  }

  /**
   * `req` cannot go to `node` (null: nothing serves its slot) now. Parks it, or returns false
   * when it may not wait (out of budget, or the outage is older than the budget): the caller
   * then gives the error.
   */
  park(req: Request, node: BackendNode | null): boolean {
    const now = performance.now();
    const budget = this.budget.retryTimeoutMs;
    if (budget === 0) return false;
    const since = node !== null ? node.unavailableSince : this.topology.incompleteSince;
    if (since > 0 && now - since > budget) return false;
    if (!this.start(req, now)) return false;
    this.ownBytes(req);
    this.parked.push(req);
    this.stats.parkedCommands = this.parked.length;
    this.topology.requestRefresh();
    if (this.timer === null) this.timer = setInterval(tick, TICK_MS, this);
    return true;
  }

  /** Why a command parked for `node` finally failed. */
  static parkedError(node: BackendNode | null): Uint8Array {
    if (node === null) return R.ERR_NO_NODE;
    const why = node.clusterFailed ? "is marked failed by the cluster and no replica has taken over"
      : node.stalled ? "is not answering" : "is unreachable";
    return R.errorReply(`CLUSTERDOWN node ${node.addr} ${why}`);
  }

  /** Sends the parked commands again, in order (the table changed, or a node became available). */
  wake(): void {
    if (this.parked.length === 0) return;
    const all = this.parked;
    this.parked = [];
    for (const req of all) this.unpark(req);
    this.stopIfEmpty();
  }

  private unpark(req: Request): void {
    if (req.sink === null || req.sink.closed) return this.host.drop(req);
    // An older command of the client for the same slot, in flight at the silent node when this
    // one was parked, may now be waiting to be resent itself (its node lost the slot, or the
    // connection): this one goes after it, not before.
    if (this.behindOlder(req)) {
      this.hold(req);
      this.leave(req);
      return;
    }
    this.unownBytes(req);
    this.host.send(req);
  }

  /** @internal timer: expired commands get their error; unavailable nodes are probed. */
  tick(): void {
    metrics.tick();
    const now = performance.now();
    const list = this.parked;
    this.parked = [];
    const kept: Request[] = [];
    let probed: Set<BackendNode> | null = null;
    for (const req of list) {
      if (req.sink === null || req.sink.closed) { this.host.drop(req); continue; }
      const node = req.target ?? (req.slot >= 0 ? this.topology.table.nodeFor(req.slot) : null);
      if (node !== null && node.available) { this.unpark(req); continue; }
      if (now >= req.retryUntil) {
        this.unownBytes(req);
        this.host.finish(req, Retry.parkedError(node));
        continue;
      }
      if (node !== null) (probed ??= new Set()).add(node);
      kept.push(req);
    }
    // Commands unparked above may have been parked again meanwhile: they follow.
    this.parked = this.parked.length === 0 ? kept : kept.concat(this.parked);
    if (probed !== null) for (const n of probed) n.probe(now);
    if (this.parked.length > 0) this.topology.requestRefresh();
    this.stopIfEmpty();
  }

  private stopIfEmpty(): void {
    this.stats.parkedCommands = this.parked.length;
    if (this.parked.length === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /**
   * Schedules a resend with backoff while the request's budget allows. If an older command of
   * the same client for the same slot is already waiting, this one is held behind it instead,
   * so the two reach the node in the order they were sent. False: out of budget.
   */
  later(req: Request): boolean {
    const now = performance.now();
    if (this.budget.retryTimeoutMs === 0) return false;
    if (!req.inRetry && this.mustWait(req)) {
      if (req.retryUntil === 0) req.retryUntil = now + this.budget.retryTimeoutMs;
      if (now >= req.retryUntil) return false;
      this.hold(req);
      return true;
    }
    if (!this.start(req, now)) return false;
    this.stats.retries++;
    metrics.retried(req.spec === null ? 0 : req.spec.id);
    const delay = Math.min(200, 10 * 2 ** req.retries++);
    setTimeout(resend, Math.min(delay, req.retryUntil - now), this, req);
    return true;
  }

  /** @internal timer target: resend unless the client has gone; out of time, give the last error. */
  resendNow(req: Request): void {
    if (req.sink === null || req.sink.closed) return this.host.drop(req);
    metrics.tick();
    req.errKind = ErrorKind.NONE;
    if (performance.now() >= req.retryUntil && req.replyEnd > req.replyStart) {
      return this.host.finish(req, req.reply, req.replyStart, req.replyEnd);
    }
    this.host.send(req);
  }

  /** Starts (or continues) `req`'s wait: its budget, and its slot marked as waiting for its client. False: out of time. */
  private start(req: Request, now: number): boolean {
    if (req.retryUntil === 0) req.retryUntil = now + this.budget.retryTimeoutMs;
    if (now >= req.retryUntil) return false;
    if (!req.inRetry) this.enter(req);
    return true;
  }

  /** `req` is now waiting to be sent again: its client's later commands for its slot wait for its final reply. */
  enter(req: Request): void {
    const sink = req.sink;
    if (sink === null || sink.closed || req.inRetry) return;
    req.inRetry = true;
    sink.retrying++;
    const key = slotKey(req);
    if (key !== null) {
      const m = (sink.retrySlots ??= new Map());
      m.set(key, (m.get(key) ?? 0) + 1);
    }
    // The client's replies already in hand must not wait out the retry.
    sink.flushSoon();
  }

  /**
   * `req`, once retried, has its final reply. Only now may the commands held behind it go (in
   * order): had they followed its resend on the wire, a node recovering between the two would
   * run them first.
   */
  leave(req: Request): void {
    const sink = req.sink!;
    req.inRetry = false;
    sink.retrying--;
    const key = slotKey(req);
    const m = sink.retrySlots;
    if (key !== null && m !== null) {
      const n = (m.get(key) ?? 1) - 1;
      if (n > 0) m.set(key, n);
      else m.delete(key);
    }
    if (sink.retrying === 0) sink.retrySlots = null;
    if (sink.held > 0) this.releaseHeld(sink);
  }

  /** Whether `req` must wait for an older command of its client (one for its slot is waiting to be resent). */
  mustWait(req: Request): boolean {
    const sink = req.sink!;
    if (sink.retrying === 0) return false;
    // A fan-out part touches every slot: behind any retry. A keyless command orders against nothing.
    if (req.slot < 0) return req.target !== null || (sink.retrySlots?.has(EVERY_SLOT) ?? false);
    const m = sink.retrySlots;
    return m !== null && (m.has(req.slot) || m.has(EVERY_SLOT));
  }

  /** Holds `req` (not sent) until the client's older commands for its slot have their final replies. */
  hold(req: Request): void {
    req.held = true;
    // A part of a split command waits in its parent, the entry of the client's reply order.
    const entry = req.parent ?? req;
    if (entry === req || !entry.held) {
      entry.held = true;
      req.sink!.held++;
    }
    this.ownBytes(req);
    // Its time budget runs while it waits, so a client's waits do not add up one retry after another.
    if (req.retryUntil === 0) req.retryUntil = performance.now() + this.budget.retryTimeoutMs;
  }

  /**
   * Sends a split or fanned-out command's parts that need not wait; the others stay held (their
   * parent held in the client's order). A parent's budget, counted from its arrival, becomes theirs.
   */
  sendParts(parent: Request): void {
    const g = parent.gather!;
    let waiting = false;
    for (const p of g.parts) {
      if (!p.held || p.done) continue;
      if (p.retryUntil === 0) p.retryUntil = parent.retryUntil;
      if (this.mustWait(p)) {
        waiting = true;
        this.ownBytes(p);
        continue;
      }
      p.held = false;
      this.unownBytes(p);
      this.host.send(p);
      if (parent.sink === null || parent.sink.closed) return;
    }
    if (waiting && !parent.held) {
      parent.held = true;
      parent.sink!.held++;
      if (parent.retryUntil === 0) parent.retryUntil = performance.now() + this.budget.retryTimeoutMs;
    } else if (!waiting && parent.held) {
      parent.held = false;
      parent.sink!.held--;
    }
  }

  /** Sends the client's held commands (and parts) whose slots no longer wait, in the client's order. */
  private releaseHeld(sink: ReplySink): void {
    // Collected first: sending can complete requests and unlink them from the FIFO.
    const held: Request[] = [];
    for (let r = sink.oldestPending(); r !== null; r = r.next) if (r.held) held.push(r);
    for (const r of held) {
      if (sink.closed) return;
      if (!r.held) continue;
      if (r.gather !== null) {
        this.sendParts(r);
      } else if (!this.mustWait(r)) {
        r.held = false;
        sink.held--;
        this.unownBytes(r);
        this.host.send(r);
      }
    }
  }

  /** Whether a command of `req`'s client older than it, for the same slot, waits to be resent or is held. */
  behindOlder(req: Request): boolean {
    const sink = req.sink!;
    if (sink.retrying === 0 && sink.held === 0) return false;
    const entry = req.parent ?? req;
    for (let r = sink.oldestPending(); r !== null && r !== entry; r = r.next) {
      if ((r.inRetry || r.held) && ordered(r, req)) return true;
      if (r.gather !== null) for (const p of r.gather.parts) if ((p.inRetry || p.held) && !p.done && ordered(p, req)) return true;
    }
    return false;
  }

  /** A parked or held request keeps its own copy of its bytes, counted in its client's memory. */
  private ownBytes(req: Request): void {
    if (req.waitBytes !== 0) return;
    const n = req.end - req.start;
    if (!req.detached) {
      req.src = req.src.slice(req.start, req.end);
      req.start = 0;
      req.end = n;
      req.detached = true;
    }
    req.waitBytes = n + REQUEST_OVERHEAD;
    req.sink?.holdBytes(req.waitBytes);
  }

  private unownBytes(req: Request): void {
    if (req.waitBytes === 0) return;
    req.sink?.holdBytes(-req.waitBytes);
    req.waitBytes = 0;
  }
}

/** The key under which a waiting request holds back its client's later commands; null: it holds none back. */
function slotKey(req: Request): number | null {
  if (req.slot >= 0) return req.slot;
  return req.target !== null ? EVERY_SLOT : null;
}

/** Whether `later` must not overtake `older`. */
function ordered(older: Request, later: Request): boolean {
  if (older.slot < 0) return older.target !== null;
  return older.slot === later.slot || later.slot < 0;
}

function tick(r: Retry): void {
  r.tick();
}

function resend(r: Retry, req: Request): void {
  r.resendNow(req);
}
