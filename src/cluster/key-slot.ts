// Key → hash slot: CRC16-XMODEM of the key, or of its {hash tag}, mod 16384 — over bytes in place.

/**
 * Not cluster-key-slot: it needs a whole buffer (a view per request showed up in profiles), and
 * it mis-hashes keys whose first tag is empty but that contain a later '}' ("{}}" → 0; Redis
 * hashes the whole key). The tests hold this to Redis' keyHashSlot and to CLUSTER KEYSLOT.
 */
const TABLE = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
  TABLE[i] = c & 0xffff;
}

function crc16(crc: number, buf: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ buf[i]) & 0xff];
  return crc;
}

/** The slot of the key `buf[start, end)`: only the part inside the first non-empty {…} counts. */
export function slotOf(buf: Uint8Array, start: number, end: number): number {
  // One pass for the common untagged key: hash while looking for '{'.
  let crc = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 0x7b) return taggedSlot(buf, end, i, crc);
    crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff];
  }
  return crc & 0x3fff;
}

/** A '{' at `open`: hash the tag if it closes and is non-empty, else go on hashing the whole key. */
function taggedSlot(buf: Uint8Array, end: number, open: number, crcBefore: number): number {
  for (let j = open + 1; j < end; j++) {
    if (buf[j] === 0x7d) {
      if (j > open + 1) return crc16(0, buf, open + 1, j) & 0x3fff;
      break;
    }
  }
  return crc16(crcBefore, buf, open, end) & 0x3fff;
}
