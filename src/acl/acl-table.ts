// The ACL view of the command table: each command spec's categories, key specs and channels, by spec id.

import type { CommandSpec } from "../commands/command-table.ts";
import builtin from "./command-acl.json" with { type: "json" };
import { categoryBits, compileKeySpec, KeyFlag, legacyKeySpec, type CommandAclData, type KeySpec } from "./command-info.ts";
import { Channels, GetKeys, type KeyedCommand } from "./keys.ts";

/** A command (or subcommand) as ACL rules and checks see it. */
export interface AclCommand extends KeyedCommand {
  /** The command spec's id: the bit in a selector's command bitmap. */
  readonly id: number;
  /** Redis' full name: "get", "config|get". */
  readonly name: string;
  readonly categories: number;
  /** AUTH, HELLO, QUIT, RESET: no user is ever refused them. */
  readonly noAuth: boolean;
  /** Module commands take no part in +@category rules, as in Redis. */
  readonly module: boolean;
  /** The command names keys (a key spec or a getkeys procedure). */
  readonly hasKeys: boolean;
  readonly channels: Channels;
  readonly parent: AclCommand | null;
  readonly subcommands: AclCommand[];
  /** For a subcommand: its own name, lower-case bytes ("get" of "config|get"). */
  readonly subName: Uint8Array;
}

/** Redis 7.0's getkeys procedures by command (its commands.def), with GENERIC's positions. */
const GETKEYS: Record<string, [GetKeys, number, number, number, number]> = {
  sort: [GetKeys.SORT, 0, 0, 0, 0], sort_ro: [GetKeys.SORT_RO, 0, 0, 0, 0], migrate: [GetKeys.MIGRATE, 0, 0, 0, 0],
  georadius: [GetKeys.GEORADIUS, 0, 0, 0, 0], georadiusbymember: [GetKeys.GEORADIUS, 0, 0, 0, 0],
  xread: [GetKeys.XREAD, 0, 0, 0, 0], xreadgroup: [GetKeys.XREAD, 0, 0, 0, 0],
  set: [GetKeys.SET, 0, 0, 0, 0], bitfield: [GetKeys.BITFIELD, 0, 0, 0, 0],
};
for (const n of ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "blmpop", "bzmpop"]) GETKEYS[n] = [GetKeys.GENERIC, 0, 2, 3, 1];
for (const n of ["lmpop", "zmpop", "sintercard", "zintercard", "zunion", "zinter", "zdiff"]) GETKEYS[n] = [GetKeys.GENERIC, 0, 1, 2, 1];
for (const n of ["zunionstore", "zinterstore", "zdiffstore"]) GETKEYS[n] = [GetKeys.GENERIC, 1, 2, 3, 1];

const CHANNELS: Record<string, Channels> = {
  subscribe: Channels.SUBSCRIBE, ssubscribe: Channels.SUBSCRIBE, psubscribe: Channels.PSUBSCRIBE,
  publish: Channels.PUBLISH, spublish: Channels.PUBLISH,
};

/** The data checked in with the source (scripts/gen-command-acl.ts), and where it came from. */
export const BUILTIN_ACL_DATA = builtin.commands as unknown as Record<string, CommandAclData>;
export const BUILTIN_ACL_SOURCE = builtin.source;

export class AclTable {
  /** Indexed by CommandSpec.id; undefined for ids of specs not in the table. */
  readonly byId: (AclCommand | undefined)[] = [];
  /** Top-level commands, in table order. */
  readonly commands: AclCommand[] = [];
  private readonly byName = new Map<string, AclCommand>();
  /** Words a selector's command bitmap needs. */
  readonly words: number;

  /**
   * `specs`: the proxy's command table (containers before their subcommands). `data`: ACL data
   * by name, Redis' own (the checked-in file, overlaid with the cluster's COMMAND reply).
   * Commands without data get no category and their legacy key positions with full access.
   */
  constructor(specs: Iterable<CommandSpec>, data: Record<string, CommandAclData> = BUILTIN_ACL_DATA) {
    let maxId = 0;
    for (const spec of specs) {
      const [top, sub] = spec.name.split("|");
      const parent = sub === undefined ? null : this.byName.get(top) ?? null;
      const d = sub === undefined ? data[top] : data[top]?.subcommands?.[sub];
      const cmd = build(spec, d, parent);
      this.byId[spec.id] = cmd;
      this.byName.set(spec.name, cmd);
      if (parent) parent.subcommands.push(cmd);
      else this.commands.push(cmd);
      maxId = Math.max(maxId, spec.id);
    }
    this.words = (maxId >>> 5) + 1;
  }

  /** By Redis' full name ("get", "config|get"), case-insensitively. */
  lookup(name: string): AclCommand | undefined {
    return this.byName.get(name.toLowerCase());
  }
}

function build(spec: CommandSpec, d: CommandAclData | undefined, parent: AclCommand | null): AclCommand {
  let keySpecs: KeySpec[];
  if (d !== undefined && d.keySpecs.length > 0) keySpecs = d.keySpecs.map(compileKeySpec);
  // No key specs but legacy key positions: a command Redis' data misses, or a Redis 6 node's.
  else if (spec.keyRange[0] > 0) keySpecs = [legacyKeySpec(...spec.keyRange)];
  else keySpecs = [];
  const gk = GETKEYS[spec.name] ?? [GetKeys.NONE, 0, 0, 0, 0];
  const hasKeySpec = keySpecs.some((k) => (k.flags & KeyFlag.NOT_KEY) === 0);
  return {
    id: spec.id, name: spec.name, arity: spec.arity,
    categories: d ? categoryBits(d.categories) : 0,
    noAuth: d ? d.flags.includes("no_auth") : false,
    module: d ? d.flags.includes("module") : false,
    keySpecs, hasKeySpec,
    variableFlags: keySpecs.some((k) => (k.flags & KeyFlag.VARIABLE_FLAGS) !== 0),
    getKeys: gk[0], generic: [gk[1], gk[2], gk[3], gk[4]],
    hasKeys: hasKeySpec || gk[0] !== GetKeys.NONE,
    channels: CHANNELS[spec.name] ?? Channels.NONE,
    parent, subcommands: [], subName: new TextEncoder().encode(spec.name.split("|")[1] ?? ""),
  };
}

/**
 * The built-in data overlaid with a node's COMMAND reply (already through fromCommandReply):
 * a command it reports replaces ours when it carries key specs (Redis 7+); otherwise only its
 * categories are taken, keeping our key specs.
 */
export function mergeAclData(base: Record<string, CommandAclData>, learned: Record<string, CommandAclData>): Record<string, CommandAclData> {
  const out: Record<string, CommandAclData> = { ...base };
  for (const [name, d] of Object.entries(learned)) {
    const old = base[name];
    out[name] = old === undefined || hasKeySpecs(d) ? d : { ...old, categories: d.categories };
  }
  return out;
}

function hasKeySpecs(d: CommandAclData): boolean {
  return d.keySpecs.length > 0 || Object.values(d.subcommands ?? {}).some(hasKeySpecs);
}
