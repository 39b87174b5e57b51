// Cluster-wide commands: the same command to every master, the replies merged into one Redis' answer.

import type { BackendNode } from "../backend/backend-node.ts";
import { Merge, type CommandSpec } from "../commands/command-table.ts";
import { ReplyScan, scanReply } from "../resp/reply-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeReply, Verbatim } from "../resp/reply-writer.ts";
import { Gather, isError, partFailure, replyInteger } from "./gather.ts";
import { headerSize, writeHeader } from "./multi-key.ts";
import type { Request } from "./request.ts";

const scan = new ReplyScan();
const enc = new TextEncoder();

/** Sends the parent's own bytes to each of `masters`; merge() answers as one Redis would. */
export class FanOutGather extends Gather {
  constructor(parent: Request, private readonly spec: CommandSpec, masters: readonly BackendNode[]) {
    super(parent);
    for (const m of masters) this.addPart(parent.src, parent.start, parent.end, -1, m);
  }

  merge(): Uint8Array {
    const parts = this.parts, spec = this.spec;
    for (const r of parts) if (isError(r)) return partFailure(this, r, spec);
    switch (spec.merge) {
      case Merge.SUM:
      case Merge.MIN: {
        let acc = spec.merge === Merge.SUM ? 0 : Infinity;
        for (const r of parts) {
          const n = replyInteger(r);
          if (Number.isNaN(n)) return partFailure(this, r, spec);
          acc = spec.merge === Merge.SUM ? acc + n : Math.min(acc, n);
        }
        return R.intReply(acc);
      }
      case Merge.CONCAT:
        return concatArrays(this);
      case Merge.AND:
        return andArrays(this);
      case Merge.RANDOM: {
        const found = parts.filter((r) => !isNil(r));
        const pick = found.length > 0 ? found[Math.floor(Math.random() * found.length)] : parts[0];
        return copyReply(pick);
      }
      case Merge.ALL_OK:
        for (const r of parts) if (r.reply[r.replyStart] !== 43) return partFailure(this, r, spec);
        return copyReply(parts[0]);
      default: { // SAME
        const first = parts[0];
        for (const r of parts) if (!sameBytes(first, r)) return differ(spec, parts);
        return copyReply(first);
      }
    }
  }
}

/**
 * INFO: the proxy's own sections, then the keyspace of the whole cluster: the masters' `db0`
 * lines summed (avg_ttl weighted by keys with an expiry), as one Redis would report its keys.
 * Never an error: clients send INFO as a readiness check on connect (ioredis), which must not
 * fail because one master is down; masters that did not answer are counted in the section.
 */
export class InfoGather extends Gather {
  constructor(parent: Request, private readonly own: string, masters: readonly BackendNode[]) {
    super(parent);
    const bytes = INFO_KEYSPACE;
    for (const m of masters) this.addPart(bytes, 0, bytes.length, -1, m);
  }

  merge(): Uint8Array {
    const dbs = new Map<string, { keys: number; expires: number; ttl: number; rest: Map<string, number> }>();
    let missing = 0;
    for (const r of this.parts) {
      // A bulk string, or a verbatim one from a RESP3 connection.
      if (r.reply[r.replyStart] !== 36 && r.reply[r.replyStart] !== 61) {
        missing++;
        continue;
      }
      const text = new TextDecoder().decode(r.reply.subarray(r.replyStart, r.replyEnd));
      for (const m of text.matchAll(/^(db\d+):(.*)$/gm)) {
        const db = dbs.get(m[1]) ?? { keys: 0, expires: 0, ttl: 0, rest: new Map() };
        dbs.set(m[1], db);
        const fields = new Map(m[2].trim().split(",").map((kv) => kv.split("=") as [string, string]));
        const keys = Number(fields.get("keys")), expires = Number(fields.get("expires")), ttl = Number(fields.get("avg_ttl"));
        db.keys += keys || 0;
        db.expires += expires || 0;
        db.ttl += (ttl || 0) * (expires || 0);
        for (const [k, v] of fields) if (k !== "keys" && k !== "expires" && k !== "avg_ttl") db.rest.set(k, (db.rest.get(k) ?? 0) + (Number(v) || 0));
      }
    }
    let section = "# Keyspace\r\n";
    for (const [name, db] of [...dbs].sort()) {
      const ttl = db.expires > 0 ? Math.round(db.ttl / db.expires) : 0;
      const rest = [...db.rest].map(([k, v]) => `,${k}=${v}`).join("");
      section += `${name}:keys=${db.keys},expires=${db.expires},avg_ttl=${ttl}${rest}\r\n`;
    }
    if (missing > 0) section += `unanswered_masters:${missing}\r\n`;
    return encodeReply(new Verbatim(this.own ? `${this.own}\r\n${section}` : section), this.parent.proto === 3 ? 3 : 2);
  }
}

const INFO_KEYSPACE = enc.encode("*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n");

function isNil(r: Request): boolean {
  const b = r.reply, s = r.replyStart;
  return b[s] === 95 || (b[s] === 36 && b[s + 1] === 45) || (b[s] === 42 && b[s + 1] === 45);
}

function copyReply(r: Request): Uint8Array {
  return r.reply.slice(r.replyStart, r.replyEnd);
}

function sameBytes(a: Request, b: Request): boolean {
  const n = a.replyEnd - a.replyStart;
  if (b.replyEnd - b.replyStart !== n) return false;
  for (let i = 0; i < n; i++) if (a.reply[a.replyStart + i] !== b.reply[b.replyStart + i]) return false;
  return true;
}

function differ(spec: CommandSpec, parts: readonly Request[]): Uint8Array {
  const seen = parts.map((r) => `${r.target?.addr}: ${new TextDecoder().decode(r.reply.subarray(r.replyStart, Math.min(r.replyEnd, r.replyStart + 60))).trim()}`);
  return R.errorReply(`ERR the masters answered ${spec.name.replace("|", " ").toUpperCase()} differently: ${seen.join("; ")}`);
}

/** The array header's count and where its elements start, or null if the reply is not an array. */
function arrayBody(r: Request): { count: number; body: number } | null {
  if (r.reply[r.replyStart] !== 42 && r.reply[r.replyStart] !== 126) return null;
  const lf = r.reply.indexOf(10, r.replyStart);
  const count = Number(new TextDecoder().decode(r.reply.subarray(r.replyStart + 1, lf - 1)));
  return Number.isInteger(count) && count >= 0 ? { count, body: lf + 1 } : null;
}

/** KEYS: every master's array, one after the other. */
function concatArrays(g: Gather): Uint8Array {
  let count = 0, bytes = 0;
  const bodies: number[] = [];
  for (const r of g.parts) {
    const a = arrayBody(r);
    if (a === null) return partFailure(g, r, r.spec!);
    count += a.count;
    bytes += r.replyEnd - a.body;
    bodies.push(a.body);
  }
  const out = new Uint8Array(headerSize(count) + bytes);
  let o = writeHeader(out, 0, 42, count);
  g.parts.forEach((r, i) => {
    out.set(r.reply.subarray(bodies[i], r.replyEnd), o);
    o += r.replyEnd - bodies[i];
  });
  return out;
}

/** SCRIPT EXISTS: a script exists for the cluster only where every master has it. */
function andArrays(g: Gather): Uint8Array {
  let flags: number[] | null = null;
  for (const r of g.parts) {
    const a = arrayBody(r);
    if (a === null) return partFailure(g, r, r.spec!);
    const mine: number[] = [];
    for (let i = 0, at = a.body; i < a.count; i++) {
      const n = scanReply(r.reply, at, r.replyEnd, scan);
      if (n <= 0) { scan.reset(); return partFailure(g, r, r.spec!); }
      mine.push(r.reply[at + 1] === 49 ? 1 : 0);
      at += n;
    }
    flags = flags === null ? mine : flags.map((f, i) => f & (mine[i] ?? 0));
  }
  return enc.encode(`*${flags!.length}\r\n${flags!.map((f) => `:${f}\r\n`).join("")}`);
}
