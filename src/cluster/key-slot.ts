// Key → hash slot (CRC16 of the key or its {hash tag}, mod 16384), over bytes in place.

import calculateSlot from "cluster-key-slot";

/** The slot of the key `buf[start, end)`. */
export function slotOf(buf: Uint8Array, start: number, end: number): number {
  // cluster-key-slot indexes bytes when given a buffer (its typing says Buffer).
  return calculateSlot(buf.subarray(start, end) as Buffer);
}
