// The per-command ACL verdict (Redis' ACLCheckAllUserCommandPerm), over the request's bytes in place.

import type { Frame } from "../resp/request-reader.ts";
import type { AclCommand } from "./acl-table.ts";
import { KeyFlag } from "./command-info.ts";
import { globMatch } from "../util/glob.ts";
import { argIs, Channels, extractKeys, keyFlags, keyPos } from "./keys.ts";
import { READ, WRITE, type AclUser, type Selector } from "./user.ts";

/** Redis' ACL_* results, ordered as Redis ranks them when several selectors refuse. */
export const enum Verdict { OK = 0, CMD = 1, KEY = 2, AUTH = 3, CHANNEL = 4 }

/** After a KEY or CHANNEL verdict: the argument that was refused. */
export let refusedArg = 0;

let keysFound = -1;

/**
 * Whether `user` may run `f` (command `cmd`). Allocates nothing: keys are found once as
 * positions in the request and matched as bytes.
 */
export function check(user: AclUser, cmd: AclCommand, f: Frame): Verdict {
  keysFound = -1;
  let verdict = Verdict.CMD, at = 0;
  const selectors = user.selectors;
  for (let i = 0; i < selectors.length; i++) {
    const v = checkSelector(selectors[i], cmd, f);
    if (v === Verdict.OK) return Verdict.OK;
    if (v > verdict || (v === verdict && selectorArg > at)) {
      verdict = v;
      at = selectorArg;
    }
  }
  refusedArg = at;
  return verdict;
}

let selectorArg = 0;

function checkSelector(s: Selector, cmd: AclCommand, f: Frame): Verdict {
  selectorArg = 0;
  if (!s.allCommands && !cmd.noAuth && !s.can(cmd.id) && !firstArgAllowed(s, cmd, f)) return Verdict.CMD;
  if (!s.allKeys && cmd.hasKeys) {
    if (keysFound < 0) keysFound = extractKeys(cmd, f);
    for (let j = 0; j < keysFound; j++) {
      const pos = keyPos[j];
      if (!keyAllowed(s, f, pos, keyFlags[j])) {
        selectorArg = pos;
        return Verdict.KEY;
      }
    }
  }
  if (!s.allChannels && cmd.channels !== Channels.NONE) {
    const last = cmd.channels === Channels.PUBLISH ? Math.min(2, f.argc) : f.argc;
    for (let i = 1; i < last; i++) {
      if (!channelAllowed(s, f, i, cmd.channels === Channels.PSUBSCRIBE)) {
        selectorArg = i;
        return Verdict.CHANNEL;
      }
    }
  }
  return Verdict.OK;
}

function firstArgAllowed(s: Selector, cmd: AclCommand, f: Frame): boolean {
  if (f.argc < 2 || s.firstArgs === null) return false;
  const list = s.firstArgs.get(cmd.id);
  if (list === undefined) return false;
  const at = cmd.parent !== null ? 2 : 1;
  for (let i = 0; i < list.length; i++) if (argIs(f, at, list[i])) return true;
  return false;
}

function keyAllowed(s: Selector, f: Frame, pos: number, specFlags: number): boolean {
  let need = 0;
  if (specFlags & KeyFlag.ACCESS) need |= READ;
  if (specFlags & (KeyFlag.INSERT | KeyFlag.DELETE | KeyFlag.UPDATE)) need |= WRITE;
  const start = f.base + f.argStart[pos], end = f.base + f.argEnd[pos];
  const patterns = s.patterns;
  for (let i = 0; i < patterns.length; i++) {
    const p = patterns[i];
    if ((p.flags & need) === need && globMatch(p.bytes, f.src, start, end)) return true;
  }
  return false;
}

/** A channel is matched by the patterns; a PSUBSCRIBE pattern only by an identical ACL pattern. */
function channelAllowed(s: Selector, f: Frame, i: number, isPattern: boolean): boolean {
  const start = f.base + f.argStart[i], end = f.base + f.argEnd[i];
  const channels = s.channels;
  for (let j = 0; j < channels.length; j++) {
    const p = channels[j];
    if (isPattern ? sameCString(p, f.src, start, end) : globMatch(p, f.src, start, end)) return true;
  }
  return false;
}

/** strcmp: both read up to their first NUL. */
function sameCString(a: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  for (let j = 0; ; j++) {
    const x = j < a.length ? a[j] : 0, y = start + j < end ? buf[start + j] : 0;
    if (x !== y) return false;
    if (x === 0) return true;
  }
}
