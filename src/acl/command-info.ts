// What ACLs need to know of each command: its categories and key specs, as Redis 7 reports them in COMMAND.

/** ACL categories, in Redis' order (ACL CAT lists them so; a category's bit is 1 << its index). */
export const CATEGORIES = [
  "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
  "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
] as const;

/** Key spec flags (Redis' CMD_KEY_*). */
export const enum KeyFlag {
  RO = 1, RW = 2, OW = 4, RM = 8, ACCESS = 16, UPDATE = 32, INSERT = 64, DELETE = 128,
  NOT_KEY = 256, INCOMPLETE = 512, VARIABLE_FLAGS = 1024,
}

const KEY_FLAG_NAMES: Record<string, number> = {
  RO: KeyFlag.RO, RW: KeyFlag.RW, OW: KeyFlag.OW, RM: KeyFlag.RM, access: KeyFlag.ACCESS, update: KeyFlag.UPDATE,
  insert: KeyFlag.INSERT, delete: KeyFlag.DELETE, not_key: KeyFlag.NOT_KEY, incomplete: KeyFlag.INCOMPLETE,
  variable_flags: KeyFlag.VARIABLE_FLAGS,
};

/**
 * One command's ACL data as stored in command-acl.json and as read from a node's COMMAND reply.
 * `begin`: ["index", pos] | ["keyword", word, startfrom] | ["unknown"];
 * `find`: ["range", lastkey, keystep, limit] | ["keynum", keynumidx, firstkey, keystep] | ["unknown"].
 */
export interface CommandAclData {
  categories: string[];
  /** Only the flags ACLs look at: "no_auth" (AUTH, HELLO … skip the command check), "module". */
  flags: string[];
  keySpecs: { flags: string[]; begin: (string | number)[]; find: (string | number)[] }[];
  subcommands?: Record<string, CommandAclData>;
}

/**
 * `COMMAND`'s reply → name → data. Entries without ACL categories (Redis before 6) are left out;
 * entries without key specs (Redis 6) get none, and keep the table's when merged.
 */
export function fromCommandReply(reply: unknown): Record<string, CommandAclData> {
  const out: Record<string, CommandAclData> = {};
  if (!Array.isArray(reply)) return out;
  for (const entry of reply) {
    const data = entryData(entry);
    if (data !== null) out[String(entry[0]).toLowerCase()] = data;
  }
  return out;
}

function entryData(entry: unknown): CommandAclData | null {
  // [name, arity, flags, first, last, step, categories, tips, key specs, subcommands]
  if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[2]) || !Array.isArray(entry[6])) return null;
  const flags = entry[2].filter((f): f is string => f === "no_auth" || f === "module");
  const categories = entry[6]
    .filter((c): c is string => typeof c === "string")
    .map((c) => c.replace(/^@/, "").toLowerCase());
  const keySpecs: CommandAclData["keySpecs"] = [];
  if (Array.isArray(entry[8])) {
    for (const raw of entry[8]) {
      const spec = keySpecData(raw);
      if (spec !== null) keySpecs.push(spec);
    }
  }
  const data: CommandAclData = { categories, flags, keySpecs };
  if (Array.isArray(entry[9]) && entry[9].length > 0) {
    data.subcommands = {};
    for (const sub of entry[9]) {
      const d = entryData(sub);
      // Subcommands are reported as "container|sub".
      if (d !== null) data.subcommands[String(sub[0]).toLowerCase().split("|").pop()!] = d;
    }
  }
  return data;
}

function pairs(v: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (Array.isArray(v)) for (let i = 0; i + 1 < v.length; i += 2) m.set(String(v[i]), v[i + 1]);
  return m;
}

function keySpecData(raw: unknown): CommandAclData["keySpecs"][number] | null {
  const m = pairs(raw);
  const flags = Array.isArray(m.get("flags")) ? (m.get("flags") as unknown[]).map(String) : [];
  const bs = pairs(m.get("begin_search")), fk = pairs(m.get("find_keys"));
  const bspec = pairs(bs.get("spec")), fspec = pairs(fk.get("spec"));
  const num = (x: unknown) => (typeof x === "number" ? x : Number(x));
  let begin: (string | number)[] = ["unknown"];
  if (bs.get("type") === "index") begin = ["index", num(bspec.get("index"))];
  else if (bs.get("type") === "keyword") begin = ["keyword", String(bspec.get("keyword")), num(bspec.get("startfrom"))];
  let find: (string | number)[] = ["unknown"];
  if (fk.get("type") === "range") find = ["range", num(fspec.get("lastkey")), num(fspec.get("keystep")), num(fspec.get("limit"))];
  else if (fk.get("type") === "keynum") find = ["keynum", num(fspec.get("keynumidx")), num(fspec.get("firstkey")), num(fspec.get("keystep"))];
  if ([...begin, ...find].some((x) => typeof x === "number" && !Number.isInteger(x))) return null;
  return { flags, begin, find };
}

export const enum Begin { INDEX, KEYWORD, UNKNOWN }
export const enum Find { RANGE, KEYNUM, UNKNOWN }

/** A key spec, compiled for the check (numbers and bytes, no strings). */
export interface KeySpec {
  flags: number;
  begin: Begin;
  index: number;
  /** Lower-case keyword bytes. */
  keyword: Uint8Array;
  startFrom: number;
  find: Find;
  lastKey: number;
  keyStep: number;
  limit: number;
  keyNumIdx: number;
  firstKey: number;
}

export function compileKeySpec(d: CommandAclData["keySpecs"][number]): KeySpec {
  let flags = 0;
  for (const f of d.flags) flags |= KEY_FLAG_NAMES[f] ?? 0;
  const b = d.begin, f = d.find;
  return {
    flags,
    begin: b[0] === "index" ? Begin.INDEX : b[0] === "keyword" ? Begin.KEYWORD : Begin.UNKNOWN,
    index: b[0] === "index" ? Number(b[1]) : 0,
    keyword: new TextEncoder().encode(b[0] === "keyword" ? String(b[1]).toLowerCase() : ""),
    startFrom: b[0] === "keyword" ? Number(b[2]) : 0,
    find: f[0] === "range" ? Find.RANGE : f[0] === "keynum" ? Find.KEYNUM : Find.UNKNOWN,
    lastKey: f[0] === "range" ? Number(f[1]) : 0,
    keyStep: Number(f[f[0] === "range" ? 2 : 3] ?? 1) || 1,
    limit: f[0] === "range" ? Number(f[3]) : 0,
    keyNumIdx: f[0] === "keynum" ? Number(f[1]) : 0,
    firstKey: f[0] === "keynum" ? Number(f[2]) : 0,
  };
}

/** A key spec for a command Redis' data does not describe: the proxy's own key positions, full access. */
export function legacyKeySpec(first: number, last: number, step: number): KeySpec {
  return {
    flags: KeyFlag.RW | KeyFlag.ACCESS | KeyFlag.UPDATE, begin: Begin.INDEX, index: first, keyword: new Uint8Array(0),
    startFrom: 0, find: Find.RANGE, lastKey: last < 0 ? last : last - first, keyStep: step || 1, limit: 0, keyNumIdx: 0, firstKey: 0,
  };
}

/** The bitmask of category names; unknown names are ignored. */
export function categoryBits(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) {
    const i = (CATEGORIES as readonly string[]).indexOf(n);
    if (i >= 0) bits |= 1 << i;
  }
  return bits;
}
