// Sanity checks on a node's view of the cluster before it replaces ours: config epochs and coverage.

import { SLOT_COUNT, type SlotTable } from "./slot-table.ts";

/** One line of CLUSTER NODES, the parts the proxy uses. */
export interface NodeLine {
  id: string;
  /** "host:port" as the node is known (the bus port and hostname stripped). */
  addr: string;
  master: boolean;
  /** Flagged `fail` (not `fail?`): the cluster itself has given up on it. */
  failed: boolean;
  configEpoch: number;
}

/** CLUSTER NODES text → its lines by node id. Malformed lines are skipped. */
export function parseClusterNodes(text: string): Map<string, NodeLine> {
  const out = new Map<string, NodeLine>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(" ");
    if (f.length < 8) continue;
    const flags = f[2].split(",");
    const epoch = Number(f[6]);
    if (!Number.isSafeInteger(epoch)) continue;
    out.set(f[0], {
      id: f[0],
      addr: f[1].split(",")[0].split("@")[0],
      master: flags.includes("master"),
      failed: flags.includes("fail"),
      configEpoch: epoch,
    });
  }
  return out;
}

/**
 * A slot table together with what is known of its config epochs. `slotEpochs[s]` is the
 * config epoch of the master the view gives slot `s` to (-1: unserved); null when the node
 * would not say (no CLUSTER NODES: an old or restricted node), in which case epochs are not
 * checked.
 */
export interface View {
  table: SlotTable;
  slotEpochs: Float64Array | null;
  /** The highest config epoch the view knows: how far the answering node has followed the cluster. */
  maxEpoch: number;
}

/**
 * Why `next` must not replace `current`, or null if it may. A node in a minority partition
 * (or one that has just joined, or restarted with an old config) answers with an older view:
 * a master the cluster has since failed over, slots it does not know. Its view is older than
 * ours when it has seen a lower config epoch than we have, when it gives a slot to another
 * node under a lower config epoch than the one its current owner claimed it with (the rule
 * Redis itself settles slot claims by), or when it serves fewer slots without a newer epoch.
 */
export function staleness(current: View, next: View): string | null {
  if (current.table.masters.length === 0) return null;
  const covered = next.table.coveredSlots, had = current.table.coveredSlots;
  if (current.slotEpochs === null || next.slotEpochs === null) {
    return covered === 0 ? "it serves no slots" : null;
  }
  if (next.maxEpoch < current.maxEpoch) {
    return `its newest config epoch is ${next.maxEpoch}, older than the ${current.maxEpoch} already seen`;
  }
  const cur = current.slotEpochs, nxt = next.slotEpochs;
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (cur[s] < 0 || nxt[s] < 0 || nxt[s] >= cur[s]) continue;
    const was = current.table.nodeFor(s), now = next.table.nodeFor(s);
    if (was !== now) {
      return `it gives slot ${s} to ${now!.addr} (config epoch ${nxt[s]}), which ${was!.addr} holds with epoch ${cur[s]}`;
    }
  }
  if (covered < had && next.maxEpoch === current.maxEpoch) {
    return `it serves ${covered} slots, fewer than the ${had} served now, with no newer config epoch`;
  }
  return null;
}

/** Per-slot epochs for `table`, whose masters carry the given node ids (null if any is unknown). */
export function slotEpochs(table: SlotTable, masterIds: readonly string[], lines: Map<string, NodeLine>): Float64Array | null {
  const byMaster = masterIds.map((id) => lines.get(id)?.configEpoch ?? -1);
  if (byMaster.some((e) => e < 0)) return null;
  const out = new Float64Array(SLOT_COUNT).fill(-1);
  for (let s = 0; s < SLOT_COUNT; s++) {
    const i = table.owner[s];
    if (i !== 0xffff) out[s] = byMaster[i];
  }
  return out;
}
