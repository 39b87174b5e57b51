// Which arguments of a command are keys, and how they are used: Redis 7's key specs, then its fallbacks.

import type { Frame } from "../resp/request-reader.ts";
import { Begin, Find, KeyFlag, type KeySpec } from "./command-info.ts";

/** Redis' getkeys procedures, used when a command's key specs cannot say (or say "it depends"). */
export const enum GetKeys { NONE, GENERIC, SORT, SORT_RO, MIGRATE, GEORADIUS, XREAD, SET, BITFIELD }

/** Commands whose arguments name Pub/Sub channels the ACL checks (UNSUBSCRIBE and friends are not checked). */
export const enum Channels { NONE, SUBSCRIBE, PSUBSCRIBE, PUBLISH }

/** The parts of a command the key extraction reads. */
export interface KeyedCommand {
  readonly keySpecs: readonly KeySpec[];
  /** Some key spec is a real key (not NOT_KEY). */
  readonly hasKeySpec: boolean;
  /** Some key spec has VARIABLE_FLAGS: only the getkeys procedure knows the flags. */
  readonly variableFlags: boolean;
  readonly getKeys: GetKeys;
  /** GetKeys.GENERIC: [store key, key count, first key, step] positions (store 0 = none). */
  readonly generic: readonly [number, number, number, number];
  readonly arity: number;
}

/**
 * Positions and key-spec flags of the keys found by the last extractKeys call. Shared scratch
 * space: the check reads them before anything else can run.
 */
export let keyPos = new Int32Array(32);
export let keyFlags = new Int32Array(32);
let count = 0;

function push(pos: number, flags: number): void {
  if (count === keyPos.length) {
    const p = new Int32Array(count * 2), fl = new Int32Array(count * 2);
    p.set(keyPos);
    fl.set(keyFlags);
    keyPos = p;
    keyFlags = fl;
  }
  keyPos[count] = pos;
  keyFlags[count++] = flags;
}

/** Fills keyPos/keyFlags with the keys of `f` as Redis' ACL check finds them; returns how many. */
export function extractKeys(cmd: KeyedCommand, f: Frame): number {
  count = 0;
  if (cmd.hasKeySpec && !cmd.variableFlags && fromSpecs(cmd, f)) return count;
  count = 0;
  switch (cmd.getKeys) {
    case GetKeys.GENERIC: generic(cmd.generic, f); break;
    case GetKeys.SORT: sort(f); break;
    case GetKeys.SORT_RO: push(1, KeyFlag.RO | KeyFlag.ACCESS); break;
    case GetKeys.MIGRATE: migrate(f); break;
    case GetKeys.GEORADIUS: georadius(f); break;
    case GetKeys.XREAD: xread(f); break;
    case GetKeys.SET: set(f); break;
    case GetKeys.BITFIELD: bitfield(f); break;
    default: break;
  }
  return count;
}

/** The key specs' answer; false when a spec cannot tell (unknown, incomplete, malformed key count). */
function fromSpecs(cmd: KeyedCommand, f: Frame): boolean {
  const argc = f.argc;
  for (const spec of cmd.keySpecs) {
    if (spec.flags & KeyFlag.NOT_KEY) continue;
    let first = 0;
    if (spec.begin === Begin.INDEX) {
      first = spec.index;
    } else if (spec.begin === Begin.KEYWORD) {
      const from = spec.startFrom > 0 ? spec.startFrom : argc + spec.startFrom;
      const to = spec.startFrom > 0 ? argc - 1 : 1;
      for (let i = from; i !== to; i = from <= to ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (argIs(f, i, spec.keyword)) {
          first = i + 1;
          break;
        }
      }
      if (first === 0) continue; // keyword absent: this spec has no keys here
    } else {
      return false;
    }
    let last: number, step: number;
    if (spec.find === Find.RANGE) {
      step = spec.keyStep;
      if (spec.lastKey >= 0) last = first + spec.lastKey;
      else if (spec.limit === 0) last = argc + spec.lastKey;
      else last = first + (Math.trunc((argc - first) / spec.limit) + spec.lastKey);
    } else if (spec.find === Find.KEYNUM) {
      step = spec.keyStep;
      if (spec.keyNumIdx >= argc || first + spec.keyNumIdx >= argc) return false;
      const n = strictInt(f, first + spec.keyNumIdx);
      if (n < 0) return false;
      first += spec.firstKey;
      last = first + n - 1;
    } else {
      return false;
    }
    if (last >= argc || last < first || first >= argc) return false;
    for (let i = first; i <= last; i += step) push(i, spec.flags);
    if (spec.flags & KeyFlag.INCOMPLETE) return false;
  }
  return true;
}

/** COMMAND [store] numkeys key… (EVAL, ZUNIONSTORE, LMPOP …): keys carry no flags, so any pattern grants them. */
function generic(g: readonly [number, number, number, number], f: Frame): void {
  const [store, countAt, firstAt, step] = g;
  const n = atoi(f, countAt);
  if (n < 1 || n > Math.trunc((f.argc - firstAt) / step)) return;
  for (let i = 0; i < n; i++) push(firstAt + i * step, 0);
  if (store !== 0) push(store, 0);
}

function sort(f: Frame): void {
  push(1, KeyFlag.RO | KeyFlag.ACCESS);
  let store = -1;
  for (let i = 2; i < f.argc; i++) {
    if (argIs(f, i, W_LIMIT)) i += 2;
    else if (argIs(f, i, W_GET) || argIs(f, i, W_BY)) i += 1;
    else if (argIs(f, i, W_STORE) && i + 1 < f.argc) store = i + 1; // the last STORE counts, as in SORT
  }
  if (store > 0) push(store, KeyFlag.OW | KeyFlag.UPDATE);
}

function migrate(f: Frame): void {
  let first = 3, num = 1;
  if (f.argc > 6) {
    for (let i = 6; i < f.argc; i++) {
      if (argIs(f, i, W_KEYS)) {
        if (f.argEnd[3] > f.argStart[3]) num = 0; // a key before KEYS is a syntax error, left to the node
        else { first = i + 1; num = f.argc - first; }
        break;
      }
      if (argIs(f, i, W_AUTH)) i += 1;
      else if (argIs(f, i, W_AUTH2)) i += 2;
    }
  }
  for (let i = 0; i < num; i++) push(first + i, KeyFlag.RW | KeyFlag.ACCESS | KeyFlag.DELETE);
}

function georadius(f: Frame): void {
  let stored = -1;
  for (let i = 5; i < f.argc; i++) {
    if ((argIs(f, i, W_STORE) || argIs(f, i, W_STOREDIST)) && i + 1 < f.argc) {
      stored = i + 1;
      i++;
    }
  }
  push(1, 0);
  if (stored > 0) push(stored, 0);
}

function xread(f: Frame): void {
  let streams = -1;
  for (let i = 1; i < f.argc; i++) {
    if (argIs(f, i, W_BLOCK) || argIs(f, i, W_COUNT)) i++;
    else if (argIs(f, i, W_GROUP)) i += 2;
    else if (argIs(f, i, W_NOACK)) continue;
    else if (argIs(f, i, W_STREAMS)) { streams = i; break; }
    else break;
  }
  if (streams < 0) return;
  const num = f.argc - streams - 1;
  if (num === 0 || num % 2 !== 0) return;
  for (let i = streams + 1; i < f.argc - num / 2; i++) push(i, 0);
}

function set(f: Frame): void {
  for (let i = 3; i < f.argc; i++) {
    if (argIs(f, i, W_GET)) {
      push(1, KeyFlag.RW | KeyFlag.ACCESS | KeyFlag.UPDATE);
      return;
    }
  }
  push(1, KeyFlag.OW | KeyFlag.UPDATE);
}

function bitfield(f: Frame): void {
  let readonly = true;
  for (let i = 2; i < f.argc; i++) {
    const rest = f.argc - i - 1;
    if (argIs(f, i, W_GET) && rest >= 2) i += 2;
    else if ((argIs(f, i, W_SET) || argIs(f, i, W_INCRBY)) && rest >= 3) { readonly = false; break; }
    else if (argIs(f, i, W_OVERFLOW) && rest >= 1) i += 1;
    else { readonly = false; break; }
  }
  push(1, readonly ? KeyFlag.RO | KeyFlag.ACCESS : KeyFlag.RW | KeyFlag.ACCESS | KeyFlag.UPDATE);
}

/**
 * Argument `i` equals `lower` ignoring ASCII case, compared as C strings (strcasecmp): an
 * argument is read up to its first NUL byte.
 */
export function argIs(f: Frame, i: number, lower: Uint8Array): boolean {
  const s = f.base + f.argStart[i], e = f.base + f.argEnd[i], buf = f.src;
  for (let j = 0; ; j++) {
    let c = s + j < e ? buf[s + j] : 0;
    if (c >= 65 && c <= 90) c |= 0x20;
    const w = j < lower.length ? lower[j] : 0;
    if (c !== w) return false;
    if (c === 0) return true;
  }
}

/** Redis' string2ll on argument `i`, as a count: -1 if not a canonical integer or negative. */
function strictInt(f: Frame, i: number): number {
  const s = f.base + f.argStart[i], e = f.base + f.argEnd[i], buf = f.src;
  if (e - s === 1 && buf[s] === 48) return 0;
  if (s === e || e - s > 15 || buf[s] < 49 || buf[s] > 57) return -1; // no sign, no leading zero; negatives are refused anyway
  let n = 0;
  for (let p = s; p < e; p++) {
    const d = buf[p] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** C's atoi (strtol cast to int) on argument `i`: leading spaces, a sign, digits up to the first other byte. */
function atoi(f: Frame, i: number): number {
  const e = f.base + f.argEnd[i], buf = f.src;
  let p = f.base + f.argStart[i];
  while (p < e && (buf[p] === 32 || (buf[p] >= 9 && buf[p] <= 13))) p++;
  let neg = false;
  if (p < e && (buf[p] === 43 || buf[p] === 45)) neg = buf[p++] === 45;
  const from = p;
  let n = 0;
  while (p < e && buf[p] >= 48 && buf[p] <= 57) n = n * 10 + (buf[p++] - 48);
  if (p - from <= 15) return (neg ? -n : n) | 0; // exact, and ToInt32 is C's cast to int
  // Long digit runs (rare, malformed input): strtol saturates at LONG_MAX/LONG_MIN before the cast.
  let big = BigInt(new TextDecoder().decode(buf.subarray(from, p)));
  if (neg) big = -big;
  if (big > 9223372036854775807n) big = 9223372036854775807n;
  if (big < -9223372036854775808n) big = -9223372036854775808n;
  return Number(BigInt.asIntN(32, big));
}

const enc = (s: string) => new TextEncoder().encode(s);
const W_LIMIT = enc("limit"), W_GET = enc("get"), W_BY = enc("by"), W_STORE = enc("store"), W_KEYS = enc("keys");
const W_AUTH = enc("auth"), W_AUTH2 = enc("auth2"), W_STOREDIST = enc("storedist"), W_BLOCK = enc("block");
const W_COUNT = enc("count"), W_GROUP = enc("group"), W_NOACK = enc("noack"), W_STREAMS = enc("streams");
const W_SET = enc("set"), W_INCRBY = enc("incrby"), W_OVERFLOW = enc("overflow");
