// The slot → node map: dense, built whole from one CLUSTER SLOTS answer, never edited in place.

import type { BackendNode } from "../backend/backend-node.ts";

export const SLOT_COUNT = 16384;
export const NO_NODE = 0xffff;

/** An immutable snapshot. Topology swaps in a new one with one assignment on refresh. */
export class SlotTable {
  constructor(
    /** Masters, indexed by the values in `owner`. */
    readonly masters: readonly BackendNode[],
    /** slot → index into masters, or NO_NODE. */
    readonly owner: Uint16Array,
    /** masters[i]'s replicas. */
    readonly replicas: readonly (readonly BackendNode[])[],
  ) {}

  static readonly EMPTY = new SlotTable([], new Uint16Array(SLOT_COUNT).fill(NO_NODE), []);

  /** The master serving `slot`, or null when the slot is not served. */
  nodeFor(slot: number): BackendNode | null {
    const i = this.owner[slot];
    return i === NO_NODE ? null : this.masters[i];
  }

  get coveredSlots(): number {
    let n = 0;
    for (let s = 0; s < SLOT_COUNT; s++) if (this.owner[s] !== NO_NODE) n++;
    return n;
  }

  /** A stable text form for change detection and logs: "0-5460 a:1 | 5461-10922 b:2". */
  describe(): string {
    const parts: string[] = [];
    let start = 0;
    for (let s = 1; s <= SLOT_COUNT; s++) {
      if (s === SLOT_COUNT || this.owner[s] !== this.owner[start]) {
        const i = this.owner[start];
        if (i !== NO_NODE) {
          const reps = this.replicas[i].map((r) => r.addr).join(",");
          parts.push(`${start}-${s - 1} ${this.masters[i].addr}${reps ? ` (${reps})` : ""}`);
        }
        start = s;
      }
    }
    return parts.join(" | ");
  }
}
