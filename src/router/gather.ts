// A client command answered from several node commands: its parts, and the merge of their replies.

import type { BackendNode } from "../backend/backend-node.ts";
import type { CommandSpec } from "../commands/command-table.ts";
import { errorReply } from "../resp/replies.ts";
import { acquire, release, type Request } from "./request.ts";

/**
 * The parent is the client's command, in its reply-order FIFO like any other; the parts are
 * ordinary requests (same client, same connections, same redirects and retries) whose final
 * replies come here instead of to the client. When the last one arrives, merge() makes the
 * parent's reply. A part that is created but not sent yet is `held` (see Router.hold).
 */
export abstract class Gather {
  readonly parts: Request[] = [];
  /** Parts without their final reply yet, held ones included. */
  waiting = 0;
  parent: Request;
  /** Any master can run its parts (they have no slot to follow when their master is down). */
  anyMasterWillDo = false;

  constructor(parent: Request) {
    this.parent = parent;
    parent.gather = this;
  }

  /** The parent is released: a pooled kind takes this object back (see multi-key.ts). */
  recycle(): void {}

  /** Adds a part sending `src[start, end)` to the owner of `slot`, or to `target` when given. */
  addPart(src: Uint8Array, start: number, end: number, slot: number, target: BackendNode | null): Request {
    const p = acquire();
    const parent = this.parent;
    p.sink = parent.sink;
    p.spec = parent.spec;
    p.affinity = parent.affinity;
    p.cred = parent.cred;
    p.proto = parent.proto;
    p.parent = parent;
    p.src = src;
    p.start = start;
    p.end = end;
    p.slot = slot;
    p.target = target;
    p.held = true;
    this.parts.push(p);
    this.waiting++;
    return p;
  }

  /** The client's reply, once every part has its final reply (`reply[replyStart, replyEnd)`). */
  abstract merge(): Uint8Array;

  /** Releases the parts and the parent (the client has gone). */
  releaseAll(): void {
    this.releaseParts();
    release(this.parent);
  }

  releaseParts(): void {
    for (const p of this.parts) release(p);
    this.parts.length = 0;
  }
}

/**
 * The client of `req`, a command held back by its client's retries, has gone. Its parts that
 * were never sent are done; parts still at a node are released when their replies come back.
 */
export function abandonHeld(req: Request): void {
  const g = req.gather;
  if (g === null) return release(req);
  for (const p of g.parts) {
    if (p.held && !p.done) {
      p.held = false;
      p.done = true;
      g.waiting--;
    }
  }
  if (g.waiting === 0) g.releaseAll();
}

/** Reads a reply's leading integer (`:123\r\n`); NaN if it is not one. */
export function replyInteger(r: Request): number {
  const buf = r.reply;
  let p = r.replyStart;
  if (buf[p++] !== 58) return NaN;
  let neg = false;
  if (buf[p] === 45) { neg = true; p++; }
  let n = 0, digits = 0;
  for (; p < r.replyEnd && buf[p] !== 13; p++, digits++) {
    const d = buf[p] - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return digits === 0 ? NaN : neg ? -n : n;
}

/** Whether the part's reply is an error (`-…`). */
export function isError(r: Request): boolean {
  return r.reply[r.replyStart] === 45;
}

/** The part's error line without the '-' and CRLF. */
export function errorText(r: Request): string {
  return new TextDecoder().decode(r.reply.subarray(r.replyStart + 1, r.replyEnd - 2));
}

/**
 * The one error reply of a command whose part `r` failed (an error, or a reply of the wrong
 * shape): that error, then what the command was split into and how many parts succeeded, so a
 * client knows whether some of a split write was applied.
 */
export function partFailure(g: Gather, r: Request, spec: CommandSpec): Uint8Array {
  const own = isError(r) ? errorText(r) : "ERR unexpected reply from a cluster node";
  const n = g.parts.length;
  let failed = 0;
  for (const p of g.parts) if (isError(p)) failed++;
  if (!isError(r)) failed++;
  const byMaster = r.target !== null;
  const where = byMaster ? `on ${r.target!.addr}` : `for slot ${r.slot}`;
  const name = spec.name.replace("|", " ").toUpperCase();
  const how = byMaster ? `was sent to ${n} masters` : `was split into ${n} commands, one per key`;
  return errorReply(`${own} (${name} ${how}; ${failed} failed, the first ${where}; ${n - failed} succeeded)`);
}
