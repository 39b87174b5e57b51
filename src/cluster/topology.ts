// Cluster topology: discovery from entry points, periodic and on-demand refresh, the node registry.

import { isIP } from "node:net";
import { getLogger } from "@logtape/logtape";
import { BackendNode, formatAddr } from "../backend/backend-node.ts";
import type { Request } from "../router/request.ts";
import { RespError, type RespValue } from "../resp/reply-value.ts";
import type { BackendTls } from "../tls/backend-tls.ts";
import { query, type ControlAuth } from "./control-client.ts";
import { NO_NODE, SLOT_COUNT, SlotTable } from "./slot-table.ts";
import { parseClusterNodes, slotEpochs, staleness, type NodeLine, type View } from "./table-check.ts";

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
  /** A table was installed (`changed`: its shape, or a node's availability by the cluster's verdict, differs from before; `first`: the first one). */
  installed?: (table: SlotTable, changed: boolean, first: boolean) => void;
  /** Resolves an entry point's host name at each refresh (default: the system resolver, uncached). */
  resolve?: (host: string) => Promise<string[]>;
  /** After any change of the table (shard pub/sub channels follow their slots). */
  tableChanged?: () => void;
}

/** A topology query unanswered this long gets the next candidate asked beside it. */
const HEDGE_MS = 200;

/** Soonest a MOVED-triggered refresh may follow the previous one: a redirect storm costs one query. */
const MIN_REFRESH_GAP_MS = 100;

/** While no table is known, refreshes come at least this often. */
const NO_TABLE_REFRESH_MS = 1000;

/** A failed refresh is logged at most this often. */
const FAILED_LOG_MS = 10_000;

/** A node out of the table that has been down this long is forgotten even so. */
const FORGET_DOWN_MS = 60_000;

/** Refreshes in a row that only stale views may take before the best of them is believed after all. */
const STALE_ROUNDS = 3;

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
  /** The current table with its config epochs, for judging the next view (cluster/table-check.ts). */
  private view: View = { table: SlotTable.EMPTY, slotEpochs: null, maxEpoch: -1 };
  /** Consecutive refreshes that got only stale views. */
  private staleRounds = 0;
  /**
   * Since when some slot has had no node (ms, performance.now()); 0 while every slot is served.
   * Commands for unserved slots wait for one only while this is younger than retry_timeout_ms.
   */
  incompleteSince = performance.now();
  private stopped = false;
  private lastFailureLog = -Infinity;
  /** Refreshes tried, those that got no table, and table changes seen (for metrics). */
  refreshes = 0;
  refreshFailures = 0;
  changes = 0;
  /** Whether the latest refresh obtained a table (readiness: the cluster is reachable). */
  lastRefreshOk = false;
  /** Why each node asked by the latest refresh that got no table did not give one. */
  lastErrors: string[] = [];

  constructor(private readonly opts: TopologyOptions) {}

  /** Applies reloaded settings (SIGHUP): entry points, credentials and timings take effect from the next refresh. */
  configure(changes: Pick<TopologyOptions, "entryPoints" | "auth" | "refreshIntervalMs" | "connectTimeoutMs">): void {
    const interval = changes.refreshIntervalMs !== this.opts.refreshIntervalMs;
    Object.assign(this.opts, changes);
    if (interval && this.timer !== null) this.schedule();
  }

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

  /**
   * First discovery; resolves whether some entry point gave a table. Either way refreshes go on
   * every refresh_interval_ms (every second while no table is known), so a proxy started while
   * the cluster is down serves as soon as a node answers.
   */
  async start(): Promise<boolean> {
    const ok = await this.refresh();
    this.schedule();
    return ok;
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.stopped) return;
    const every = this.table.masters.length === 0 ? Math.min(NO_TABLE_REFRESH_MS, this.opts.refreshIntervalMs) : this.opts.refreshIntervalMs;
    this.timer = setInterval(() => void this.refresh(), every);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.delayed) clearTimeout(this.delayed);
    this.timer = this.delayed = null;
  }

  /**
   * Asks for a refresh soon (after MOVED, a failed node …). Called per affected request, so it
   * must stay cheap: at most one refresh runs and at most one waits, MIN_REFRESH_GAP_MS apart.
   */
  requestRefresh(): void {
    if (this.stopped) return;
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
   * usable view wins. A stale view (table-check.ts) does not: the next candidate is asked, and
   * only when every node has given stale views for STALE_ROUNDS refreshes in a row is the
   * newest of them believed (a cluster re-created from scratch starts its epochs over).
   */
  private async doRefresh(): Promise<boolean> {
    const candidates = await this.candidates();
    const errors: string[] = [];
    let stale: View | null = null;
    let next = 0, running = 0, settled = false;
    return new Promise<boolean>((resolve) => {
      const settle = (ok: boolean) => {
        settled = true;
        this.lastErrors = ok ? [] : errors;
        if (ok) this.staleRounds = 0;
        else if (stale !== null && ++this.staleRounds >= STALE_ROUNDS) {
          log.warn("every node has given an older view of the cluster than predixy's for {rounds} refreshes; taking the newest: {errors}", {
            rounds: this.staleRounds, errors: errors.join("; "),
          });
          this.staleRounds = 0;
          this.install(stale, errors.join("; "));
          ok = true;
        } else if (!this.stopped) {
          // Once per FAILED_LOG_MS while it goes on: during an outage refreshes come every 250 ms.
          const now = performance.now();
          if (now - this.lastFailureLog >= FAILED_LOG_MS) {
            this.lastFailureLog = now;
            log.error("topology refresh failed on every node: {errors}", { errors: errors.join("; ") });
          }
        }
        if (this.table.masters.length === 0 && !this.stopped) this.incompleteSince ||= performance.now();
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
        query(host, port, [["CLUSTER", "SLOTS"], ["CLUSTER", "NODES"]], this.opts.auth, this.opts.connectTimeoutMs, this.opts.tls)
          .then(([slots, nodes]) => {
            if (settled) return;
            if (slots instanceof RespError) throw new Error(slots.message);
            const view = this.buildView(slots, nodes, host);
            if (view.table.masters.length === 0) throw new Error("CLUSTER SLOTS lists no slots");
            const why = staleness(this.view, view);
            if (why !== null) {
              if (stale === null || view.maxEpoch > stale.maxEpoch) stale = view;
              throw new Error(`stale view: ${why}`);
            }
            this.install(view, null);
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

  /**
   * Known masters first (they know the newest config), then replicas, then entry points (host
   * names resolved afresh each time: a Kubernetes pod's address changes when it is replaced).
   */
  private async candidates(): Promise<{ host: string; port: number }[]> {
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
      if (m.available) add(m.host, m.port);
    }
    for (const reps of t.replicas) for (const r of reps) add(r.host, r.port);
    const resolved = await Promise.all(this.opts.entryPoints.map((e) => this.resolveEntry(e.host)));
    this.opts.entryPoints.forEach((e, i) => { for (const host of resolved[i]) add(host, e.port); });
    for (const m of t.masters) add(m.host, m.port);
    return out;
  }

  /** An entry point's addresses: itself if an IP; else what the resolver says now (itself if it fails). */
  private async resolveEntry(host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    try {
      const addrs = await (this.opts.resolve ?? resolveUncached)(host);
      return addrs.length > 0 ? addrs : [host];
    } catch {
      return [host];
    }
  }

  /** A view from CLUSTER SLOTS (the table) and CLUSTER NODES (epochs, `fail` flags), if the node answered it. */
  private buildView(slots: RespValue, nodes: RespValue | undefined, askedHost: string): View & { lines: Map<string, NodeLine> | null; ids: string[] } {
    const ids: string[] = [];
    const table = this.buildTable(slots, askedHost, ids);
    const lines = typeof nodes === "string" ? parseClusterNodes(nodes) : null;
    let maxEpoch = -1;
    if (lines !== null) for (const l of lines.values()) maxEpoch = Math.max(maxEpoch, l.configEpoch);
    return { table, slotEpochs: lines !== null ? slotEpochs(table, ids, lines) : null, maxEpoch, lines, ids };
  }

  /**
   * Builds a table from a CLUSTER SLOTS reply; an empty host means the node we asked.
   * `masterIds` receives each master's node id, in table order ("" if not given).
   */
  private buildTable(reply: RespValue, askedHost: string, masterIds: string[]): SlotTable {
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
        const id = (range[2] as RespValue[])[2];
        masterIds.push(typeof id === "string" ? id : "");
      }
      for (let s = from; s <= to; s++) {
        if (owner[s] !== NO_NODE && owner[s] !== i) throw new Error(`CLUSTER SLOTS: slot ${s} given to two masters`);
      }
      for (const r of range.slice(3)) {
        const rep = endpoint(r);
        if (!replicas[i].includes(rep)) replicas[i].push(rep);
      }
      owner.fill(i, from, to + 1);
    }
    return new SlotTable(masters, owner, replicas);
  }

  private install(view: View & { lines?: Map<string, NodeLine> | null; ids?: string[] }, staleWhy: string | null): void {
    const table = view.table;
    const first = this.view.table.masters.length === 0 && this.lastShape === "";
    this.table = table;
    this.view = { table, slotEpochs: view.slotEpochs, maxEpoch: view.maxEpoch };
    for (let s = SLOT_COUNT - 1; s >= 0; s--) {
      const i = table.owner[s];
      if (i !== NO_NODE) table.masters[i].firstSlot = s;
    }
    if (staleWhy !== null) log.info("view taken after all: {why}", { why: staleWhy });
    const covered = table.coveredSlots;
    if (covered === SLOT_COUNT) this.incompleteSince = 0;
    else this.incompleteSince ||= performance.now();
    // The cluster's own verdicts: a master it has failed waits for its replacement, not for a connect.
    const live = new Set<BackendNode>([...table.masters, ...table.replicas.flat()]);
    let verdicts = false;
    if (view.lines) {
      const failed = new Set<string>();
      for (const l of view.lines.values()) if (l.failed) failed.add(l.addr);
      for (const n of live) {
        if (n.noteClusterFailed(failed.has(n.addr))) {
          verdicts = true;
          if (n.clusterFailed) log.warn("the cluster marks {addr} as failed", { addr: n.addr });
        }
      }
    }
    const shape = table.describe();
    const changed = shape !== this.lastShape;
    if (changed) this.changed(table, shape);
    // Every time, not only on change: a node that left while requests waited on it goes once
    // idle. One that is down stays a while (its connect backoff with it), or a redirect naming
    // it would start it over with a fresh connect each time.
    const now = performance.now();
    for (const [addr, n] of this.nodes) {
      if (!live.has(n) && n.idle && (n.available || now - n.unavailableSince > FORGET_DOWN_MS)) {
        n.closeAll("node left the cluster table");
        this.nodes.delete(addr);
        if (!first) log.info("forgot {addr}: it is no longer in the cluster", { addr });
      }
    }
    if (first) this.schedule();
    this.opts.installed?.(table, changed || verdicts, first);
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
    const silent: BackendNode[] = [];
    for (const n of this.nodes.values()) {
      const before = inFlight.length;
      n.movedAway(table, inFlight, unsent);
      if (inFlight.length > before && !n.available) silent.push(n);
    }
    if (inFlight.length > 0 || unsent.length > 0) this.opts.slotsMoved(inFlight, unsent);
    // A node that stopped answering and lost its slots (a frozen master failed over) will not
    // answer in time: its reads go to the new owner now, and its writes get their "may or may
    // not have run" error now, instead of at command_timeout_ms.
    for (const n of silent) n.closeBusy("its slots moved to another node while it was not answering");
    this.opts.tableChanged?.();
  }
}

/** The system resolver, asked afresh (Bun.connect caches answers for up to 30 s). */
async function resolveUncached(host: string): Promise<string[]> {
  const found = await Bun.dns.lookup(host, {});
  return [...new Set(found.map((a) => a.address))];
}
