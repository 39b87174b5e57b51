// ACL users and selectors, changed by Redis' own rule syntax (ACL SETUSER semantics) and described as ACL LIST does.

import { createHash, timingSafeEqual } from "node:crypto";
import { splitArgs } from "../resp/request-reader.ts";
import type { AclCommand, AclTable } from "./acl-table.ts";
import { CATEGORIES } from "./command-info.ts";

/** Key pattern permissions (Redis' ACL_READ_PERMISSION / ACL_WRITE_PERMISSION). */
export const READ = 1, WRITE = 2;

export interface KeyPattern {
  /** The pattern as written (for descriptions). */
  readonly text: string;
  readonly bytes: Uint8Array;
  flags: number;
}

/** A set of permissions: the user's root one, or one of its "(…)" selectors. */
export class Selector {
  /** Bit i: the command with spec id i may run. */
  allowed: Uint32Array;
  /** Every command may run, none having been taken away since +@all. */
  allCommands = false;
  /** +@all was the last all-or-nothing rule (descriptions start "+@all" rather than "-@all"). */
  startsFromAll = false;
  /** Per command id, the first arguments allowed although the command is not (+select|0). */
  firstArgs: Map<number, Uint8Array[]> | null = null;
  allKeys = false;
  patterns: KeyPattern[] = [];
  allChannels = false;
  channels: Uint8Array[] = [];
  /** The command rules since the last +@all/-@all, newest last, one per command. */
  commandRules: string[] = [];

  constructor(readonly table: AclTable) {
    this.allowed = new Uint32Array(table.words);
  }

  copy(): Selector {
    const s = new Selector(this.table);
    s.allowed.set(this.allowed);
    s.allCommands = this.allCommands;
    s.startsFromAll = this.startsFromAll;
    s.firstArgs = this.firstArgs && new Map([...this.firstArgs].map(([k, v]) => [k, [...v]]));
    s.allKeys = this.allKeys;
    s.patterns = this.patterns.map((p) => ({ ...p }));
    s.allChannels = this.allChannels;
    s.channels = [...this.channels];
    s.commandRules = [...this.commandRules];
    return s;
  }

  can(id: number): boolean {
    return (this.allowed[id >>> 5] & (1 << (id & 31))) !== 0;
  }

  private setBit(id: number, on: boolean): void {
    if (on) this.allowed[id >>> 5] |= 1 << (id & 31);
    else {
      this.allowed[id >>> 5] &= ~(1 << (id & 31));
      this.allCommands = false;
    }
  }

  /** A command and its subcommands. */
  private change(cmd: AclCommand, allow: boolean): void {
    this.setBit(cmd.id, allow);
    this.firstArgs?.delete(cmd.id);
    for (const sub of cmd.subcommands) this.setBit(sub.id, allow);
  }

  private changeCategory(commands: readonly AclCommand[], bit: number, allow: boolean): void {
    for (const cmd of commands) {
      if (cmd.module) continue;
      if (cmd.categories & bit) this.change(cmd, allow);
      if (cmd.subcommands.length > 0) this.changeCategory(cmd.subcommands, bit, allow);
    }
  }

  private noteCommandRule(rule: string, name: string): void {
    // One rule per command: a later +x or -x replaces an earlier one (as Redis 7.2 describes them).
    this.commandRules = this.commandRules.filter((r) => r.slice(1) !== name);
    this.commandRules.push(rule);
  }

  /** Applies one selector rule (Redis' ACLSetSelector); returns an error message or null. */
  apply(op: string): string | null {
    const low = op.toLowerCase();
    if (low === "allkeys" || low === "~*") {
      this.allKeys = true;
      this.patterns = [];
    } else if (low === "resetkeys") {
      this.allKeys = false;
      this.patterns = [];
    } else if (low === "allchannels" || low === "&*") {
      this.allChannels = true;
      this.channels = [];
    } else if (low === "resetchannels") {
      this.allChannels = false;
      this.channels = [];
    } else if (low === "allcommands" || low === "+@all") {
      this.allowed.fill(0xffffffff);
      this.allCommands = this.startsFromAll = true;
      this.firstArgs = null;
      this.commandRules = [];
    } else if (low === "nocommands" || low === "-@all") {
      this.allowed.fill(0);
      this.allCommands = this.startsFromAll = false;
      this.firstArgs = null;
      this.commandRules = [];
    } else if (op[0] === "~" || op[0] === "%") {
      return this.addKeyPattern(op);
    } else if (op[0] === "&") {
      if (this.allChannels) return ERR_CHANNEL_AFTER_ALL;
      const pat = op.slice(1);
      if (hasSpaces(pat)) return ERR_SYNTAX;
      const bytes = new TextEncoder().encode(pat);
      if (!this.channels.some((c) => equalBytes(c, bytes))) this.channels.push(bytes);
    } else if ((op[0] === "+" || op[0] === "-") && op[1] !== "@") {
      return this.commandRule(op);
    } else if ((op[0] === "+" || op[0] === "-") && op[1] === "@") {
      const i = (CATEGORIES as readonly string[]).indexOf(low.slice(2));
      if (i < 0) return ERR_UNKNOWN;
      this.changeCategory(this.table.commands, 1 << i, op[0] === "+");
      this.commandRules.push(low);
    } else {
      return ERR_SYNTAX;
    }
    return null;
  }

  private addKeyPattern(op: string): string | null {
    if (this.allKeys) return ERR_KEY_AFTER_ALL;
    let flags = 0, offset = 1;
    if (op[0] === "%") {
      // %R~, %W~, %RW~: a permission letter at most once each, then '~'. (Redis 7.0 also took
      // "%R" and "%~x", making a pattern no command can use or crashing on describing it.)
      for (; offset < op.length; offset++) {
        const c = op[offset].toUpperCase();
        if (c === "R" && !(flags & READ)) flags |= READ;
        else if (c === "W" && !(flags & WRITE)) flags |= WRITE;
        else if (op[offset] === "~") break;
        else return ERR_SYNTAX;
      }
      if (offset === op.length || flags === 0) return ERR_SYNTAX;
      offset++;
    } else {
      flags = READ | WRITE;
    }
    const text = op.slice(offset);
    if (hasSpaces(text)) return ERR_SYNTAX;
    const old = this.patterns.find((p) => p.text === text);
    if (old) old.flags |= flags;
    else this.patterns.push({ text, bytes: new TextEncoder().encode(text), flags });
    return null;
  }

  private commandRule(op: string): string | null {
    const allow = op[0] === "+";
    const name = op.slice(1).toLowerCase();
    const bar = name.lastIndexOf("|");
    if (!allow || bar < 0) {
      const cmd = lookup(this.table, name);
      if (cmd === undefined) return ERR_UNKNOWN;
      this.change(cmd, allow);
      this.noteCommandRule(`${op[0]}${name}`, name);
      return null;
    }
    const cmd = lookup(this.table, name.slice(0, bar));
    if (cmd === undefined) return ERR_UNKNOWN;
    if (cmd.parent !== null) return ERR_FIRSTARG_OF_SUB;
    const sub = name.slice(bar + 1);
    if (sub === "") return ERR_SYNTAX;
    if (cmd.subcommands.length > 0) {
      const subCmd = lookup(this.table, name);
      if (subCmd === undefined) return ERR_UNKNOWN;
      this.change(subCmd, true);
    } else {
      // +select|0: one first argument of an otherwise blocked command (deprecated in Redis).
      this.firstArgs ??= new Map();
      const list = this.firstArgs.get(cmd.id) ?? [];
      const bytes = new TextEncoder().encode(sub);
      if (!list.some((a) => equalBytes(a, bytes))) list.push(bytes);
      this.firstArgs.set(cmd.id, list);
    }
    this.noteCommandRule(`+${name}`, name);
    return null;
  }

  /** "~* &* +@all" as ACL LIST shows a selector. */
  describe(): string {
    const parts: string[] = [];
    if (this.allKeys) parts.push("~*");
    else for (const p of this.patterns) parts.push(patternText(p));
    if (this.allChannels) parts.push("&*");
    else parts.push("resetchannels", ...this.channels.map((c) => `&${new TextDecoder().decode(c)}`));
    parts.push(this.describeCommands());
    return parts.join(" ");
  }

  describeCommands(): string {
    return [this.startsFromAll ? "+@all" : "-@all", ...this.commandRules].join(" ");
  }

  describeKeys(): string {
    return this.allKeys ? "~*" : this.patterns.map(patternText).join(" ");
  }

  describeChannels(): string {
    return this.allChannels ? "&*" : this.channels.map((c) => `&${new TextDecoder().decode(c)}`).join(" ");
  }
}

function patternText(p: KeyPattern): string {
  return `${p.flags === READ ? "%R" : p.flags === WRITE ? "%W" : ""}~${p.text}`;
}

/** Redis' ACLLookupCommand: "name" or "container|sub", nothing deeper. */
function lookup(table: AclTable, name: string): AclCommand | undefined {
  return name.split("|").length > 2 ? undefined : table.lookup(name);
}

/** A user: flags, password hashes and selectors (the first is the root one). */
export class AclUser {
  enabled = false;
  nopass = false;
  /** "sanitize-payload" / "skip-sanitize-payload", shown as Redis shows them (no effect in a proxy). */
  sanitize: "" | "sanitize-payload" | "skip-sanitize-payload" = "";
  /** SHA-256 hex digests. */
  passwords: string[] = [];
  selectors: Selector[];
  /** Index of the backend credentials this user's commands run under (0: [cluster] username/password). */
  credential = 0;

  constructor(readonly name: string, readonly table: AclTable) {
    this.selectors = [new Selector(table)];
  }

  /** May run every command on every key and channel: the per-command check can be skipped. */
  get unrestricted(): boolean {
    return this.selectors.some((s) => s.allCommands && s.allKeys && s.allChannels);
  }

  copy(): AclUser {
    const u = new AclUser(this.name, this.table);
    u.enabled = this.enabled;
    u.nopass = this.nopass;
    u.sanitize = this.sanitize;
    u.passwords = [...this.passwords];
    u.selectors = this.selectors.map((s) => s.copy());
    u.credential = this.credential;
    return u;
  }

  /**
   * Applies rules as ACL SETUSER does: all or nothing. Arguments may be split inside a
   * "(…)" selector, as on Redis' command line. Returns Redis' error message, or null.
   */
  setRules(args: readonly string[]): string | null {
    const merged: string[] = [];
    let open: string | null = null, openArg = "";
    for (const a of args) {
      if (open === null && a.startsWith("(") && !a.endsWith(")")) {
        open = a;
        openArg = a;
      } else if (open !== null) {
        open += ` ${a}`;
        if (a.endsWith(")")) {
          merged.push(open);
          open = null;
        }
      } else {
        merged.push(a);
      }
    }
    if (open !== null) return `Unmatched parenthesis in acl selector starting at '${openArg}'.`;
    const staged = this.copy();
    for (const op of merged) {
      const err = staged.apply(op);
      if (err !== null) return `Error in ACL SETUSER modifier '${op}': ${err}`;
    }
    Object.assign(this, staged);
    return null;
  }

  /** One rule (Redis' ACLSetUser); returns the error message or null. */
  private apply(op: string): string | null {
    if (op === "") return null;
    const low = op.toLowerCase();
    switch (low) {
      case "on": this.enabled = true; return null;
      case "off": this.enabled = false; return null;
      case "skip-sanitize-payload": this.sanitize = "skip-sanitize-payload"; return null;
      case "sanitize-payload": this.sanitize = "sanitize-payload"; return null;
      case "nopass": this.nopass = true; this.passwords = []; return null;
      case "resetpass": this.nopass = false; this.passwords = []; return null;
      case "clearselectors": this.selectors = this.selectors.slice(0, 1); return null;
      case "reset":
        this.nopass = false;
        this.passwords = [];
        this.enabled = false;
        this.sanitize = "sanitize-payload";
        this.selectors = [new Selector(this.table)];
        return null;
    }
    if (op[0] === ">" || op[0] === "#") {
      const hash = op[0] === ">" ? hashPassword(op.slice(1)) : op.slice(1);
      if (!HASH.test(hash)) return ERR_BAD_HASH;
      if (!this.passwords.includes(hash)) this.passwords.push(hash);
      this.nopass = false;
      return null;
    }
    if (op[0] === "<" || op[0] === "!") {
      const hash = op[0] === "<" ? hashPassword(op.slice(1)) : op.slice(1);
      if (!HASH.test(hash)) return ERR_BAD_HASH;
      const i = this.passwords.indexOf(hash);
      if (i < 0) return ERR_NO_SUCH_PASSWORD;
      this.passwords.splice(i, 1);
      return null;
    }
    if (op[0] === "(" && op.endsWith(")")) {
      const s = new Selector(this.table);
      const bytes = new TextEncoder().encode(op.slice(1, -1));
      const args = splitArgs(bytes, 0, bytes.length);
      if (args === null) return ERR_SYNTAX;
      for (const a of args) {
        const err = s.apply(new TextDecoder().decode(Uint8Array.from(a)));
        if (err !== null) return err;
      }
      this.selectors.push(s);
      return null;
    }
    return this.selectors[0].apply(op);
  }

  /** Whether `password` opens this user (enabled, and nopass or a matching hash), in constant time per hash. */
  accepts(password: string | Uint8Array): boolean {
    if (!this.enabled) return false;
    if (this.nopass) return true;
    const given = Buffer.from(hashPassword(password));
    let ok = false;
    for (const h of this.passwords) ok = timingSafeEqual(given, Buffer.from(h)) || ok;
    return ok;
  }

  flags(): string[] {
    const out = [this.enabled ? "on" : "off"];
    if (this.nopass) out.push("nopass");
    if (this.sanitize) out.push(this.sanitize);
    return out;
  }

  /** The rules after "user <name> " in ACL LIST. */
  describe(): string {
    const parts = [...this.flags(), ...this.passwords.map((h) => `#${h}`), this.selectors[0].describe()];
    let out = parts.join(" ");
    for (const s of this.selectors.slice(1)) out += ` (${s.describe()})`;
    return out;
  }
}

export function hashPassword(password: string | Uint8Array): string {
  return createHash("sha256").update(password).digest("hex");
}

function hasSpaces(s: string): boolean {
  return /[\s\0]/.test(s);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const HASH = /^[0-9a-f]{64}$/;

// Redis' ACLSetUserStringError wording.
const ERR_SYNTAX = "Syntax error";
const ERR_UNKNOWN = "Unknown command or category name in ACL";
const ERR_KEY_AFTER_ALL = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
const ERR_CHANNEL_AFTER_ALL = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
const ERR_NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist";
const ERR_BAD_HASH = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
const ERR_FIRSTARG_OF_SUB = "Allowing first-arg of a subcommand is not supported";
