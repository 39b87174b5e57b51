// The proxy's users: who a client is (AUTH, HELLO, RESET) and what it may run (the check before routing).

import type { CommandSpec } from "../commands/command-table.ts";
import type { Stats } from "../metrics/stats.ts";
import * as R from "../resp/replies.ts";
import type { Proto } from "../resp/reply-writer.ts";
import type { Frame } from "../resp/request-reader.ts";
import { AclLog } from "./acl-log.ts";
import type { AclCommand, AclTable } from "./acl-table.ts";
import { check, refusedArg, Verdict } from "./check.ts";
import { argIs } from "./keys.ts";
import { AclUser } from "./user.ts";

/** What the ACL reads and sets on a client connection. */
export interface AclSession {
  readonly id: number;
  authed: boolean;
  /** The user the client is authenticated as (the default user until AUTH). */
  user: AclUser;
  /** `user` when its commands must be checked; null when it may run anything (no check at all). */
  acl: AclUser | null;
  /** Backend credentials its commands run under (index; 0 = [cluster] username/password). */
  cred: number;
  /** The protocol its replies are encoded in. */
  readonly proto: Proto;
  /** This client as Redis' CLIENT INFO line, naming `cmd` as the command being run. */
  describe(cmd?: string): string;
}

/** A user as configured: `rules` in Redis' syntax, one rule per entry; `credential` indexes the backend credentials. */
export interface UserDefinition {
  name: string;
  rules: string[];
  credential: number;
}

/** Thrown for users whose rules Redis would refuse; the message says which and why. */
export class AclConfigError extends Error {}

export class Acl {
  readonly log = new AclLog();
  readonly users = new Map<string, AclUser>();
  private readonly cmdDenials: Uint8Array[] = [];

  /**
   * The default user is Redis': on, nopass, every command, key and channel; `password`
   * (server.password), when set, becomes its only password. Definitions named "default"
   * change it further; others create users as ACL SETUSER does (off, no permissions, then
   * their rules).
   */
  constructor(readonly table: AclTable, password: string, definitions: readonly UserDefinition[], private readonly stats: Stats) {
    const def = new AclUser("default", table);
    const base = ["on", "nopass", "~*", "&*", "+@all"];
    if (password !== "") base.push("resetpass", `>${password}`);
    if (def.setRules(base) !== null) throw new Error("default user rules");
    this.users.set("default", def);
    for (const d of definitions) {
      const u = this.users.get(d.name) ?? new AclUser(d.name, table);
      const err = u.setRules(d.rules);
      if (err !== null) throw new AclConfigError(`user "${d.name}": ${err}`);
      u.credential = d.credential;
      this.users.set(d.name, u);
    }
  }

  get defaultUser(): AclUser {
    return this.users.get("default")!;
  }

  /** True when no client can be restricted: the per-command check never runs. */
  get open(): boolean {
    return [...this.users.values()].every((u) => u.unrestricted);
  }

  /** A new or RESET connection: the default user, authenticated if it needs no password (Redis' rule). */
  attachDefault(s: AclSession): void {
    const d = this.defaultUser;
    this.become(s, d);
    s.authed = d.nopass && d.enabled;
  }

  private become(s: AclSession, u: AclUser): void {
    s.user = u;
    s.acl = u.unrestricted ? null : u;
    s.cred = u.credential;
    s.authed = true;
  }

  /**
   * The ACL verdict on a command about to be routed (only for a client whose `acl` is set):
   * null to go on, else the NOPERM reply, after logging the denial as Redis does.
   */
  deny(s: AclSession, spec: CommandSpec, f: Frame): Uint8Array | null {
    let cmd = this.table.byId[spec.id];
    if (cmd === undefined || s.acl === null) return null;
    // A container the router does not resolve (COMMAND goes to any node whole): Redis checks the subcommand.
    if (cmd.subcommands.length > 0 && f.argc > 1) cmd = subcommand(cmd, f);
    const v = check(s.acl, cmd, f);
    if (v === Verdict.OK) return null;
    const describe = s.describe(cmd.name);
    if (v === Verdict.CMD) {
      this.stats.aclDeniedCmd++;
      this.log.add(v, Buffer.from(cmd.name), s.user.name, describe);
      return (this.cmdDenials[cmd.id] ??= R.errorReply(`NOPERM this user has no permissions to run the '${cmd.name}' command`));
    }
    this.log.add(v, f.arg(refusedArg).slice(), s.user.name, describe);
    if (v === Verdict.KEY) {
      this.stats.aclDeniedKey++;
      return ERR_KEY;
    }
    this.stats.aclDeniedChannel++;
    return ERR_CHANNEL;
  }

  /**
   * Authenticates `s` as `name` (AUTH, HELLO … AUTH): +OK, or WRONGPASS for an unknown or
   * disabled user or a wrong password (logged with `via`, the command as the client sent it).
   */
  login(s: AclSession, name: string, password: Uint8Array, via: string): Uint8Array {
    const u = this.users.get(name);
    if (u !== undefined && u.accepts(password)) {
      this.become(s, u);
      return R.OK;
    }
    this.stats.aclDeniedAuth++;
    this.log.add(Verdict.AUTH, Buffer.from(via), name, s.describe(via.toLowerCase()));
    return R.ERR_WRONGPASS;
  }

  /** AUTH [user] password. */
  auth(s: AclSession, f: Frame): Uint8Array {
    if (f.argc > 3) return R.ERR_SYNTAX;
    const via = new TextDecoder().decode(f.arg(0));
    if (f.argc === 2) {
      if (this.defaultUser.nopass) return R.ERR_NOPASS;
      return this.login(s, "default", f.arg(1), via);
    }
    return this.login(s, new TextDecoder().decode(f.arg(1)), f.arg(2), via);
  }
}

/** The subcommand argument 1 names, or the container itself if none matches (the node will say it is unknown). */
function subcommand(cmd: AclCommand, f: Frame): AclCommand {
  for (const sub of cmd.subcommands) if (argIs(f, 1, sub.subName)) return sub;
  return cmd;
}

const ERR_KEY = R.errorReply("NOPERM this user has no permissions to access one of the keys used as arguments");
const ERR_CHANNEL = R.errorReply("NOPERM this user has no permissions to access one of the channels used as arguments");
