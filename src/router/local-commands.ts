// Commands the proxy answers itself: connection state stays in the proxy, never on a shared backend.

import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { COMMANDS } from "../commands/command-table.ts";
import type { Stats } from "../metrics/stats.ts";
import { VERSION } from "../version.ts";

/** The per-client state local commands read and change. */
export interface LocalSession {
  readonly id: number;
  authed: boolean;
  name: string;
  /** MULTI was refused and no EXEC or DISCARD has come since: commands are refused, not run. */
  multiRefused: boolean;
  /** This client as Redis' CLIENT INFO line. */
  describe(): string;
  /** The address and port this client connected to (what the cluster façade advertises by default). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Close the connection once every earlier reply and this one are written. */
  closeAfterReplies(): void;
}

const decoder = new TextDecoder();
const text = (f: Frame, i: number) => decoder.decode(f.arg(i));
const RESET = new TextEncoder().encode("+RESET\r\n");
/** A master without replicas: what predixy is to its clients. */
const ROLE = new TextEncoder().encode("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");

/** The reply to a LOCAL command (`name` as in the command table); may change `s`. */
export function answerLocally(name: string, f: Frame, s: LocalSession, password: string): Uint8Array {
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
      s.name = "";
      s.multiRefused = false;
      s.authed = password === "";
      return RESET;
    case "auth":
      if (f.argc > 3) return R.ERR_SYNTAX;
      return auth(s, password, f.argc === 2 ? null : text(f, 1), text(f, f.argc - 1));
    case "hello":
      return hello(f, s, password);
    case "client|setname": {
      if (!validName(f.arg(2))) return ERR_CLIENT_NAME;
      s.name = text(f, 2);
      return R.OK;
    }
    case "client|getname":
      return s.name ? R.bulkReply(new TextEncoder().encode(s.name)) : R.NULL_BULK;
    case "client|id":
      return R.intReply(s.id);
    case "client|setinfo":
      return R.OK;
    case "client|info":
      return R.bulkReply(new TextEncoder().encode(`${s.describe()}\n`));
    case "command|count":
      return R.intReply(COMMANDS.size);
    default:
      return R.errorReply(`ERR command '${name}' is not supported by proxy`);
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

function auth(s: LocalSession, password: string, user: string | null, pass: string): Uint8Array {
  // Without a password the default user takes any (Redis' "nopass"); AUTH <pass> alone is an error.
  if (password === "") return user === null ? R.ERR_NOPASS : user === "default" ? R.OK : R.ERR_WRONGPASS;
  user ??= "default";
  if (user !== "default" || pass !== password) return R.ERR_WRONGPASS;
  s.authed = true;
  return R.OK;
}

/** HELLO [2 [AUTH user pass] [SETNAME name]]: RESP2 only until RESP3 clients are supported. */
function hello(f: Frame, s: LocalSession, password: string): Uint8Array {
  let i = 1;
  if (f.argc > 1) {
    const proto = text(f, 1);
    if (proto !== "2") {
      if (proto === "3") return R.errorReply("NOPROTO sorry, this protocol version is not supported.");
      return R.errorReply("ERR Protocol version is not an integer or out of range");
    }
    i = 2;
  }
  // Every option is checked before any takes effect, as Redis does.
  let name: string | null = null;
  let credentials: [string, string] | null = null;
  for (; i < f.argc; i++) {
    const opt = text(f, i).toLowerCase();
    if (opt === "auth" && i + 2 < f.argc) {
      credentials = [text(f, i + 1), text(f, i + 2)];
      i += 2;
    } else if (opt === "setname" && i + 1 < f.argc) {
      if (!validName(f.arg(++i))) return ERR_CLIENT_NAME;
      name = text(f, i);
    } else {
      return R.errorReply(`ERR Syntax error in HELLO option '${text(f, i)}'`);
    }
  }
  if (credentials !== null) {
    const r = auth(s, password, credentials[0], credentials[1]);
    if (r !== R.OK) return r;
  }
  if (!s.authed) return ERR_HELLO_NOAUTH;
  if (name !== null) s.name = name;
  const fields: [string, string | number][] = [
    ["server", "redis"], ["version", "7.0.0"], ["proto", 2], ["id", s.id], ["mode", "standalone"], ["role", "master"],
  ];
  let out = `*${fields.length * 2 + 2}\r\n`;
  for (const [k, v] of fields) {
    out += `$${k.length}\r\n${k}\r\n`;
    out += typeof v === "number" ? `:${v}\r\n` : `$${v.length}\r\n${v}\r\n`;
  }
  out += "$7\r\nmodules\r\n*0\r\n";
  return new TextEncoder().encode(out);
}

function memoryRows(): [string, string | number][] {
  const rss = process.memoryUsage.rss();
  const human = rss >= 1 << 30 ? `${(rss / (1 << 30)).toFixed(2)}G` : `${(rss / (1 << 20)).toFixed(2)}M`;
  return [["used_memory", rss], ["used_memory_human", human], ["used_memory_rss", rss]];
}

/**
 * INFO as Redis formats it, for the sections the proxy answers for itself (the keyspace comes
 * from the nodes: see router/fan-out.ts). No section names the default set.
 */
export function proxyInfo(stats: Stats, wanted: string[]): string {
  const uptime = Math.floor((Date.now() - stats.startedAt) / 1000);
  const sections: Record<string, [string, string | number][]> = {
    server: [
      ["redis_version", "7.0.0"], ["predixy_version", VERSION], ["redis_mode", "standalone"],
      ["process_id", process.pid], ["uptime_in_seconds", uptime], ["uptime_in_days", Math.floor(uptime / 86400)],
    ],
    // blocked_clients and used_memory: what redis-cli --stat and dashboards read. Blocking
    // commands are refused, so none block; the proxy's memory is its resident set.
    clients: [["connected_clients", stats.connectedClients], ["blocked_clients", 0],
      ["clients_paused_for_memory", stats.clientsPausedForMemory], ["parked_commands", stats.parkedCommands]],
    // Redis 7's names for what clients make the server hold, and its maxmemory-clients.
    memory: [...memoryRows(), ["mem_clients_normal", stats.clientMemory], ["maxmemory_clients", stats.maxClientMemory]],
    stats: [
      ["total_connections_received", stats.totalConnections], ["rejected_connections", stats.rejectedConnections],
      ["total_commands_processed", stats.commands], ["protocol_errors", stats.protocolErrors],
      ["client_query_buffer_limit_disconnections", stats.inputLimitDisconnections],
      ["client_output_buffer_limit_disconnections", stats.outputLimitDisconnections],
      ["evicted_clients", stats.evictedClients], ["client_memory_pauses", stats.memoryPauses],
      ["cluster_redirects", stats.redirects], ["cluster_retries", stats.retries],
    ],
    persistence: [["loading", 0]],
    // 1: the cluster façade answers CLUSTER SLOTS etc. (redis-py's RedisCluster checks this first).
    cluster: [["cluster_enabled", 1]],
  };
  const all = wanted.length === 0 || wanted.some((w) => w === "all" || w === "default" || w === "everything");
  const parts: string[] = [];
  for (const name of all ? Object.keys(sections) : wanted) {
    const rows = sections[name];
    if (!rows) continue;
    parts.push(`# ${name[0].toUpperCase()}${name.slice(1)}\r\n${rows.map(([k, v]) => `${k}:${v}`).join("\r\n")}\r\n`);
  }
  return parts.join("\r\n");
}
