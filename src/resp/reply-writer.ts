// Replies predixy makes itself, encoded in the protocol its client chose (RESP2 or RESP3).

/**
 * The shapes a made-up reply can take. A JS string is a bulk string, a number an integer, null
 * the null reply, an array an array; the classes cover what RESP3 tells apart from RESP2.
 */
export type ReplyValue = string | number | null | Uint8Array | ReplyValue[] | Simple | ReplyMap | Verbatim | Double;

/** `+text` in both protocols. */
export class Simple {
  constructor(readonly text: string) {}
}

/** A map (`%` in RESP3), a flat key/value array in RESP2. Keys are bulk strings, or integers (LATENCY HISTOGRAM's bounds). */
export class ReplyMap {
  constructor(readonly entries: [string | number, ReplyValue][]) {}
}

/** Text meant for people (INFO, CLIENT INFO): a verbatim string in RESP3, a bulk string in RESP2. */
export class Verbatim {
  constructor(readonly text: string) {}
}

/** A double (`,` in RESP3); in RESP2 a bulk string printed as C's %.17g, as Redis prints it. */
export class Double {
  constructor(readonly value: number) {}
}

/** A client's protocol version. */
export type Proto = 2 | 3;

const enc = new TextEncoder();

/** Encodes `v` for a client speaking `proto`. Control path only: builds strings. */
export function encodeReply(v: ReplyValue, proto: Proto): Uint8Array {
  const parts: (string | Uint8Array)[] = [];
  write(v, proto, parts);
  let size = 0;
  const bytes = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  for (const b of bytes) size += b.length;
  const out = new Uint8Array(size);
  let o = 0;
  for (const b of bytes) { out.set(b, o); o += b.length; }
  return out;
}

function write(v: ReplyValue, proto: Proto, out: (string | Uint8Array)[]): void {
  if (v === null) {
    out.push(proto === 3 ? "_\r\n" : "$-1\r\n");
  } else if (typeof v === "string") {
    out.push(`$${enc.encode(v).length}\r\n${v}\r\n`);
  } else if (typeof v === "number") {
    out.push(`:${v}\r\n`);
  } else if (v instanceof Uint8Array) {
    out.push(`$${v.length}\r\n`, v, "\r\n");
  } else if (Array.isArray(v)) {
    out.push(`*${v.length}\r\n`);
    for (const x of v) write(x, proto, out);
  } else if (v instanceof Simple) {
    out.push(`+${v.text}\r\n`);
  } else if (v instanceof Double) {
    const p = v.value.toPrecision(17);
    const g = p.includes("e") || !p.includes(".") ? p : p.replace(/\.?0+$/, "");
    out.push(proto === 3 ? `,${g}\r\n` : `$${g.length}\r\n${g}\r\n`);
  } else if (v instanceof Verbatim) {
    if (proto === 3) out.push(`=${enc.encode(v.text).length + 4}\r\ntxt:${v.text}\r\n`);
    else out.push(`$${enc.encode(v.text).length}\r\n${v.text}\r\n`);
  } else {
    out.push(proto === 3 ? `%${v.entries.length}\r\n` : `*${v.entries.length * 2}\r\n`);
    for (const [k, x] of v.entries) {
      write(k, proto, out);
      write(x, proto, out);
    }
  }
}
