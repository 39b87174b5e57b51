// CLIENT LIST and CLIENT KILL over predixy's own clients (a node's would show the proxy's connections).

import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeReply, Verbatim, type Proto } from "../resp/reply-writer.ts";

/** A client as these commands see it. */
export interface ListedClient {
  readonly id: number;
  proto: Proto;
  /** Its CLIENT INFO line, `cmd` naming the command it is running (or NULL). */
  describe(cmd?: string): string;
  /** Closes the connection once its earlier replies and this one are written (killing itself). */
  closeAfterReplies(): void;
  /** Closes the connection now, as Redis closes a killed client. */
  kill(): void;
}

const dec = new TextDecoder();

/** The reply to CLIENT LIST / CLIENT KILL from `me`, over `all` of this process's clients. */
export function clientCommand(name: string, f: Frame, me: ListedClient, all: Iterable<ListedClient>): Uint8Array {
  const args = Array.from({ length: f.argc - 2 }, (_, i) => dec.decode(f.arg(i + 2)));
  return name === "client|list" ? list(args, me, all) : kill(args, me, all);
}

/** CLIENT LIST [TYPE normal|pubsub|…] [ID id …]. */
function list(args: string[], me: ListedClient, all: Iterable<ListedClient>): Uint8Array {
  let ids: Set<number> | null = null;
  let type: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const opt = args[i].toLowerCase();
    if (opt === "type" && i + 1 < args.length) {
      type = args[++i].toLowerCase();
      if (!["normal", "master", "replica", "slave", "pubsub"].includes(type)) return R.errorReply(`ERR Unknown client type '${args[i]}'`);
    } else if (opt === "id" && i + 1 < args.length) {
      ids = new Set();
      for (i++; i < args.length; i++) {
        if (!/^\d+$/.test(args[i])) return R.errorReply("ERR Invalid client ID");
        ids.add(Number(args[i]));
      }
    } else {
      return R.ERR_SYNTAX;
    }
  }
  let text = "";
  for (const c of all) {
    if (ids !== null && !ids.has(c.id)) continue;
    const line = c.describe(c === me ? "client|list" : "NULL");
    if (type !== null && clientType(line) !== type) continue;
    text += `${line}\n`;
  }
  return encodeReply(new Verbatim(text), me.proto);
}

/** CLIENT KILL addr:port, or CLIENT KILL [ID id] [ADDR a:p] [LADDR a:p] [TYPE t] [USER u] [SKIPME yes/no] [MAXAGE s]. */
function kill(args: string[], me: ListedClient, all: Iterable<ListedClient>): Uint8Array {
  const filters: ((c: ListedClient, line: string) => boolean)[] = [];
  let skipMe = true;
  const old = args.length === 1;
  if (old) {
    filters.push((_c, line) => field(line, "addr") === args[0]);
  } else {
    if (args.length % 2 !== 0) return R.ERR_SYNTAX;
    for (let i = 0; i < args.length; i += 2) {
      const opt = args[i].toLowerCase(), v = args[i + 1];
      switch (opt) {
        case "id":
          if (!/^\d+$/.test(v)) return R.errorReply("ERR client-id should be greater than 0");
          filters.push((c) => c.id === Number(v));
          break;
        case "addr": filters.push((_c, line) => field(line, "addr") === v); break;
        case "laddr": filters.push((_c, line) => field(line, "laddr") === v); break;
        case "user": filters.push((_c, line) => field(line, "user") === v); break;
        case "type": {
          const t = v.toLowerCase();
          if (!["normal", "master", "replica", "slave", "pubsub"].includes(t)) return R.errorReply(`ERR Unknown client type '${v}'`);
          filters.push((_c, line) => clientType(line) === t);
          break;
        }
        case "maxage":
          if (!/^\d+$/.test(v)) return R.ERR_SYNTAX;
          filters.push((_c, line) => Number(field(line, "age")) >= Number(v));
          break;
        case "skipme":
          if (v.toLowerCase() !== "yes" && v.toLowerCase() !== "no") return R.ERR_SYNTAX;
          skipMe = v.toLowerCase() === "yes";
          break;
        default:
          return R.ERR_SYNTAX;
      }
    }
  }
  const victims: ListedClient[] = [];
  for (const c of all) {
    if (c === me && skipMe && !old) continue;
    const line = c.describe();
    if (filters.every((fn) => fn(c, line))) victims.push(c);
  }
  for (const c of victims) {
    if (c === me) c.closeAfterReplies();
    else c.kill();
  }
  if (old) return victims.length > 0 ? R.OK : R.errorReply("ERR No such client");
  return R.intReply(victims.length);
}

function field(line: string, name: string): string {
  return new RegExp(`(?:^| )${name}=(\\S*)`).exec(line)?.[1] ?? "";
}

/** normal or pubsub, from the line's flags (predixy's clients are never masters or replicas). */
function clientType(line: string): string {
  return field(line, "flags").includes("P") ? "pubsub" : "normal";
}
