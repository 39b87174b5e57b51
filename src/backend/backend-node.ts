// A Redis node as the proxy sees it: its address and its few shared, multiplexed connections.

import type { SlotTable } from "../cluster/slot-table.ts";
import { metrics } from "../metrics/recorder.ts";
import { Kind, type Request } from "../router/request.ts";
import { PinnedPool } from "../session/pinned-pool.ts";
import { BackendConn, ConnState, type BackendEvents, type BackendOptions } from "./backend-conn.ts";

export interface NodeOptions extends Omit<BackendOptions, "host" | "port" | "authRequest" | "nodeId"> {
  /** Shared connections per node, protocol and backend credential (`pool.size`). */
  poolSize: number;
  /**
   * Per backend credential (index = Request.cred): AUTH sent first on a RESP2 connection (null:
   * none needed), and HELLO 3 with those credentials on a RESP3 one. Each credential has pools
   * of its own: a connection authenticates once, as one user, for all it carries.
   */
  authRequests: (Request | null)[];
  helloRequests: Request[];
  /** Idle private connections kept (`pool.max_idle`), and how many a node may have (`pool.max_pinned`). */
  maxIdle: number;
  maxPinned: number;
}

export class BackendNode {
  readonly addr: string;
  /** Its slot in the per-node metrics arrays (kept by the address for the process' life). */
  readonly id: number;
  private readonly conns: (BackendConn | null)[];
  /** Private connections for sessions (transactions, blocking calls). */
  readonly pinned: PinnedPool;
  /** After a failed connect, new connections wait until then (ms, performance.now()). */
  downUntil = 0;
  private failures = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: NodeOptions,
    private readonly events: BackendEvents,
  ) {
    this.addr = formatAddr(host, port);
    this.id = metrics.nodeId(this.addr);
    // Per credential, RESP2 connections first, then as many RESP3 ones (opened only for RESP3 clients).
    this.conns = Array.from({ length: 2 * opts.poolSize * opts.authRequests.length }, () => null);
    this.pinned = new PinnedPool(this, opts, events);
  }

  /** Whether a new connection may be attempted now (false while backing off after failures). */
  get reachable(): boolean {
    if (this.downUntil === 0) return true;
    return this.downUntil <= performance.now() || this.conns.some((c) => c?.state === ConnState.OPEN);
  }

  /**
   * Queues a request on the connection its affinity picks, (re)connecting lazily. Requests
   * with the same affinity (one client's) keep their order, as they would on one connection.
   */
  send(req: Request): void {
    this.connFor(req).enqueue(req);
  }

  /** Sends `req` right behind `before` on one connection (ASKING, or a SCRIPT LOAD, then the command). */
  sendAfter(before: readonly Request[], req: Request): void {
    const conn = this.connFor(req);
    for (const b of before) conn.enqueue(b);
    conn.enqueue(req);
  }

  /** The shared connection of `req`'s credential and protocol that its affinity picks. */
  private connFor(req: Request): BackendConn {
    const size = this.opts.poolSize;
    const i = (2 * req.cred + (req.proto === 3 ? 1 : 0)) * size + (req.affinity % size);
    const conn = this.conns[i];
    return conn === null || conn.state === ConnState.CLOSED ? this.open(i) : conn;
  }

  /** The connection `req` would go on (see stream/upload.ts). */
  uploadConn(req: Request): BackendConn {
    return this.connFor(req);
  }

  /**
   * Client requests here whose slot `table` now gives to another node (see Topology.changed):
   * those already on their way are appended to `inFlight`; those not sent yet, because their
   * connection is still being made, are removed and appended to `unsent`.
   */
  movedAway(table: SlotTable, inFlight: Request[], unsent: Request[]): void {
    const visit = (req: Request) => { if (req.kind === Kind.CLIENT && this.lostSlotOf(req, table)) inFlight.push(req); };
    const stays = (req: Request) => !this.lostSlotOf(req, table);
    for (const c of this.conns) {
      c?.forEachInFlight(visit);
      c?.takeUnsent(stays, unsent);
    }
  }

  private lostSlotOf(req: Request, table: SlotTable): boolean {
    // Redirected ones were sent here on a node's word (MOVED/ASK), not the table's.
    if (req.slot < 0 || req.redirects > 0) return false;
    const owner = table.nodeFor(req.slot);
    return owner !== null && owner !== this;
  }

  /** Opens the default credential's RESP2 connections that are not open yet (warm-up: `pool.min_idle`). */
  warm(count: number): void {
    for (let i = 0; i < Math.min(count, this.opts.poolSize); i++) {
      const c = this.conns[i];
      if (c === null || c.state === ConnState.CLOSED) this.open(i);
    }
  }

  /** Backs off new connects after consecutive failures: 100 ms doubling to 2 s. */
  noteConnect(ok: boolean): void {
    if (ok) {
      if (this.failures > 0) metrics.nodeTransition(this.id, true);
      this.failures = 0;
      this.downUntil = 0;
      return;
    }
    if (this.failures++ === 0) metrics.nodeTransition(this.id, false);
    this.downUntil = performance.now() + Math.min(2000, 100 * 2 ** (this.failures - 1));
  }

  /** Visits each live connection (timeout sweeps, metrics). */
  forEachConn(fn: (c: BackendConn) => void): void {
    for (const c of this.conns) if (c !== null && c.state !== ConnState.CLOSED) fn(c);
  }

  closeAll(reason: string): void {
    for (const c of this.conns) c?.shut(reason);
    this.pinned.closeIdle(reason);
  }

  /** Whether a connect failed last and the node is being backed off (the dashboard's "down"). */
  get down(): boolean {
    return this.failures > 0;
  }

  get idle(): boolean {
    return this.conns.every((c) => c === null || c.state === ConnState.CLOSED || c.inFlight === 0);
  }

  private open(i: number): BackendConn {
    const pool = Math.floor(i / this.opts.poolSize), cred = pool >> 1;
    const authRequest = pool & 1 ? this.opts.helloRequests[cred] : this.opts.authRequests[cred];
    const conn = new BackendConn({
      host: this.host, port: this.port, bufferSize: this.opts.bufferSize, connectTimeoutMs: this.opts.connectTimeoutMs,
      authRequest, tls: this.opts.tls, nodeId: this.id,
    }, this.events);
    this.conns[i] = conn;
    return conn;
  }
}

/** "host:port", with IPv6 hosts bracketed. */
export function formatAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
