// From the validated config to what enforces it: command policy on the command table, users, backend credentials.

import type { CommandTable } from "../commands/command-table.ts";
import type { Config } from "../config/config.ts";
import type { Stats } from "../metrics/stats.ts";
import { Acl, AclConfigError, type UserDefinition } from "./acl.ts";
import { AclTable } from "./acl-table.ts";
import type { CommandAclData } from "./command-info.ts";

export interface BackendCredential {
  username: string;
  password: string;
}

/**
 * The distinct backend credentials: [0] is [cluster] username/password, then each user's own.
 * Users with the same credentials share them (and so the node connections opened with them).
 */
export function backendCredentials(cfg: Config): { list: BackendCredential[]; ofUser: Map<string, number> } {
  const list: BackendCredential[] = [{ username: cfg.cluster.username, password: cfg.cluster.password }];
  const ofUser = new Map<string, number>();
  for (const u of cfg.users) {
    if (u.clusterPassword === "") continue;
    let i = list.findIndex((c) => c.username === u.clusterUsername && c.password === u.clusterPassword);
    if (i < 0) i = list.push({ username: u.clusterUsername, password: u.clusterPassword }) - 1;
    ofUser.set(u.name, i);
  }
  return { list, ofUser };
}

/**
 * Applies [commands] to `table`: renames (Redis' rename-command), then the deny list.
 * Returns the problems (unknown names, clashing renames); the table is changed only if none.
 */
export function applyCommandPolicy(table: CommandTable, commands: Config["commands"]): string[] {
  const problems: string[] = [];
  const enc = new TextEncoder();
  const known = (name: string) => {
    const [top, sub] = name.toLowerCase().split("|", 2);
    const b = enc.encode(top);
    const spec = table.lookup(b, 0, b.length);
    return spec !== null && (sub === undefined || spec.subcommands?.has(sub) === true);
  };
  for (const name of commands.deny) if (!known(name)) problems.push(`commands.deny: unknown command "${name}"`);
  const targets = new Set<string>();
  const renamedAway = new Set(Object.keys(commands.rename).map((k) => k.toLowerCase()));
  for (const [from, to] of Object.entries(commands.rename)) {
    if (from.includes("|") || !known(from)) problems.push(`commands.rename: unknown command "${from}"`);
    if (to === "") continue;
    const low = to.toLowerCase();
    if (/[\s|\0]/.test(to)) problems.push(`commands.rename: "${to}" is not a valid command name`);
    else if (targets.has(low) || (known(low) && !renamedAway.has(low))) {
      problems.push(`commands.rename: cannot rename "${from}" to "${to}": that name is taken`);
    }
    targets.add(low);
  }
  if (problems.length > 0) return problems;
  // Deny first: it names commands by their own names, which renaming hides.
  for (const name of commands.deny) table.deny(name);
  // Two passes, so that swapping names (a → b, b → a) works.
  const renamed = Object.entries(commands.rename).map(([from, to]) => [from, to, `\0${from}`]);
  for (const [from, , tmp] of renamed) table.rename(from, tmp);
  for (const [, to, tmp] of renamed) table.rename(tmp, to);
  return [];
}

/** The users of `cfg` over `table`'s commands; throws AclConfigError naming the user and rule Redis would refuse. */
export function buildAcl(cfg: Config, table: CommandTable, data: Record<string, CommandAclData> | undefined, stats: Stats): Acl {
  const { ofUser } = backendCredentials(cfg);
  const defs: UserDefinition[] = cfg.users.map((u) => ({ name: u.name, rules: u.rules, credential: ofUser.get(u.name) ?? 0 }));
  return new Acl(new AclTable(table.all(), data), cfg.server.password, defs, stats);
}

export { AclConfigError };
