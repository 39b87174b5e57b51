// ACL subcommands answered by the proxy: WHOAMI, CAT, USERS, LIST, GETUSER, LOG, DRYRUN, GENPASS, HELP.

import { randomBytes } from "node:crypto";
import { arityOk, COMMANDS } from "../commands/command-table.ts";
import * as R from "../resp/replies.ts";
import { encodeReply, ReplyMap, Simple, type ReplyValue } from "../resp/reply-writer.ts";
import { Frame } from "../resp/request-reader.ts";
import type { Acl, AclSession } from "./acl.ts";
import type { AclCommand } from "./acl-table.ts";
import { check, refusedArg, Verdict } from "./check.ts";
import { CATEGORIES } from "./command-info.ts";
import type { Selector } from "./user.ts";

const decoder = new TextDecoder();
const text = (f: Frame, i: number) => decoder.decode(f.arg(i));
/** An argument as Redis prints it with "%s": up to its first NUL byte. */
const cText = (f: Frame, i: number) => text(f, i).split("\0", 1)[0];
/** The same, as the bytes themselves (keys and channels need not be UTF-8). */
function cBytes(f: Frame, i: number): Uint8Array {
  const a = f.arg(i), nul = a.indexOf(0);
  return nul < 0 ? a : a.subarray(0, nul);
}

/** The reply to ACL <sub> (`name` is "acl|sub"), for a client the ACL check has already let through. */
export function aclCommand(name: string, f: Frame, s: AclSession, acl: Acl): Uint8Array {
  const reply = (v: ReplyValue) => encodeReply(v, s.proto);
  switch (name) {
    case "acl|whoami":
      return reply(s.user.name);
    case "acl|cat":
      return cat(f, acl, reply);
    case "acl|users":
      return reply(sortedUsers(acl).map((u) => u.name));
    case "acl|list":
      return reply(sortedUsers(acl).map((u) => `user ${u.name} ${u.describe()}`));
    case "acl|getuser":
      return getUser(text(f, 2), acl, reply);
    case "acl|log":
      return log(f, acl, reply);
    case "acl|dryrun":
      return dryRun(f, acl, reply);
    case "acl|genpass":
      return genPass(f, reply);
    case "acl|help":
      return reply(HELP.map((line) => new Simple(line)));
    default:
      return R.errorReply(`ERR command '${name.replace("|", " ").toUpperCase()}' is not supported by proxy (users are defined in predixy's configuration file)`);
  }
}

function sortedUsers(acl: Acl) {
  // Redis keeps users in a radix tree: byte order of the names.
  return [...acl.users.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

type Reply = (v: ReplyValue) => Uint8Array;

function cat(f: Frame, acl: Acl, reply: Reply): Uint8Array {
  if (f.argc === 2) return reply([...CATEGORIES]);
  const i = (CATEGORIES as readonly string[]).indexOf(text(f, 2).toLowerCase());
  if (i < 0) return R.errorReply(`ERR Unknown category '${text(f, 2).slice(0, 128)}'`);
  const names: string[] = [];
  const visit = (cmds: readonly AclCommand[]) => {
    for (const c of cmds) {
      if (c.module) continue;
      if (c.categories & (1 << i)) names.push(c.name);
      visit(c.subcommands);
    }
  };
  visit(acl.table.commands);
  return reply(names);
}

function selectorFields(sel: Selector): [string, ReplyValue][] {
  return [["commands", sel.describeCommands()], ["keys", sel.describeKeys()], ["channels", sel.describeChannels()]];
}

function getUser(name: string, acl: Acl, reply: Reply): Uint8Array {
  const u = acl.users.get(name);
  if (u === undefined) return reply(null);
  return reply(new ReplyMap([
    ["flags", u.flags()],
    ["passwords", [...u.passwords]],
    ...selectorFields(u.selectors[0]),
    ["selectors", u.selectors.slice(1).map((sel) => new ReplyMap(selectorFields(sel)))],
  ]));
}

function log(f: Frame, acl: Acl, reply: Reply): Uint8Array {
  let count = 10;
  if (f.argc === 3) {
    const arg = text(f, 2);
    if (arg.toLowerCase() === "reset") {
      acl.log.reset();
      return R.OK;
    }
    if (!/^-?(0|[1-9][0-9]{0,17})$/.test(arg)) return ERR_NOT_INTEGER;
    count = Math.max(0, Number(arg));
  }
  return reply(acl.log.list(count));
}

/** ACL DRYRUN user command args…: the verdict the user would get, without running anything. */
function dryRun(f: Frame, acl: Acl, reply: Reply): Uint8Array {
  const user = acl.users.get(text(f, 2));
  if (user === undefined) return R.errorReply(`ERR User '${cText(f, 2)}' not found`);
  // The command is arguments 3…: a frame over the same bytes.
  const g = new Frame();
  g.src = f.src;
  g.base = f.base;
  g.argc = f.argc - 3;
  g.argStart = f.argStart.slice(3, f.argc);
  g.argEnd = f.argEnd.slice(3, f.argc);
  let spec = COMMANDS.lookup(g.src, g.base + g.argStart[0], g.base + g.argEnd[0]);
  // A container alone is itself (and fails its arity); with an unknown subcommand, not found.
  if (spec !== null && spec.subcommands !== null && g.argc > 1) spec = spec.subcommands.get(text(g, 1).toLowerCase()) ?? null;
  const cmd = spec === null ? undefined : acl.table.byId[spec.id];
  if (spec === null || cmd === undefined) return R.errorReply(`ERR Command '${cText(g, 0)}' not found`);
  if (!arityOk(spec.arity, g.argc)) return R.errorReply(`ERR wrong number of arguments for '${spec.name}' command`);
  switch (check(user, cmd, g)) {
    case Verdict.OK: return R.OK;
    case Verdict.CMD: return reply(`This user has no permissions to run the '${spec.name}' command`);
    case Verdict.KEY: return reply(Buffer.concat([ACCESS_THE, cBytes(g, refusedArg), KEY_SUFFIX]));
    default: return reply(Buffer.concat([ACCESS_THE, cBytes(g, refusedArg), CHANNEL_SUFFIX]));
  }
}

function genPass(f: Frame, reply: Reply): Uint8Array {
  let bits = 256;
  if (f.argc === 3) {
    const arg = text(f, 2);
    if (!/^-?(0|[1-9][0-9]{0,17})$/.test(arg)) return ERR_NOT_INTEGER;
    bits = Number(arg);
  }
  if (bits <= 0 || bits > 4096) {
    return R.errorReply("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
  }
  return reply(randomBytes(Math.ceil(bits / 8) + 1).toString("hex").slice(0, Math.ceil(bits / 4)));
}

const ACCESS_THE = Buffer.from("This user has no permissions to access the '");
const KEY_SUFFIX = Buffer.from("' key"), CHANNEL_SUFFIX = Buffer.from("' channel");
const ERR_NOT_INTEGER = R.errorReply("ERR value is not an integer or out of range");

const HELP = [
  "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "CAT [<category>]",
  "    List all commands that belong to <category>, or all command categories",
  "    when no category is specified.",
  "DRYRUN <username> <command> [<arg> ...]",
  "    Returns whether the user can execute the given command without executing the command.",
  "GETUSER <username>",
  "    Get the user's details.",
  "GENPASS [<bits>]",
  "    Generate a secure 256-bit user password. The optional `bits` argument can",
  "    be used to specify a different size.",
  "LIST",
  "    Show users details in config file format.",
  "LOG [<count> | RESET]",
  "    Show the ACL log entries.",
  "USERS",
  "    List all the registered usernames.",
  "WHOAMI",
  "    Return the current connection username.",
  "(SETUSER, DELUSER, LOAD and SAVE are not available: predixy's users come from its configuration file.)",
  "HELP",
  "    Print this help.",
];
