// SCAN over the whole cluster: one master at a time, the cursor saying which one and where in it.

import type { BackendNode } from "../backend/backend-node.ts";
import { NO_NODE, SLOT_COUNT, type SlotTable } from "../cluster/slot-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { Gather, isError, partFailure } from "./gather.ts";
import { headerSize, writeHeader } from "./multi-key.ts";
import type { Request } from "./request.ts";

/**
 * The client's cursor is `nodeCursor << MASTER_BITS | master`: the low bits index the masters
 * in the order of the first slot each serves (an order a failover keeps, since the new master
 * serves the same slots), the rest is that master's own SCAN cursor. A master's cursor of 0
 * moves on to the next master; after the last, the cursor is 0.
 */
const MASTER_BITS = 10n;
const MASTER_MASK = (1n << MASTER_BITS) - 1n;
const MAX_CURSOR = (1n << 64n) - 1n;

const orders = new WeakMap<SlotTable, BackendNode[]>();

/** The masters of `table` in the order of the lowest slot each serves. */
export function scanOrder(table: SlotTable): BackendNode[] {
  let order = orders.get(table);
  if (order === undefined) {
    order = [];
    const seen = new Set<number>();
    for (let s = 0; s < SLOT_COUNT; s++) {
      const i = table.owner[s];
      if (i !== NO_NODE && !seen.has(i)) {
        seen.add(i);
        order.push(table.masters[i]);
      }
    }
    orders.set(table, order);
  }
  return order;
}

const EMPTY_SCAN = new TextEncoder().encode("*2\r\n$1\r\n0\r\n*0\r\n");
export const ERR_INVALID_CURSOR = R.errorReply("ERR invalid cursor");

/**
 * Starts `parent` (SCAN cursor [MATCH p] [COUNT n] [TYPE t], framed in `f`) on the master its
 * cursor names, or answers it at once: an invalid cursor, or one past the last master (the
 * cluster shrank mid-scan), which ends the scan.
 */
export function startScan(parent: Request, f: Frame, table: SlotTable): ScanGather | Uint8Array {
  const cursor = parseCursor(f.arg(1));
  if (cursor < 0n) return ERR_INVALID_CURSOR;
  const order = scanOrder(table);
  const index = Number(cursor & MASTER_MASK);
  if (index >= order.length) return EMPTY_SCAN;
  const nodeCursor = new TextEncoder().encode(String(cursor >> MASTER_BITS));
  // SCAN <node cursor> and the client's options as they came.
  let size = headerSize(f.argc) + 10 + headerSize(nodeCursor.length) + nodeCursor.length + 2;
  for (let i = 2; i < f.argc; i++) size += headerSize(f.argEnd[i] - f.argStart[i]) + f.argEnd[i] - f.argStart[i] + 2;
  const buf = new Uint8Array(size);
  let o = writeHeader(buf, 0, 42, f.argc);
  buf.set(SCAN_NAME, o);
  o += SCAN_NAME.length;
  const put = (bytes: Uint8Array) => {
    o = writeHeader(buf, o, 36, bytes.length);
    buf.set(bytes, o);
    o += bytes.length;
    buf[o++] = 13;
    buf[o++] = 10;
  };
  put(nodeCursor);
  for (let i = 2; i < f.argc; i++) put(f.arg(i));
  return new ScanGather(parent, buf, order[index], index, order.length);
}

const SCAN_NAME = new TextEncoder().encode("$4\r\nSCAN\r\n");

/** Redis' cursor syntax: an unsigned 64-bit decimal. -1 if it is not one. */
function parseCursor(b: Uint8Array): bigint {
  if (b.length === 0 || b.length > 20) return -1n;
  for (const c of b) if (c < 48 || c > 57) return -1n;
  const v = BigInt(new TextDecoder().decode(b));
  return v > MAX_CURSOR ? -1n : v;
}

export class ScanGather extends Gather {
  constructor(parent: Request, bytes: Uint8Array, node: BackendNode, private readonly index: number, private readonly masters: number) {
    super(parent);
    this.addPart(bytes, 0, bytes.length, -1, node);
  }

  /** The node's [cursor, keys] with the cursor made the cluster's. */
  merge(): Uint8Array {
    const r = this.parts[0], b = r.reply;
    if (isError(r)) return partFailure(this, r, this.parent.spec!);
    // *2\r\n$<n>\r\n<cursor>\r\n<keys array>
    const head = b.indexOf(10, r.replyStart) + 1;
    if (b[r.replyStart] !== 42 || b[head] !== 36) return partFailure(this, r, this.parent.spec!);
    const lenEnd = b.indexOf(10, head) + 1;
    const curEnd = b.indexOf(13, lenEnd);
    const nodeNext = BigInt(new TextDecoder().decode(b.subarray(lenEnd, curEnd)));
    let next: bigint;
    if (nodeNext !== 0n) next = (nodeNext << MASTER_BITS) | BigInt(this.index);
    else next = this.index + 1 < this.masters ? BigInt(this.index + 1) : 0n;
    if (next > MAX_CURSOR) return R.errorReply("ERR the node's SCAN cursor is too large for the proxy to encode");
    const cursor = new TextEncoder().encode(String(next));
    const keys = b.subarray(curEnd + 2, r.replyEnd);
    const out = new Uint8Array(4 + headerSize(cursor.length) + cursor.length + 2 + keys.length);
    out.set(SCAN_HEAD, 0);
    let o = writeHeader(out, 4, 36, cursor.length);
    out.set(cursor, o);
    o += cursor.length;
    out[o++] = 13;
    out[o++] = 10;
    out.set(keys, o);
    return out;
  }
}

const SCAN_HEAD = new TextEncoder().encode("*2\r\n");
