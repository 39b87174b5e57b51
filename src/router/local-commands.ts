// Commands the proxy answers itself: connection state stays in the proxy, never on a shared backend.

import { aclCommand } from "../acl/acl-command.ts";
import type { Acl, AclSession } from "../acl/acl.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeReply, ReplyMap, Verbatim, type Proto } from "../resp/reply-writer.ts";
import { COMMANDS } from "../commands/command-table.ts";
import { answerAdmin, type AdminContext } from "./admin-commands.ts";

/** The per-client state local commands read and change. */
export interface LocalSession extends AclSession {
  name: string;
  /** The protocol the client chose with HELLO: replies are encoded in it. */
  proto: Proto;
  /** This client as Redis' CLIENT INFO line; `cmd`: the command it is running. */
  describe(cmd?: string): string;
  /** The address and port this client connected to (what the cluster façade advertises by default). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Close the connection once every earlier reply and this one are written. */
  closeAfterReplies(): void;
}

/** What local commands need from the process: its users and its admin views. */
export interface LocalContext {
  acl: Acl;
  admin: AdminContext;
}

const decoder = new TextDecoder();
const text = (f: Frame, i: number) => decoder.decode(f.arg(i));
/** A master without replicas: what predixy is to its clients. */
const ROLE = new TextEncoder().encode("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");

export const RESET = new TextEncoder().encode("+RESET\r\n");

/** RESET's effect on what predixy keeps of a client (a session's own state is its business). */
export function resetSession(s: LocalSession, acl: Acl): void {
  s.name = "";
  s.proto = 2;
  acl.attachDefault(s);
}

/**
 * The reply to a LOCAL command (`name` as in the command table); may change `s`. A promise when
 * the answer needs every worker process (SLOWLOG, LATENCY HISTOGRAM …).
 */
export function answerLocally(name: string, f: Frame, s: LocalSession, ctx: LocalContext): Uint8Array | Promise<Uint8Array> {
  const acl = ctx.acl;
  switch (name) {
    case "ping":
      if (f.argc > 2) return R.errorReply("ERR wrong number of arguments for 'ping' command");
      return f.argc > 1 ? R.bulkReply(f.arg(1)) : R.PONG;
    case "echo":
      return R.bulkReply(f.arg(1));
    case "quit":
      s.closeAfterReplies();
      return R.OK;
    case "select": {
      // As a cluster node answers: an integer in Redis' strict form first, then only db 0.
      const db = text(f, 1);
      if (!/^(0|-?[1-9][0-9]{0,17})$/.test(db)) return ERR_NOT_INTEGER;
      return db === "0" ? R.OK : R.ERR_SELECT;
    }
    case "readonly":
    case "readwrite":
    case "asking":
      // From cluster-mode clients: predixy sends ASKING and READONLY to the nodes itself.
      return R.OK;
    case "role":
      return ROLE;
    case "reset":
      resetSession(s, acl);
      return RESET;
    case "auth":
      return acl.auth(s, f);
    case "hello":
      return hello(f, s, acl);
    case "client|setname": {
      if (!validName(f.arg(2))) return ERR_CLIENT_NAME;
      s.name = text(f, 2);
      return R.OK;
    }
    case "client|getname":
      return encodeReply(s.name || null, s.proto);
    case "client|id":
      return R.intReply(s.id);
    case "client|setinfo":
      return R.OK;
    case "client|info":
      return encodeReply(new Verbatim(`${s.describe()}\n`), s.proto);
    case "command|count":
      return R.intReply(COMMANDS.size);
    default:
      if (name.startsWith("acl|")) return aclCommand(name, f, s, acl);
      return answerAdmin(name, f, ctx.admin, s.proto);
  }
}

const ERR_NOT_INTEGER = R.errorReply("ERR value is not an integer or out of range");
const ERR_CLIENT_NAME = R.errorReply("ERR Client names cannot contain spaces, newlines or special characters.");

/** Redis allows '!' to '~' only. */
function validName(b: Uint8Array): boolean {
  for (const c of b) if (c < 33 || c > 126) return false;
  return true;
}

const ERR_HELLO_NOAUTH = R.errorReply("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");

/** HELLO [protover [AUTH user pass] [SETNAME name]]: predixy's own map, in the protocol chosen. */
function hello(f: Frame, s: LocalSession, acl: Acl): Uint8Array {
  let i = 1, proto = s.proto;
  if (f.argc > 1) {
    const v = text(f, 1);
    if (!/^-?\d+$/.test(v)) return R.errorReply("ERR Protocol version is not an integer or out of range");
    if (v !== "2" && v !== "3") return R.errorReply("NOPROTO unsupported protocol version");
    proto = v === "3" ? 3 : 2;
    i = 2;
  }
  // Every option is checked before any takes effect, as Redis does.
  let name: string | null = null;
  let credentials: [string, Uint8Array] | null = null;
  for (; i < f.argc; i++) {
    const opt = text(f, i).toLowerCase();
    if (opt === "auth" && i + 2 < f.argc) {
      credentials = [text(f, i + 1), f.arg(i + 2)];
      i += 2;
    } else if (opt === "setname" && i + 1 < f.argc) {
      if (!validName(f.arg(++i))) return ERR_CLIENT_NAME;
      name = text(f, i);
    } else {
      return R.errorReply(`ERR Syntax error in HELLO option '${text(f, i)}'`);
    }
  }
  if (credentials !== null) {
    const r = acl.login(s, credentials[0], credentials[1], text(f, 0));
    if (r !== R.OK) return r;
  }
  if (!s.authed) return ERR_HELLO_NOAUTH;
  if (name !== null) s.name = name;
  s.proto = proto;
  return encodeReply(new ReplyMap([
    ["server", "redis"], ["version", "7.0.0"], ["proto", proto], ["id", s.id], ["mode", "standalone"],
    ["role", "master"], ["modules", []],
  ]), proto);
}
