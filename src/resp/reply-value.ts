// Control-path decoding of a whole reply into JS values (topology, health checks), and command encoding.

export type RespValue = string | number | bigint | boolean | null | RespError | RespValue[];

/** An error reply (`-ERR …`), kept as a value rather than thrown. */
export class RespError {
  constructor(readonly message: string) {}
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Decodes the complete reply at `at` (the caller has framed it with scanReply).
 * Returns the value and the offset after it. Bulk strings become JS strings (control path only):
 * UTF-8, or with `latin1` one char per byte, for names that may be binary.
 */
export function decodeReply(buf: Uint8Array, at: number, latin1 = false): { value: RespValue; next: number } {
  const lineEnd = buf.indexOf(13, at);
  const line = decoder.decode(buf.subarray(at + 1, lineEnd));
  let next = lineEnd + 2;
  switch (buf[at]) {
    case 43: return { value: line, next };                       // +
    case 45: return { value: new RespError(line), next };        // -
    case 58: return { value: Number(line), next };               // :
    case 40: return { value: BigInt(line), next };               // (
    case 44: return { value: Number(line.replace("inf", "Infinity")), next }; // ,
    case 35: return { value: line === "t", next };               // #
    case 95: return { value: null, next };                       // _
    case 36: case 33: case 61: {                                 // $ ! =
      const n = Number(line);
      if (n < 0) return { value: null, next };
      const bytes = buf.subarray(next, next + n);
      const body = latin1 ? Buffer.from(bytes.buffer, bytes.byteOffset, n).toString("latin1") : decoder.decode(bytes);
      return { value: buf[at] === 33 ? new RespError(body) : body, next: next + n + 2 };
    }
    case 42: case 126: case 62: case 37: { // * ~ > %
      const n = Number(line);
      if (n < 0) return { value: null, next };
      const count = buf[at] === 37 ? 2 * n : n;
      const items: RespValue[] = [];
      for (let i = 0; i < count; i++) {
        const r = decodeReply(buf, next, latin1);
        items.push(r.value);
        next = r.next;
      }
      return { value: items, next };
    }
    case 124: { // | attribute: skip it, return the value it decorates
      const n = Number(line);
      for (let i = 0; i < 2 * n; i++) next = decodeReply(buf, next).next;
      return decodeReply(buf, next, latin1);
    }
    default:
      throw new Error(`unknown RESP type byte ${buf[at]}`);
  }
}

/** Encodes a command as a RESP multibulk. */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Uint8Array {
  const parts = args.map((a) => (typeof a === "string" ? encoder.encode(a) : a));
  let size = 0;
  const heads = parts.map((p) => encoder.encode(`$${p.length}\r\n`));
  const top = encoder.encode(`*${parts.length}\r\n`);
  size += top.length;
  for (let i = 0; i < parts.length; i++) size += heads[i].length + parts[i].length + 2;
  const out = new Uint8Array(size);
  let o = 0;
  out.set(top, o); o += top.length;
  for (let i = 0; i < parts.length; i++) {
    out.set(heads[i], o); o += heads[i].length;
    out.set(parts[i], o); o += parts[i].length;
    out[o++] = 13; out[o++] = 10;
  }
  return out;
}

