// A Redis node as the proxy sees it: its address and its few shared, multiplexed connections.

import type { SlotTable } from "../cluster/slot-table.ts";
import { Kind, type Request } from "../router/request.ts";
import { BackendConn, ConnState, type BackendEvents, type BackendOptions } from "./backend-conn.ts";

export interface NodeOptions extends Omit<BackendOptions, "host" | "port" | "authRequest"> {
  /** Shared connections per node (`pool.size`) and backend credential. */
  poolSize: number;
  /**
   * AUTH for each backend credential (index = Request.cred; null: none needed). Each credential
   * has a pool of its own: a connection authenticates once, as one user, for all it carries.
   */
  authRequests: (Request | null)[];
}

export class BackendNode {
  readonly addr: string;
  private readonly conns: (BackendConn | null)[];
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
    this.conns = Array.from({ length: opts.poolSize * opts.authRequests.length }, () => null);
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

  /** Sends two commands back to back on one connection (ASKING + the command). */
  sendPair(first: Request, req: Request): void {
    const conn = this.connFor(req);
    conn.enqueue(first);
    conn.enqueue(req);
  }

  private connFor(req: Request): BackendConn {
    const size = this.opts.poolSize;
    const i = req.cred * size + (req.affinity % size);
    const conn = this.conns[i];
    return conn === null || conn.state === ConnState.CLOSED ? this.open(i) : conn;
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

  /** Opens the default credential's connections that are not open yet (warm-up: `pool.min_idle`). */
  warm(count: number): void {
    for (let i = 0; i < Math.min(count, this.opts.poolSize); i++) {
      const c = this.conns[i];
      if (c === null || c.state === ConnState.CLOSED) this.open(i);
    }
  }

  /** Backs off new connects after consecutive failures: 100 ms doubling to 2 s. */
  noteConnect(ok: boolean): void {
    if (ok) {
      this.failures = 0;
      this.downUntil = 0;
      return;
    }
    this.failures++;
    this.downUntil = performance.now() + Math.min(2000, 100 * 2 ** (this.failures - 1));
  }

  /** Visits each live connection (timeout sweeps, metrics). */
  forEachConn(fn: (c: BackendConn) => void): void {
    for (const c of this.conns) if (c !== null && c.state !== ConnState.CLOSED) fn(c);
  }

  closeAll(reason: string): void {
    for (const c of this.conns) c?.shut(reason);
  }

  get idle(): boolean {
    return this.conns.every((c) => c === null || c.state === ConnState.CLOSED || c.inFlight === 0);
  }

  private open(i: number): BackendConn {
    const conn = new BackendConn({
      host: this.host, port: this.port, bufferSize: this.opts.bufferSize, connectTimeoutMs: this.opts.connectTimeoutMs,
      authRequest: this.opts.authRequests[Math.floor(i / this.opts.poolSize)], tls: this.opts.tls,
    }, this.events);
    this.conns[i] = conn;
    return conn;
  }
}

/** "host:port", with IPv6 hosts bracketed. */
export function formatAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
