// A Redis node as the proxy sees it: its address, its few shared, multiplexed connections, and whether it answers.

import type { SlotTable } from "../cluster/slot-table.ts";
import { metrics } from "../metrics/recorder.ts";
import { internalRequest, Kind, type Request } from "../router/request.ts";
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

const enc = (s: string) => new TextEncoder().encode(s);
/** Health probes and replica mode switches: fixed bytes, no per-use state, so one instance serves every FIFO. */
export const PING_REQUEST = internalRequest(Kind.PING, enc("*1\r\n$4\r\nPING\r\n"));
export const READONLY_REQUEST = internalRequest(Kind.READONLY, enc("*1\r\n$8\r\nREADONLY\r\n"));
export const READWRITE_REQUEST = internalRequest(Kind.READONLY, enc("*1\r\n$9\r\nREADWRITE\r\n"));

export class BackendNode {
  readonly addr: string;
  /** Its slot in the per-node metrics arrays (kept by the address for the process' life). */
  readonly id: number;
  private readonly conns: (BackendConn | null)[];
  /** Private connections for sessions (transactions, blocking calls). */
  readonly pinned: PinnedPool;
  /** After a failed connect, new connections (and probes) wait until then (ms, performance.now()). */
  downUntil = 0;
  private failures = 0;
  /**
   * Whether commands may be sent to it now: it is not refusing connections, it answers (no
   * command or PING left unanswered past health_check_timeout_ms), and the cluster has not
   * marked it failed. A plain field: the router reads it for every command.
   */
  available = true;
  /** When it last stopped being available (ms, performance.now()); 0 while available. */
  unavailableSince = 0;
  /** A connection left a command or PING unanswered past health_check_timeout_ms; cleared by any reply. */
  stalled = false;
  /** CLUSTER NODES flags it `fail`: the cluster itself has given up on it (a failover follows, if it can). */
  clusterFailed = false;
  /**
   * The lowest slot it served as a master in the newest table that had it as one (-1: never a
   * master): where a command meant for it goes once a replica has taken its slots over.
   */
  firstSlot = -1;
  /** Shared connections send READONLY: the node serves reads as a replica (`read_from`). */
  private readonlyConns = false;

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
    // Redirected ones were sent here on a node's word (MOVED/ASK), not the table's; reads a
    // replica serves are not its slots to lose.
    if (req.slot < 0 || req.redirects > 0) return false;
    const owner = table.nodeFor(req.slot);
    return owner !== null && owner !== this && !(this.readonlyConns && req.spec?.readonly === true);
  }

  /** Queues a proxy-internal request (PING, INFO replication) on the default credential's first RESP2 connection. */
  sendInternal(req: Request): void {
    const c = this.conns[0];
    (c === null || c.state === ConnState.CLOSED ? this.open(0) : c).enqueue(req);
  }

  /** Opens the default credential's RESP2 connections that are not open yet (warm-up: `pool.min_idle`). */
  warm(count: number): void {
    for (let i = 0; i < Math.min(count, this.opts.poolSize); i++) {
      const c = this.conns[i];
      if (c === null || c.state === ConnState.CLOSED) this.open(i);
    }
  }

  /**
   * Sends a PING (on a new connection if need be) to a node that is not available, once its
   * connect backoff allows and no earlier probe or command is still waiting there. Its answer
   * (or a failed connect) updates `available`.
   */
  probe(now: number): void {
    if (this.available || this.downUntil > now) return;
    const c = this.conns[0];
    if (c !== null && c.state !== ConnState.CLOSED && c.inFlight > 0) return;
    this.sendInternal(PING_REQUEST);
  }

  /** Backs off new connects after consecutive failures: 100 ms doubling to 2 s. Returns whether availability changed. */
  noteConnect(ok: boolean): boolean {
    if (ok) {
      if (this.failures > 0) metrics.nodeTransition(this.id, true);
      this.failures = 0;
      this.downUntil = 0;
    } else {
      if (this.failures++ === 0) metrics.nodeTransition(this.id, false);
      this.downUntil = performance.now() + Math.min(2000, 100 * 2 ** (this.failures - 1));
    }
    return this.update();
  }

  /** A connection left a command or PING unanswered too long (true), or the node answered (false). */
  noteStalled(stalled: boolean): boolean {
    this.stalled = stalled;
    return this.update();
  }

  /** The cluster's own verdict from CLUSTER NODES (`fail` flag). */
  noteClusterFailed(failed: boolean): boolean {
    this.clusterFailed = failed;
    return this.update();
  }

  /** Recomputes `available`; true if it changed. */
  private update(): boolean {
    const now = this.failures === 0 && !this.stalled && !this.clusterFailed;
    if (now === this.available) return false;
    this.available = now;
    this.unavailableSince = now ? 0 : performance.now();
    return true;
  }

  /** Whether this node's shared connections send READONLY (it serves reads as a replica); switches the open ones too. */
  setReadonly(on: boolean): void {
    if (on === this.readonlyConns) return;
    this.readonlyConns = on;
    for (const c of this.conns) if (c !== null && c.state !== ConnState.CLOSED) c.enqueue(on ? READONLY_REQUEST : READWRITE_REQUEST);
  }

  get readonly(): boolean {
    return this.readonlyConns;
  }

  /** Visits each live connection (timeout sweeps, metrics). */
  forEachConn(fn: (c: BackendConn) => void): void {
    for (const c of this.conns) if (c !== null && c.state !== ConnState.CLOSED) fn(c);
  }

  closeAll(reason: string): void {
    for (const c of this.conns) c?.shut(reason);
    this.pinned.closeIdle(reason);
  }

  /** Closes the shared connections that still have requests waiting (the node stopped answering and lost its slots). */
  closeBusy(reason: string): void {
    for (const c of this.conns) if (c !== null && c.state !== ConnState.CLOSED && c.inFlight > 0) c.close(reason);
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
    }, this.events, this);
    if (this.readonlyConns) conn.enqueue(READONLY_REQUEST);
    this.conns[i] = conn;
    return conn;
  }
}

/** "host:port", with IPv6 hosts bracketed. */
export function formatAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
