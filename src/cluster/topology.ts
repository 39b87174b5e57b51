// Cluster topology: discovery from entry points, periodic and on-demand refresh, the node registry.

import { getLogger } from "@logtape/logtape";
import { BackendNode, formatAddr } from "../backend/backend-node.ts";
import type { Request } from "../router/request.ts";
import { RespError, type RespValue } from "../resp/reply-value.ts";
import type { BackendTls } from "../tls/backend-tls.ts";
import { query, type ControlAuth } from "./control-client.ts";
import { NO_NODE, SLOT_COUNT, SlotTable } from "./slot-table.ts";

const log = getLogger(["predixy", "topology"]);

export interface TopologyOptions {
  entryPoints: { host: string; port: number }[];
  auth: ControlAuth | null;
  /** TLS to the nodes ([cluster] tls), for topology queries as for client traffic. */
  tls: BackendTls | null;
  refreshIntervalMs: number;
  connectTimeoutMs: number;
  /** Creates the node object for an address (wires its connections to the router). */
  makeNode: (host: string, port: number) => BackendNode;
  /** Client requests on their way to (`inFlight`) or queued for (`unsent`) a node that lost their slot. */
  slotsMoved: (inFlight: Request[], unsent: Request[]) => void;
  /** After any change of the table (shard pub/sub channels follow their slots). */
  tableChanged?: () => void;
}

/** A topology query unanswered this long gets the next candidate asked beside it. */
const HEDGE_MS = 200;

/** Soonest a MOVED-triggered refresh may follow the previous one: a redirect storm costs one query. */
const MIN_REFRESH_GAP_MS = 100;

export class Topology {
  /** The current table; replaced whole, never mutated. */
  table: SlotTable = SlotTable.EMPTY;
  private readonly nodes = new Map<string, BackendNode>();
  private refreshing: Promise<boolean> | null = null;
  private again = false;
  private delayed: ReturnType<typeof setTimeout> | null = null;
  private lastRefresh = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastShape = "";
  /** Refreshes tried, those that got no table, and table changes seen (for metrics). */
  refreshes = 0;
  refreshFailures = 0;
  changes = 0;
  /** Whether the latest refresh obtained a table (readiness: the cluster is reachable). */
  lastRefreshOk = false;

  constructor(private readonly opts: TopologyOptions) {}

  /** The node at host:port, created on first use (MOVED/ASK can name a node not yet in the table). */
  node(host: string, port: number): BackendNode {
    const addr = formatAddr(host, port);
    let n = this.nodes.get(addr);
    if (n === undefined) {
      n = this.opts.makeNode(host, port);
      this.nodes.set(addr, n);
    }
    return n;
  }

  /** Sends `commands` to `node` on a connection of their own (control path: see control-client). */
  queryNode(node: BackendNode, commands: string[][]): Promise<RespValue[]> {
    return query(node.host, node.port, commands, this.opts.auth, this.opts.connectTimeoutMs, this.opts.tls);
  }

  allNodes(): IterableIterator<BackendNode> {
    return this.nodes.values();
  }

  /** First discovery: resolves true once some entry point gave a table. */
  async start(): Promise<boolean> {
    const ok = await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshIntervalMs);
    this.timer.unref?.();
    return ok;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.delayed) clearTimeout(this.delayed);
    this.timer = this.delayed = null;
  }

  /**
   * Asks for a refresh soon (after MOVED, a failed node …). Called per affected request, so it
   * must stay cheap: at most one refresh runs and at most one waits, MIN_REFRESH_GAP_MS apart.
   */
  requestRefresh(): void {
    if (this.refreshing) { this.again = true; return; }
    if (this.delayed !== null) return;
    const wait = this.lastRefresh + MIN_REFRESH_GAP_MS - performance.now();
    if (wait > 0) {
      this.delayed = setTimeout(() => { this.delayed = null; void this.refresh(); }, wait);
      return;
    }
    void this.refresh();
  }

  /** Single-flight refresh; resolves whether a table was obtained. */
  refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    this.refreshes++;
    this.refreshing = this.doRefresh().then((ok) => {
      this.lastRefreshOk = ok;
      if (!ok) this.refreshFailures++;
      return ok;
    }).finally(() => {
      this.refreshing = null;
      this.lastRefresh = performance.now();
      if (this.again) { this.again = false; this.requestRefresh(); }
    });
    return this.refreshing;
  }

  /**
   * Asks the candidates in turn; one that has not answered within HEDGE_MS gets the next one
   * asked beside it, so a frozen node costs HEDGE_MS rather than connect_timeout_ms. The first
   * usable table wins.
   */
  private doRefresh(): Promise<boolean> {
    const candidates = this.candidates();
    const errors: string[] = [];
    let next = 0, running = 0, settled = false;
    return new Promise<boolean>((resolve) => {
      const settle = (ok: boolean) => {
        settled = true;
        if (!ok) log.error("topology refresh failed on every node: {errors}", { errors: errors.join("; ") });
        resolve(ok);
      };
      const launch = (): void => {
        if (settled) return;
        if (next >= candidates.length) {
          if (running === 0) settle(false);
          return;
        }
        const { host, port } = candidates[next++];
        running++;
        let hedged = false;
        const hedge = setTimeout(() => { hedged = true; launch(); }, HEDGE_MS);
        query(host, port, [["CLUSTER", "SLOTS"]], this.opts.auth, this.opts.connectTimeoutMs, this.opts.tls)
          .then(([reply]) => {
            if (settled) return;
            if (reply instanceof RespError) throw new Error(reply.message);
            const table = this.buildTable(reply, host);
            if (table.masters.length === 0) throw new Error("CLUSTER SLOTS lists no slots");
            this.install(table);
            settle(true);
          })
          .catch((err: Error) => { errors.push(`${formatAddr(host, port)}: ${err.message}`); })
          .finally(() => {
            clearTimeout(hedge);
            running--;
            if (!hedged) launch(); // failed: the next one now (a success has settled already)
            else if (!settled && running === 0 && next >= candidates.length) settle(false);
          });
      };
      launch();
    });
  }

  /** Known masters first (they know the newest config), then replicas, then entry points. */
  private candidates(): { host: string; port: number }[] {
    const seen = new Set<string>();
    const out: { host: string; port: number }[] = [];
    const add = (host: string, port: number) => {
      const a = formatAddr(host, port);
      if (!seen.has(a)) { seen.add(a); out.push({ host, port }); }
    };
    const t = this.table;
    // Rotate so a single dead master does not delay every refresh.
    const start = t.masters.length ? Math.floor(Math.random() * t.masters.length) : 0;
    for (let i = 0; i < t.masters.length; i++) {
      const m = t.masters[(start + i) % t.masters.length];
      if (m.reachable) add(m.host, m.port);
    }
    for (const reps of t.replicas) for (const r of reps) add(r.host, r.port);
    for (const e of this.opts.entryPoints) add(e.host, e.port);
    for (const m of t.masters) add(m.host, m.port);
    return out;
  }

  /** Builds a table from a CLUSTER SLOTS reply; an empty host means the node we asked. */
  private buildTable(reply: RespValue, askedHost: string): SlotTable {
    if (!Array.isArray(reply)) throw new Error("CLUSTER SLOTS: unexpected reply");
    const owner = new Uint16Array(SLOT_COUNT).fill(NO_NODE);
    const masters: BackendNode[] = [];
    const replicas: BackendNode[][] = [];
    const index = new Map<BackendNode, number>();
    for (const range of reply) {
      if (!Array.isArray(range) || range.length < 3) throw new Error("CLUSTER SLOTS: malformed range");
      const [from, to] = range as number[];
      if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to >= SLOT_COUNT || from > to) {
        throw new Error(`CLUSTER SLOTS: bad slot range ${from}-${to}`);
      }
      const endpoint = (v: RespValue): BackendNode => {
        if (!Array.isArray(v) || typeof v[1] !== "number") throw new Error("CLUSTER SLOTS: malformed node");
        const host = typeof v[0] === "string" && v[0] !== "" && v[0] !== "?" ? v[0] : askedHost;
        return this.node(host, v[1]);
      };
      const master = endpoint(range[2]);
      let i = index.get(master);
      if (i === undefined) {
        i = masters.length;
        index.set(master, i);
        masters.push(master);
        replicas.push([]);
      }
      for (const r of range.slice(3)) {
        const rep = endpoint(r);
        if (!replicas[i].includes(rep)) replicas[i].push(rep);
      }
      owner.fill(i, from, to + 1);
    }
    return new SlotTable(masters, owner, replicas);
  }

  private install(table: SlotTable): void {
    this.table = table;
    const shape = table.describe();
    if (shape !== this.lastShape) this.changed(table, shape);
    // Every time, not only on change: a node that left while requests waited on it goes once
    // idle. One backing off stays until it may be tried again, or a redirect naming it would
    // start it over with a fresh connect each time.
    const live = new Set<BackendNode>([...table.masters, ...table.replicas.flat()]);
    for (const [addr, n] of this.nodes) {
      if (!live.has(n) && n.idle && n.reachable) {
        n.closeAll("node left the cluster table");
        this.nodes.delete(addr);
      }
    }
  }

  private changed(table: SlotTable, shape: string): void {
    const first = this.lastShape === "";
    this.lastShape = shape;
    this.changes++;
    const replicaCount = table.replicas.reduce((n, r) => n + r.length, 0);
    const props = { masters: table.masters.length, replicas: replicaCount, covered: table.coveredSlots, shape };
    if (first) log.info("topology discovered: {masters} masters, {replicas} replicas, {covered}/16384 slots: {shape}", props);
    else log.info("topology changed: {masters} masters, {replicas} replicas, {covered}/16384 slots: {shape}", props);
    // A client's later commands for a moved slot must not reach the new owner before its
    // earlier ones (Router.slotsMoved).
    const inFlight: Request[] = [];
    const unsent: Request[] = [];
    for (const n of this.nodes.values()) n.movedAway(table, inFlight, unsent);
    if (inFlight.length > 0 || unsent.length > 0) this.opts.slotsMoved(inFlight, unsent);
    this.opts.tableChanged?.();
  }
}
