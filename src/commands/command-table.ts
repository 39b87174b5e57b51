// The command table: how each command routes, from @ioredis/commands' key specs plus proxy policy.

import commandsJson from "@ioredis/commands/built/commands.json" with { type: "json" };

/** How a command finds its backend. */
export const enum Route {
  /** Hashes the argument at `keyAt` (the first key); the node itself checks the other keys. */
  KEY,
  /** The argument at `keyAt` is a key count; the first key follows it. No keys: any node. */
  NUMKEYS,
  /** Keys follow the STREAMS token (XREAD, XREADGROUP); the first one routes. */
  STREAMS,
  /** Keyless and node-independent (PUBLISH, TIME, COMMAND): any reachable master answers. */
  ANY,
  /** Answered by the proxy itself (PING, AUTH, SELECT, HELLO, INFO …); `local` names the handler. */
  LOCAL,
  /** Resolved by the subcommand in argument 1 (OBJECT ENCODING key, XINFO STREAM key …). */
  SUBCOMMAND,
  /** Refused with `-ERR … not supported by proxy`; `reason` may say more. */
  UNSUPPORTED,
  /** Refused by the operator's policy (`[commands] deny`). */
  DENIED,
}

export interface CommandSpec {
  /** Dense, unique per spec (subcommands included): an index for per-command data kept elsewhere (ACLs). */
  readonly id: number;
  /** Lower-case name; for subcommands "container|sub". */
  readonly name: string;
  /** Redis arity: N exact, -N at least N (counting the name). */
  readonly arity: number;
  readonly route: Route;
  readonly keyAt: number;
  readonly write: boolean;
  readonly readonly: boolean;
  /** For Route.LOCAL: the handler's name. */
  readonly local: string;
  /** For Route.STREAMS: a BLOCK option makes the call blocking (refused on shared connections). */
  readonly blockOption: boolean;
  readonly reason: string;
  readonly subcommands: ReadonlyMap<string, CommandSpec> | null;
  /** First key, last key (negative: from the end) and step, as the legacy COMMAND fields give them. */
  readonly keyRange: readonly [number, number, number];
}

interface RawSpec {
  arity: number;
  flags: string[];
  keyStart: number;
  keyStop: number;
  step: number;
  subcommands?: Record<string, RawSpec>;
}

/** Commands the proxy answers itself: connection state must not leak onto shared connections. */
const LOCAL = ["ping", "echo", "quit", "select", "auth", "hello", "info", "readonly", "readwrite", "reset"];
const LOCAL_SUB = ["client|setname", "client|getname", "client|id", "client|setinfo", "client|info", "command|count"];
/** Keyless commands whose answer does not depend on the node. */
const ANY = ["publish", "time", "command", "command|info", "command|docs", "command|list", "command|getkeys", "command|getkeysandflags", "lastsave"];
/** movablekeys commands whose first key comes after a key count at this position. */
const NUMKEYS_AT: Record<string, number> = {
  eval: 2, evalsha: 2, eval_ro: 2, evalsha_ro: 2, fcall: 2, fcall_ro: 2,
  zunion: 1, zinter: 1, zdiff: 1, zintercard: 1, sintercard: 1, sdiffcard: 1, sunioncard: 1,
  lmpop: 1, zmpop: 1, msetex: 1,
};
const STREAMS = ["xread", "xreadgroup"];
/** Reasons for refusing whole groups, shown to the client. */
const WHY_BLOCKING = "blocking commands would stall a shared backend connection";
const WHY_STATEFUL = "it needs a dedicated backend connection";
const STATEFUL = new Set(["multi", "exec", "discard", "watch", "unwatch", "subscribe", "psubscribe", "ssubscribe",
  "unsubscribe", "punsubscribe", "sunsubscribe", "monitor", "sync", "psync", "client|reply", "client|tracking",
  "client|caching", "client|no-evict", "client|no-touch"]);

let nextId = 0;

function makeSpec(name: string, raw: RawSpec): CommandSpec {
  const flags = new Set(raw.flags);
  let route = Route.UNSUPPORTED, keyAt = 0, local = "", reason = "";
  let subcommands: Map<string, CommandSpec> | null = null;
  if (raw.subcommands) {
    subcommands = new Map();
    for (const [sub, subRaw] of Object.entries(raw.subcommands)) {
      subcommands.set(sub, makeSpec(`${name}|${sub}`, subRaw));
    }
  }
  // ACL subcommands too: the users a client sees are the proxy's, never the cluster's.
  if (LOCAL.includes(name) || LOCAL_SUB.includes(name) || name.startsWith("acl|")) {
    route = Route.LOCAL;
    local = name;
  } else if (STATEFUL.has(name)) {
    reason = WHY_STATEFUL;
  } else if (flags.has("blocking") && !STREAMS.includes(name)) {
    reason = WHY_BLOCKING;
  } else if (ANY.includes(name)) {
    route = Route.ANY;
  } else if (name in NUMKEYS_AT) {
    route = Route.NUMKEYS;
    keyAt = NUMKEYS_AT[name];
  } else if (STREAMS.includes(name)) {
    route = Route.STREAMS;
  } else if (raw.keyStart > 0) {
    route = Route.KEY;
    keyAt = raw.keyStart;
  } else if (subcommands) {
    route = Route.SUBCOMMAND;
  }
  return {
    id: nextId++, name, arity: raw.arity, route, keyAt, local, reason, subcommands,
    write: flags.has("write"), readonly: flags.has("readonly"),
    blockOption: STREAMS.includes(name), keyRange: [raw.keyStart, raw.keyStop, raw.step],
  };
}

/** FNV-1a over ASCII-lower-cased bytes: command lookup without making a string. */
function hashName(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    let c = buf[i];
    if (c >= 65 && c <= 90) c |= 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}

/** Open-addressed name → spec table: built at start-up, then only read. */
export class CommandTable {
  private slots = new Int32Array(0);
  private readonly specs: CommandSpec[] = [];
  private readonly names: Uint8Array[] = [];
  private mask = 0;

  constructor(raw: Record<string, RawSpec>) {
    const enc = new TextEncoder();
    for (const [name, spec] of Object.entries(raw)) {
      this.specs.push(makeSpec(name, spec));
      this.names.push(enc.encode(name));
    }
    this.index();
  }

  private index(): void {
    let size = 1;
    while (size < this.specs.length * 4) size <<= 1;
    const slots = new Int32Array(size).fill(-1);
    const mask = size - 1;
    for (let idx = 0; idx < this.names.length; idx++) {
      const bytes = this.names[idx];
      let i = hashName(bytes, 0, bytes.length) & mask;
      while (slots[i] >= 0) i = (i + 1) & mask;
      slots[i] = idx;
    }
    this.slots = slots;
    this.mask = mask;
  }

  /** The spec for the command name in `buf[start, end)`, case-insensitively; null if unknown. */
  lookup(buf: Uint8Array, start: number, end: number): CommandSpec | null {
    const len = end - start;
    let i = hashName(buf, start, end) & this.mask;
    for (;;) {
      const idx = this.slots[i];
      if (idx < 0) return null;
      const name = this.names[idx];
      if (name.length === len && equalsLower(buf, start, name)) return this.specs[idx];
      i = (i + 1) & this.mask;
    }
  }

  get size(): number {
    return this.specs.length;
  }

  /** Every command and subcommand, containers before their subcommands. */
  *all(): IterableIterator<CommandSpec> {
    for (const spec of this.specs) {
      yield spec;
      if (spec.subcommands) yield* spec.subcommands.values();
    }
  }

  /**
   * Redis' rename-command: the command answers to `to` only; `to` empty disables it (it is then
   * unknown, as in Redis). Replies keep the command's own name. False if `from` is unknown.
   */
  rename(from: string, to: string): boolean {
    const idx = this.names.findIndex((n) => new TextDecoder().decode(n) === from.toLowerCase());
    if (idx < 0) return false;
    if (to === "") {
      this.specs.splice(idx, 1);
      this.names.splice(idx, 1);
    } else {
      this.names[idx] = new TextEncoder().encode(to.toLowerCase());
    }
    this.index();
    return true;
  }

  /**
   * Operator policy: the command (or "container|sub") is refused from now on, whoever asks.
   * False if unknown.
   */
  deny(name: string): boolean {
    const [top, sub] = name.toLowerCase().split("|", 2);
    const idx = this.specs.findIndex((s) => s.name === top);
    if (idx < 0) return false;
    const spec = this.specs[idx];
    if (sub === undefined) {
      this.specs[idx] = { ...spec, route: Route.DENIED };
      return true;
    }
    const child = spec.subcommands?.get(sub);
    if (child === undefined) return false;
    (spec.subcommands as Map<string, CommandSpec>).set(sub, { ...child, route: Route.DENIED });
    return true;
  }

  /**
   * Adds the commands a node's `COMMAND` reply knows and this table does not (module commands,
   * commands newer than @ioredis/commands), routed by their key specs. Entries already known keep
   * the maintained table's data. Returns the names added; malformed entries are skipped.
   */
  learn(commandReply: unknown): string[] {
    if (!Array.isArray(commandReply)) return [];
    const enc = new TextEncoder();
    const added: string[] = [];
    for (const entry of commandReply) {
      // [name, arity, flags[], first key, last key, step, …]
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number" ||
          !Array.isArray(entry[2]) || typeof entry[3] !== "number") continue;
      const name = entry[0].toLowerCase();
      const bytes = enc.encode(name);
      if (this.lookup(bytes, 0, bytes.length) !== null) continue;
      const flags = entry[2].filter((f): f is string => typeof f === "string");
      this.specs.push(makeSpec(name, {
        arity: entry[1], flags, keyStart: entry[3], keyStop: Number(entry[4]) || 0, step: Number(entry[5]) || 0,
      }));
      this.names.push(bytes);
      added.push(name);
    }
    if (added.length > 0) this.index();
    return added;
  }
}

function equalsLower(buf: Uint8Array, start: number, lower: Uint8Array): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i];
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== lower[i]) return false;
  }
  return true;
}

/** The table built from @ioredis/commands (Redis' own COMMAND output, maintained upstream). */
export const COMMANDS = new CommandTable(commandsJson as Record<string, RawSpec>);

/** Whether argc satisfies a Redis arity. */
export function arityOk(arity: number, argc: number): boolean {
  return arity >= 0 ? argc === arity : argc >= -arity;
}
