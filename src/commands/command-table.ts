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
  /** Answered by the proxy itself (PING, AUTH, SELECT, HELLO …); `local` names the handler. */
  LOCAL,
  /** Keys every `keyStep` arguments from 1, split per slot and merged by `merge` (MGET, MSET, DEL …). */
  MULTI_KEY,
  /** Sent to every master (or the one a SCAN cursor names) and merged by `merge`. */
  FAN_OUT,
  /** Answered by the cluster façade: predixy as a one-node cluster owning every served slot. */
  FACADE,
  /** Argument 2 is a slot number; its owner answers (CLUSTER COUNTKEYSINSLOT/GETKEYSINSLOT). */
  SLOT_ARG,
  /**
   * Needs connection state (MULTI/EXEC/WATCH, blocking calls, WAIT, pub/sub): handled by the
   * session module (src/session/); `local` names the kind, `keyAt` the first key if any.
   */
  SESSION,
  /** Pub/sub: (un)subscribe, PUBLISH, SPUBLISH and PUBSUB … (src/session/pubsub.ts); `local` names it. */
  PUBSUB,
  /** Resolved by the subcommand in argument 1 (OBJECT ENCODING key, XINFO STREAM key …). */
  SUBCOMMAND,
  /** Refused with `-ERR … not supported by proxy`; `reason` may say more. */
  UNSUPPORTED,
  /** Refused by the operator's policy (`[commands] deny`). */
  DENIED,
}

/** How the replies of a MULTI_KEY or FAN_OUT command's parts become the client's reply. */
export const enum Merge {
  NONE,
  /** The parts' array elements, in key order (MGET). */
  VALUES,
  /** +OK when every part said +OK (MSET, FLUSHALL …). */
  ALL_OK,
  /** The sum of the parts' integers (DEL, EXISTS, DBSIZE …). */
  SUM,
  /** The parts' arrays one after the other (KEYS). */
  CONCAT,
  /** One of the parts' non-nil replies, at random (RANDOMKEY). */
  RANDOM,
  /** The smallest integer (LASTSAVE: when every master had saved). */
  MIN,
  /** The reply every part gave, or an error if they differ (SCRIPT LOAD, FUNCTION LOAD). */
  SAME,
  /** Element-wise AND of the parts' 0/1 arrays (SCRIPT EXISTS). */
  AND,
  /** SCAN: one master per call, named by the cursor. */
  SCAN,
  /** INFO: the proxy's own sections plus the masters' keyspace, summed. */
  INFO,
  /** SCRIPT KILL / FUNCTION KILL on a fresh connection to every master (shared ones wait behind the script). */
  KILL,
}

export interface CommandSpec {
  /** Small integer, unique in the process (1…; 0 is an unknown command): the index of per-command data (metrics/, acl/). */
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
  /** For Route.MULTI_KEY and Route.FAN_OUT. */
  readonly merge: Merge;
  /** For Route.MULTI_KEY: arguments per key (2 for MSET's key value pairs). */
  readonly keyStep: number;
  /** For Route.MULTI_KEY: the name as a bulk string (`$4\r\nmget\r\n`), to build the parts. */
  readonly wireName: Uint8Array;
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
const LOCAL = ["ping", "echo", "quit", "select", "auth", "hello", "readonly", "readwrite", "asking", "reset", "role"];
const LOCAL_SUB = ["client|setname", "client|getname", "client|id", "client|setinfo", "client|info", "client|list", "client|kill", "command|count",
  "config|get", "config|set", "config|resetstat", "config|help", "latency|histogram", "latency|latest", "latency|history",
  "latency|reset", "latency|help", "slowlog|get", "slowlog|len", "slowlog|reset", "slowlog|help"];
/** Keyless commands whose answer does not depend on the node (or is Redis' own refusal, as SWAPDB's). */
const ANY = ["time", "command", "command|info", "command|docs", "command|list", "command|getkeys",
  "command|getkeysandflags", "command|help", "function|list", "function|dump", "function|stats", "function|help",
  "script|help", "object|help", "xinfo|help", "xgroup|help", "memory|help", "cluster|help",
  "swapdb", "lolwut"];
/** Split per slot and merged; [merge, arguments per key]. */
const MULTI_KEY: Record<string, [Merge, number]> = {
  mget: [Merge.VALUES, 1], mset: [Merge.ALL_OK, 2],
  del: [Merge.SUM, 1], unlink: [Merge.SUM, 1], exists: [Merge.SUM, 1], touch: [Merge.SUM, 1],
};
/** Answered for the whole cluster. */
const FAN_OUT: Record<string, Merge> = {
  keys: Merge.CONCAT, dbsize: Merge.SUM, randomkey: Merge.RANDOM, flushdb: Merge.ALL_OK, flushall: Merge.ALL_OK,
  lastsave: Merge.MIN, scan: Merge.SCAN, info: Merge.INFO,
  "script|load": Merge.SAME, "script|exists": Merge.AND, "script|flush": Merge.ALL_OK, "script|kill": Merge.KILL,
  "function|load": Merge.SAME, "function|delete": Merge.ALL_OK, "function|flush": Merge.ALL_OK,
  "function|restore": Merge.ALL_OK, "function|kill": Merge.KILL,
};
const FACADE = ["cluster|slots", "cluster|shards", "cluster|nodes", "cluster|info", "cluster|myid", "cluster|myshardid",
  "cluster|keyslot", "cluster|replicas", "cluster|slaves", "cluster|links"];
const SLOT_ARG = ["cluster|countkeysinslot", "cluster|getkeysinslot"];
/** movablekeys commands whose first key comes after a key count at this position. */
const NUMKEYS_AT: Record<string, number> = {
  eval: 2, evalsha: 2, eval_ro: 2, evalsha_ro: 2, fcall: 2, fcall_ro: 2,
  zunion: 1, zinter: 1, zdiff: 1, zintercard: 1, sintercard: 1, sdiffcard: 1, sunioncard: 1,
  lmpop: 1, zmpop: 1, msetex: 1,
};
const STREAMS = ["xread", "xreadgroup"];
/** Reasons for refusing whole groups, shown to the client. */
const WHY_STATEFUL = "it needs a dedicated backend connection";
const STATEFUL = new Set(["sync", "psync", "client|no-evict", "client|no-touch"]);
/** Refused, with why: what a proxy in front of many nodes cannot honestly do. */
const REFUSED: Record<string, string> = {
  monitor: "it would need every node's command stream; use MONITOR on the nodes, or predixy's SLOWLOG and metrics",
  "client|tracking": "client-side caching needs the nodes' invalidation messages routed to the client that read each key, which the shared connections cannot tell apart",
  "client|caching": "client-side caching (CLIENT TRACKING) is not supported by the proxy",
  "client|trackinginfo": "client-side caching (CLIENT TRACKING) is not supported by the proxy",
  "client|getredir": "client-side caching (CLIENT TRACKING) is not supported by the proxy",
  "client|reply": "replies are written by the proxy in order; they cannot be switched off",
  "client|pause": "it would pause the nodes for every client of the proxy; run it on the nodes",
  "client|unpause": "it would act on the nodes for every client of the proxy; run it on the nodes",
  "client|unblock": "not supported by the proxy: the blocked call runs on a connection of its own",
};
const PUBSUB = new Set(["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
  "publish", "spublish", "pubsub|channels", "pubsub|numsub", "pubsub|numpat", "pubsub|shardchannels", "pubsub|shardnumsub"]);
/** Commands of a session (src/session/), by kind. Blocking commands are found by their flag. */
const SESSION: Record<string, string> = {
  multi: "transaction", exec: "transaction", discard: "transaction", watch: "transaction", unwatch: "transaction",
  wait: "wait",
};
/** Blocking calls whose timeout is argument 1 (then a key count, then keys) rather than the last argument. */
const TIMEOUT_FIRST = ["blmpop", "bzmpop"];
/** Keyless commands about one node, by name or by container: why the proxy does not answer them. */
const NODE_ONLY: Record<string, string> = {
  cluster: "it changes or inspects the cluster itself; send it to the nodes",
  config: "node settings differ per node; configure the nodes directly",
  save: "persistence is per node; run it on the nodes",
  bgsave: "persistence is per node; run it on the nodes",
  bgrewriteaof: "persistence is per node; run it on the nodes",
  debug: "it administers one node; run it on that node",
  shutdown: "it would stop one node; run it on that node",
  failover: "it administers one node; run it on that node",
  replicaof: "it administers one node; run it on that node",
  slaveof: "it administers one node; run it on that node",
  module: "modules are loaded per node; run it on the nodes",
  memory: "memory diagnostics are per node; ask the nodes",
  latency: "latency diagnostics are per node; ask the nodes",
  slowlog: "slow logs are per node; ask the nodes",
  replconf: "a replication command between nodes",
  client: "it would act on the proxy's shared backend connections",
  acl: "ACL users are per node; configure the nodes directly",
};

const NO_BYTES = new Uint8Array(0);

/** Every spec made, by id; id 0 stands for an unknown command. */
const BY_ID: (CommandSpec | null)[] = [null];

/** The spec with this id (null for 0 or an id never given). */
export function specById(id: number): CommandSpec | null {
  return BY_ID[id] ?? null;
}

/** One more than the largest id given so far: the size of per-command arrays. */
export function commandIdLimit(): number {
  return BY_ID.length;
}

function makeSpec(name: string, raw: RawSpec): CommandSpec {
  const flags = new Set(raw.flags);
  let route = Route.UNSUPPORTED, keyAt = 0, local = "", reason = "", merge = Merge.NONE, keyStep = 0;
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
  } else if (Object.hasOwn(REFUSED, name)) {
    reason = REFUSED[name];
  } else if (PUBSUB.has(name)) {
    route = Route.PUBSUB;
    local = name;
  } else if (Object.hasOwn(SESSION, name)) {
    route = Route.SESSION;
    local = SESSION[name];
  } else if (name === "waitaof") {
    reason = "it needs the AOF offsets of the client's own connection to each node, which the proxy's shared connections do not keep apart";
  } else if (flags.has("blocking") && !STREAMS.includes(name)) {
    // BLPOP k1 k2 timeout; BLMPOP timeout numkeys k1 …: the first key, on a connection of its own.
    route = Route.SESSION;
    local = "blocking";
    keyAt = TIMEOUT_FIRST.includes(name) ? 3 : Math.max(raw.keyStart, 1);
  } else if (ANY.includes(name)) {
    route = Route.ANY;
  } else if (Object.hasOwn(MULTI_KEY, name)) {
    route = Route.MULTI_KEY;
    [merge, keyStep] = MULTI_KEY[name];
  } else if (Object.hasOwn(FAN_OUT, name)) {
    route = Route.FAN_OUT;
    merge = FAN_OUT[name];
  } else if (FACADE.includes(name)) {
    route = Route.FACADE;
    local = name;
  } else if (SLOT_ARG.includes(name)) {
    route = Route.SLOT_ARG;
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
  } else {
    reason = NODE_ONLY[name.split("|")[0]] ?? "";
  }
  const spec: CommandSpec = {
    id: BY_ID.length, name, arity: raw.arity, route, keyAt, local, reason, subcommands, merge, keyStep,
    wireName: route === Route.MULTI_KEY ? new TextEncoder().encode(`$${name.length}\r\n${name}\r\n`) : NO_BYTES,
    write: flags.has("write"), readonly: flags.has("readonly"),
    blockOption: STREAMS.includes(name), keyRange: [raw.keyStart, raw.keyStop, raw.step],
  };
  BY_ID.push(spec);
  return spec;
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
   * Operator policy: the command (or "container|sub") is refused from now on, whoever asks. One
   * the proxy refuses anyway keeps its own refusal, which says why. False if unknown.
   */
  deny(name: string): boolean {
    const [top, sub] = name.toLowerCase().split("|", 2);
    const idx = this.specs.findIndex((s) => s.name === top);
    if (idx < 0) return false;
    const spec = this.specs[idx];
    const denied = (s: CommandSpec): CommandSpec => (s.route === Route.UNSUPPORTED ? s : { ...s, route: Route.DENIED });
    if (sub === undefined) {
      this.specs[idx] = denied(spec);
      return true;
    }
    const child = spec.subcommands?.get(sub);
    if (child === undefined) return false;
    (spec.subcommands as Map<string, CommandSpec>).set(sub, denied(child));
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
