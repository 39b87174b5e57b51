// read_from: which node serves a read-only command — its slot's master, or a replica of it that is up and in sync.

import type { BackendNode } from "../backend/backend-node.ts";
import { NO_NODE, type SlotTable } from "../cluster/slot-table.ts";
import type { ReadFrom } from "../config/config.ts";
import { internalRequest, Kind } from "./request.ts";

const INFO_REQUEST = internalRequest(Kind.INFO, new TextEncoder().encode("*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"));
const decoder = new TextDecoder();

/** What a node last said in INFO replication. */
interface ReplicationState {
  master: boolean;
  /** master_repl_offset on a master; slave_repl_offset on a replica. */
  offset: number;
  /** A replica's master_link_status is up (a master: always true). */
  linkUp: boolean;
  /** When it was read (performance.now()). */
  at: number;
}

/**
 * Which nodes serve each shard's reads, rebuilt when the table or what the nodes report
 * changes, so that picking one is two array reads. A replica serves reads when it is
 * available (connectable, answering, not failed), reports itself a replica with its link to
 * the master up, and is within `max_replica_lag` bytes of the master's replication offset;
 * both are read with INFO replication every health-check interval. Its connections send
 * READONLY first. A client sticks to one replica of a shard (by its id), so its successive
 * reads do not go back in time by moving between replicas.
 */
export class ReplicaReads {
  /** read_from is not "master": read-only commands are routed by pick(). Read per command. */
  enabled = false;
  private mode: ReadFrom = "master";
  private maxLag = 0;
  private builtFor: SlotTable | null = null;
  private dirty = true;
  /** Per master index of `builtFor`: the nodes serving its reads; empty: the master alone. */
  private targets: BackendNode[][] = [];
  private readonly states = new Map<BackendNode, ReplicationState>();
  /** Samples older than this say nothing (ms). */
  private freshMs = 3000;

  configure(mode: ReadFrom, maxLag: number, pollMs: number): void {
    this.mode = mode;
    this.maxLag = maxLag;
    this.freshMs = Math.max(3000, 3 * pollMs);
    this.enabled = mode !== "master";
    this.dirty = true;
    // Switching to "master" must also take READONLY off the replicas' connections now.
    if (this.builtFor !== null) this.rebuild(this.builtFor);
  }

  /** The node for a read-only command on `slot` (null: the slot is not served). */
  pick(table: SlotTable, slot: number, affinity: number): BackendNode | null {
    if (this.dirty || table !== this.builtFor) this.rebuild(table);
    const i = table.owner[slot];
    if (i === NO_NODE) return null;
    const t = this.targets[i];
    if (t.length === 0) return table.masters[i];
    const n = t[affinity % t.length];
    if (n.available) return n;
    // Availability changes between rebuilds (a replica stops answering): another serves meanwhile.
    for (const x of t) if (x.available) return x;
    return table.masters[i];
  }

  /** Asks every master and replica of `table` for INFO replication (on their shared connections). */
  poll(table: SlotTable): void {
    if (!this.enabled) return;
    if (this.dirty || table !== this.builtFor) this.rebuild(table);
    for (let i = 0; i < table.masters.length; i++) {
      for (const n of [table.masters[i], ...table.replicas[i]]) if (n.available) n.sendInternal(INFO_REQUEST);
    }
  }

  /** INFO replication from `node`: `buf[start, end)` is the reply. */
  onInfo(node: BackendNode, buf: Uint8Array, start: number, end: number): void {
    if (buf[start] !== 36) return; // an error reply: nothing learnt
    const text = decoder.decode(buf.subarray(start, end));
    const field = (name: string) => new RegExp(`^${name}:(\\S+)`, "m").exec(text)?.[1];
    const master = field("role") === "master";
    const offset = Number(field(master ? "master_repl_offset" : "slave_repl_offset") ?? NaN);
    const linkUp = master || field("master_link_status") === "up";
    const before = this.states.get(node);
    this.states.set(node, { master, offset: Number.isFinite(offset) ? offset : -1, linkUp, at: performance.now() });
    if (before === undefined || before.master !== master || before.linkUp !== linkUp || this.maxLag > 0) this.dirty = true;
  }

  /** Forgets what nodes that left the table reported. */
  forget(live: Set<BackendNode>): void {
    for (const n of this.states.keys()) if (!live.has(n)) this.states.delete(n);
  }

  private rebuild(table: SlotTable): void {
    this.builtFor = table;
    this.dirty = false;
    const now = performance.now();
    this.targets = table.masters.map((m, i) => {
      const reps = table.replicas[i];
      m.setReadonly(false);
      for (const r of reps) r.setReadonly(this.enabled);
      if (!this.enabled) return [];
      const inSync = reps.filter((r) => this.inSync(r, m, now));
      switch (this.mode) {
        case "prefer-replica":
          return inSync;
        case "replica":
          // The master is spared while any replica answers at all; a lagging one beats none.
          return inSync.length > 0 ? inSync : reps.filter((r) => r.available && this.states.get(r)?.master === false);
        default: // any
          return inSync.length > 0 ? [m, ...inSync] : [];
      }
    });
  }

  /** Whether replica `r` of `m` may serve reads: available, a replica linked to its master, not lagging. */
  private inSync(r: BackendNode, m: BackendNode, now: number): boolean {
    const s = this.states.get(r);
    if (!r.available || s === undefined || now - s.at > this.freshMs || s.master || !s.linkUp) return false;
    if (this.maxLag === 0) return true;
    const ms = this.states.get(m);
    // No fresh word from the master (it may be down): the link being up is all there is to go by.
    if (ms === undefined || now - ms.at > this.freshMs || !ms.master || ms.offset < 0 || s.offset < 0) return true;
    return ms.offset - s.offset <= this.maxLag;
  }

  /** For INFO: how many replicas serve reads now. */
  get servingReplicas(): number {
    let n = 0;
    for (const t of this.targets) for (const x of t) if (x.readonly) n++;
    return n;
  }
}
