// Config file (TOML or YAML) → validated, typed Config: one schema table drives defaults, checks and errors.

import { readFileSync, statSync } from "node:fs";
import { isIP, isIPv4 } from "node:net";
import { formatOf, readDocument, type ConfigFormat } from "./syntax.ts";

/** A backend address as given in `cluster.entry_points`; IPv6 hosts carry no brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** Where read-only commands go: see docs/config.md, `read_from`. */
export type ReadFrom = "master" | "prefer-replica" | "replica" | "any";

/** Log levels, named as LogTape names them. */
export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";
export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];
export type LogFormat = "text" | "json";

/**
 * The validated configuration. Every field is present (defaults filled in) and within the
 * ranges documented in docs/config.md; consumers need not re-check.
 */
export interface Config {
  server: {
    bind: string;
    /** 0: no plaintext listener (tls.port only). */
    port: number;
    maxClients: number;
    /** Empty = clients need no AUTH. */
    password: string;
    /** 0 = never close idle clients. */
    clientIdleTimeoutMs: number;
    clientWriteTimeoutMs: number;
    /** What the cluster façade advertises; "" = the address each client connected to. */
    announceHost: string;
    /** 0 = the port each client connected to. */
    announcePort: number;
    /** How long SIGTERM/SIGINT wait for clients' replies before closing them; 0 = not at all. */
    drainTimeoutMs: number;
  };
  cluster: {
    entryPoints: HostPort[];
    /** Non-empty only together with `password`. */
    username: string;
    password: string;
    refreshIntervalMs: number;
    connectTimeoutMs: number;
    commandTimeoutMs: number;
    retryTimeoutMs: number;
    maxRedirects: number;
    /** 0 = no PINGs on idle connections. */
    healthCheckIntervalMs: number;
    healthCheckTimeoutMs: number;
    readFrom: ReadFrom;
    /** Replication offset bytes; 0 = lag not checked. */
    maxReplicaLag: number;
    /** Connect to the nodes over TLS (their tls-port; CLUSTER SLOTS then names TLS ports). */
    tls: boolean;
    /** Empty: the system's trusted CAs. */
    tlsCaFile: string;
    /** Client certificate for nodes run with tls-auth-clients; both or neither. */
    tlsCertFile: string;
    tlsKeyFile: string;
    /** Name every node certificate must carry; empty: the address connected to. */
    tlsServerName: string;
    /** "full": chain and name; "ca": chain only (as Redis nodes check each other); "none": anything. */
    tlsVerify: "full" | "ca" | "none";
  };
  tls: {
    /** 0 = no TLS listener. */
    port: number;
    certFile: string;
    keyFile: string;
    keyPassphrase: string;
    /** CA for client certificates. */
    caFile: string;
    authClients: "no" | "optional" | "yes";
    minVersion: "TLSv1.2" | "TLSv1.3";
  };
  commands: {
    /** Commands ("name" or "container|sub") refused to every client. */
    deny: string[];
    /** Redis' rename-command: old name → new name ("" disables). */
    rename: Record<string, string>;
  };
  /** [[users]]: ACL users besides the default one (or changing it, when named "default"). */
  users: UserConfig[];
  pool: {
    size: number;
    /** <= size. */
    minIdle: number;
    maxIdle: number;
    maxPinned: number;
  };
  performance: {
    workerThreads: number;
    bufferSize: number;
    batchSize: number;
    maxClientInputBytes: number;
    maxClientOutputBytes: number;
    /** What all clients together may make the proxy hold, bytes; 0 = no total budget. */
    maxMemory: number;
    maxPubsubOutputBytes: number;
    streamRetainBytes: number;
  };
  log: {
    level: LogLevel;
    format: LogFormat;
  };
  metrics: {
    /** Off: no per-command or per-node recording (for measuring its cost). */
    enabled: boolean;
    /** µs; < 0 disables the slowlog. */
    slowlogLogSlowerThan: number;
    slowlogMaxLen: number;
    /** Top-K size of the hot-key lists; 0 = off. */
    hotkeys: number;
    hotkeysSampleRate: number;
    latencyPercentiles: number[];
  };
  admin: {
    bind: string;
    /** 0 = no admin HTTP server. */
    port: number;
  };
}

/** One [[users]] entry, secrets resolved. */
export interface UserConfig {
  name: string;
  /** ACL rules in Redis' syntax, one per entry (a `password` becomes ">password" first). */
  rules: string[];
  /** Backend credentials for this user's commands; empty username and password: [cluster]'s. */
  clusterUsername: string;
  clusterPassword: string;
}

/**
 * Invalid configuration. `problems` holds one entry per fault, each naming its key
 * (`server.port: …`, `unknown key "server.prot"`); the message is those joined by newlines.
 * A TOML or YAML syntax error is the single problem `file:line:column: …`, followed by the lines around it.
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[]) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(list.join("\n"));
    this.name = "ConfigError";
    this.problems = list;
  }
}

// ---- rules: each checks one TOML/YAML value, records a problem and returns undefined if bad ----

type Check<T> = (value: unknown, key: string, problems: string[]) => T | undefined;

/** One key's rule. `default` undefined = required. */
export interface Rule<T = unknown> {
  readonly default: T | undefined;
  readonly check: Check<T>;
}

// Node and Bun timers fire after 1 ms when given more than 2^31-1 ms, so a "24.9 day" timeout
// would spin; cap every *_ms key there.
const TIMER_MAX = 2 ** 31 - 1;

function int(min: number, max: number, def: number): Rule<number> {
  const expects =
    max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return {
    default: def,
    // Integers arrive as bigint (see syntax.ts), so a float such as 1.0 is told apart.
    check: (v, key, problems) => {
      if (typeof v === "bigint" && v >= BigInt(min) && v <= BigInt(max)) return Number(v);
      problems.push(`${key}: expected ${expects}, got ${describe(v)}`);
      return undefined;
    },
  };
}

function str(def: string): Rule<string> {
  return {
    default: def,
    check: (v, key, problems) => {
      if (typeof v === "string") return v;
      problems.push(`${key}: expected a string, got ${describe(v)}`);
      return undefined;
    },
  };
}

function bool(def: boolean): Rule<boolean> {
  return {
    default: def,
    check: (v, key, problems) => {
      if (typeof v === "boolean") return v;
      problems.push(`${key}: expected true or false, got ${describe(v)}`);
      return undefined;
    },
  };
}

function stringList(def: readonly string[]): Rule<string[]> {
  return {
    default: [...def],
    check: (v, key, problems) => {
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return [...v] as string[];
      problems.push(`${key}: expected an array of strings, got ${describe(v)}`);
      return undefined;
    },
  };
}

function stringMap(): Rule<Record<string, string>> {
  return {
    default: {},
    check: (v, key, problems) => {
      if (isTable(v) && Object.values(v).every((x) => typeof x === "string")) return { ...(v as Record<string, string>) };
      problems.push(`${key}: expected a table of strings, got ${describe(v)}`);
      return undefined;
    },
  };
}

/**
 * A secret: the string itself, or `{ env = "NAME" }` (an environment variable) or
 * `{ file = "/path" }` (a file's contents, one trailing newline dropped), so that it need not
 * sit in the config text.
 */
function secret(): Rule<string> {
  return {
    default: "",
    check: (v, key, problems) => {
      if (typeof v === "string") return v;
      const keys = isTable(v) ? Object.keys(v) : [];
      if (keys.length === 1 && keys[0] === "env" && typeof (v as { env: unknown }).env === "string") {
        const name = (v as { env: string }).env;
        const value = process.env[name];
        if (value !== undefined) return value;
        problems.push(`${key}: environment variable ${name} is not set`);
        return undefined;
      }
      if (keys.length === 1 && keys[0] === "file" && typeof (v as { file: unknown }).file === "string") {
        const path = (v as { file: string }).file;
        try {
          return readFileSync(path, "utf8").replace(/\r?\n$/, "");
        } catch (err) {
          problems.push(`${key}: cannot read ${path}: ${(err as { code?: string }).code ?? (err as Error).message}`);
          return undefined;
        }
      }
      problems.push(`${key}: expected a string, { env = "NAME" } or { file = "/path" }, got ${describe(v)}`);
      return undefined;
    },
  };
}

/** ACL rules: one string of space-separated rules (as in a Redis ACL file) or an array, one rule per element. */
const aclRules: Rule<string[]> = {
  default: [],
  check: (v, key, problems) => {
    if (typeof v === "string") return v.split(/\s+/).filter((r) => r !== "");
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return [...v] as string[];
    problems.push(`${key}: expected a string of rules or an array of rules, got ${describe(v)}`);
    return undefined;
  },
};

function oneOf<T extends string>(values: readonly T[], def: T): Rule<T> {
  const expects = `one of ${values.map((x) => JSON.stringify(x)).join(", ")}`;
  return {
    default: def,
    check: (v, key, problems) => {
      if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
      problems.push(`${key}: expected ${expects}, got ${describe(v)}`);
      return undefined;
    },
  };
}

/** Percentiles for INFO latencystats: numbers from 0 to 100, ascending. */
function percentileList(def: number[]): Rule<number[]> {
  return {
    default: def,
    check: (v, key, problems) => {
      const nums = Array.isArray(v) ? v.map((x) => (typeof x === "bigint" ? Number(x) : x)) : null;
      if (nums !== null && nums.length > 0 && nums.every((x, i) => typeof x === "number" && x >= 0 && x <= 100 && (i === 0 || x > nums[i - 1]))) {
        return nums as number[];
      }
      problems.push(`${key}: expected a non-empty ascending array of numbers from 0 to 100, got ${describe(v)}`);
      return undefined;
    },
  };
}

/** An IP address or host name; "" too when `def` is "" (meaning "not set"). */
function address(def: string): Rule<string> {
  return {
    default: def,
    check: (v, key, problems) => {
      if (typeof v === "string" && (isIP(v) !== 0 || isHostname(v) || (v === "" && def === ""))) return v;
      problems.push(`${key}: expected an IP address or hostname, got ${describe(v)}`);
      return undefined;
    },
  };
}

const entryPoints: Rule<HostPort[]> = {
  default: undefined,
  check: (v, key, problems) => {
    if (!Array.isArray(v) || v.length === 0) {
      problems.push(`${key}: expected a non-empty array of "host:port" strings, got ${describe(v)}`);
      return undefined;
    }
    const out: HostPort[] = [];
    const before = problems.length;
    v.forEach((item, i) => {
      const hp = typeof item === "string" ? parseHostPort(item) : 'expected "host:port"';
      if (typeof hp !== "string") out.push(hp);
      else problems.push(`${key}[${i}]: ${hp}, got ${describe(item)}`);
    });
    return problems.length === before ? out : undefined;
  },
};

/**
 * `commands.deny` by default: what reconfigures, stops, moves data between or reshapes the
 * nodes behind a shared gateway. FLUSHALL, FLUSHDB and KEYS are governed like any other
 * command (ACL rules, or this list).
 */
export const DEFAULT_DENY = [
  "config|set", "config|rewrite", "config|resetstat", "debug", "shutdown", "module", "failover", "replicaof",
  "slaveof", "sync", "psync", "migrate", "restore-asking", "save", "bgsave", "bgrewriteaof", "swapdb",
  "client|kill", "client|pause", "cluster|addslots", "cluster|addslotsrange", "cluster|delslots",
  "cluster|delslotsrange", "cluster|flushslots", "cluster|failover", "cluster|forget", "cluster|meet",
  "cluster|replicate", "cluster|reset", "cluster|saveconfig", "cluster|setslot", "cluster|bumpepoch",
  "cluster|set-config-epoch",
] as const;

/**
 * Every section and key, in documentation order. The single source for defaults, checks and
 * the unknown-key list; exported so tests and docs can be checked against it.
 */
export const CONFIG_SCHEMA = {
  server: {
    bind: address("0.0.0.0"),
    port: int(0, 65535, 6379),
    max_clients: int(1, Number.MAX_SAFE_INTEGER, 10000),
    password: secret(),
    client_idle_timeout_ms: int(0, TIMER_MAX, 0),
    client_write_timeout_ms: int(0, TIMER_MAX, 60000),
    announce_host: address(""),
    announce_port: int(0, 65535, 0),
    drain_timeout_ms: int(0, TIMER_MAX, 5000),
  },
  cluster: {
    entry_points: entryPoints,
    username: str(""),
    password: secret(),
    refresh_interval_ms: int(100, TIMER_MAX, 5000),
    connect_timeout_ms: int(1, TIMER_MAX, 1000),
    command_timeout_ms: int(1, TIMER_MAX, 5000),
    retry_timeout_ms: int(0, TIMER_MAX, 20000),
    max_redirects: int(1, 16, 5),
    health_check_interval_ms: int(0, TIMER_MAX, 1000),
    health_check_timeout_ms: int(1, TIMER_MAX, 1000),
    read_from: oneOf<ReadFrom>(["master", "prefer-replica", "replica", "any"], "master"),
    max_replica_lag: int(0, Number.MAX_SAFE_INTEGER, 1048576),
    tls: bool(false),
    tls_ca_file: str(""),
    tls_cert_file: str(""),
    tls_key_file: str(""),
    tls_server_name: str(""),
    tls_verify: oneOf(["full", "ca", "none"], "full"),
  },
  tls: {
    port: int(0, 65535, 0),
    cert_file: str(""),
    key_file: str(""),
    key_passphrase: secret(),
    ca_file: str(""),
    auth_clients: oneOf(["no", "optional", "yes"], "yes"),
    min_version: oneOf(["TLSv1.2", "TLSv1.3"], "TLSv1.2"),
  },
  commands: {
    deny: stringList(DEFAULT_DENY),
    rename: stringMap(),
  },
  pool: {
    size: int(1, 1024, 1),
    min_idle: int(0, 64, 1),
    max_idle: int(0, 1024, 4),
    max_pinned: int(1, 1000000, 1024),
  },
  performance: {
    worker_threads: int(1, 64, 1),
    buffer_size: int(1024, 67108864, 65536),
    batch_size: int(1, 1000000, 256),
    max_client_input_bytes: int(1024, Number.MAX_SAFE_INTEGER, 1073741824),
    max_client_output_bytes: int(0, 2147483648, 134217728),
    max_memory: int(0, Number.MAX_SAFE_INTEGER, 1073741824),
    max_pubsub_output_bytes: int(0, 2147483648, 33554432),
    stream_retain_bytes: int(0, 2147483648, 67108864),
  },
  log: {
    level: oneOf<LogLevel>(LOG_LEVELS, "info"),
    format: oneOf<LogFormat>(["text", "json"], "text"),
  },
  metrics: {
    enabled: bool(true),
    slowlog_log_slower_than: int(-1, Number.MAX_SAFE_INTEGER, 10000),
    slowlog_max_len: int(0, 1_000_000, 128),
    hotkeys: int(0, 10_000, 0),
    hotkeys_sample_rate: int(1, 1_000_000, 100),
    latency_percentiles: percentileList([50, 99, 99.9]),
  },
  admin: {
    bind: address("127.0.0.1"),
    port: int(0, 65535, 9380),
  },
} as const satisfies Record<string, Record<string, Rule<any>>>;

const SCHEMA: Record<string, Record<string, Rule>> = CONFIG_SCHEMA;

/** The keys of one [[users]] entry. */
export const USER_SCHEMA = {
  name: str(""),
  password: secret(),
  password_sha256: str(""),
  rules: aclRules,
  cluster_username: str(""),
  cluster_password: secret(),
} as const satisfies Record<string, Rule<any>>;

/** Rules that span keys; each sees only keys that passed their own check (others undefined). */
const CROSS_CHECKS: ((c: PartialConfig) => string | undefined)[] = [
  (c) =>
    c.server.port === 0 && c.tls.port === 0 ? "server.port: 0 (no plaintext listener) needs tls.port" : undefined,
  (c) =>
    c.tls.port && c.tls.port === c.server.port ? `tls.port: must differ from server.port (${c.server.port})` : undefined,
  (c) =>
    c.tls.port && (c.tls.certFile === "" || c.tls.keyFile === "") ? "tls.port: requires tls.cert_file and tls.key_file" : undefined,
  (c) =>
    c.tls.port && c.tls.authClients !== "no" && c.tls.caFile === ""
      ? `tls.auth_clients: "${c.tls.authClients}" requires tls.ca_file (the CA client certificates are checked against), or set it to "no"`
      : undefined,
  (c) =>
    (c.cluster.tlsCertFile === "") !== (c.cluster.tlsKeyFile === "")
      ? "cluster.tls_cert_file: tls_cert_file and tls_key_file go together" : undefined,
  (c) =>
    c.pool.minIdle !== undefined && c.pool.size !== undefined && c.pool.minIdle > c.pool.size
      ? `pool.min_idle: must be <= pool.size (${c.pool.size}), got ${c.pool.minIdle}`
      : undefined,
  (c) =>
    c.cluster.username && c.cluster.password === ""
      ? `cluster.username: requires cluster.password (ACL AUTH needs both)`
      : undefined,
];

type PartialConfig = { [S in Exclude<keyof Config, "users">]: Partial<Config[S]> };

// ---- entry points ----

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHostname(s: string): boolean {
  // All-numeric names ("999.1.1.1") are mistyped IPv4, not hostnames.
  if (s.length > 253 || /^[\d.]+$/.test(s)) return false;
  return s.split(".").every((label) => LABEL.test(label));
}

/** `"host:port"`, `"[v6]:port"` → HostPort, or what was expected instead. */
function parseHostPort(s: string): HostPort | string {
  const m = HOST_PORT.exec(s);
  if (m === null) return 'expected "host:port"';
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return "expected a port from 1 to 65535";
  const v6 = m[1], name = m[2];
  const ok = v6 !== undefined ? isIP(v6) === 6 : isIPv4(name) || isHostname(name);
  return ok ? { host: v6 ?? name, port } : "expected an IPv4 address, [IPv6] address or hostname";
}

// ---- parsing ----

/**
 * Parse and validate TOML (or YAML) text. `source` (a file name) prefixes syntax errors as
 * `source:line:column`. Throws ConfigError listing every problem found, one per line.
 */
export function parseConfig(text: string, source = "<config>", format: ConfigFormat = "toml"): Config {
  const doc = readDocument(text, source, format);
  if (typeof doc === "string") throw new ConfigError(doc);
  const problems: string[] = [];
  const out: Record<string, Record<string, unknown>> = {};
  for (const section of Object.keys(SCHEMA)) out[camel(section)] = {};

  const users: UserConfig[] = [];
  for (const [section, body] of Object.entries(doc)) {
    if (section === "users") {
      parseUsers(body, problems, users);
      continue;
    }
    // hasOwn: a key like "constructor" must not find Object.prototype's members.
    const rules = Object.hasOwn(SCHEMA, section) ? SCHEMA[section] : undefined;
    if (rules === undefined) {
      problems.push(isTable(body) ? `unknown section "${section}"` : unknownKey(section));
      continue;
    }
    if (!isTable(body)) {
      problems.push(`${section}: expected a table, got ${describe(body)}`);
      continue;
    }
    for (const [key, value] of Object.entries(body)) {
      const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
      const path = `${section}.${key}`;
      if (rule === undefined) problems.push(unknownKey(path));
      else out[camel(section)][camel(key)] = rule.check(value, path, problems);
    }
  }

  // Fill defaults; a required key left unset is a problem unless its section was itself bad.
  for (const [section, rules] of Object.entries(SCHEMA)) {
    const present = isTable(doc[section]) ? (doc[section] as Record<string, unknown>) : {};
    for (const [key, rule] of Object.entries(rules)) {
      if (key in present) continue;
      if (rule.default !== undefined) out[camel(section)][camel(key)] = rule.default;
      else if (!(section in doc) || isTable(doc[section])) problems.push(`${section}.${key}: required`);
    }
  }

  (out as Record<string, unknown>).users = users;
  const partial = out as unknown as PartialConfig;
  for (const cross of CROSS_CHECKS) {
    const p = cross(partial);
    if (p !== undefined) problems.push(p);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as unknown as Config;
}

/**
 * Read and validate the file at `path`: YAML if it ends in `.yaml`/`.yml`, else TOML. Throws
 * ConfigError naming the path if unreadable.
 */
export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === "ENOENT" ? "no such file"
      : code === "EISDIR" ? "is a directory"
      : code === "EACCES" ? "permission denied"
      : `cannot read (${(err as Error).message})`;
    throw new ConfigError(`${path}: ${why}`);
  }
  return parseConfig(text, path, formatOf(path));
}

/** All defaults, with the given entry points (copied). For tests and embedding. */
export function defaultConfig(entryPoints: HostPort[]): Config {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, rules] of Object.entries(SCHEMA)) {
    const s: Record<string, unknown> = (out[camel(section)] = {});
    for (const [key, rule] of Object.entries(rules)) s[camel(key)] = rule.default;
  }
  out.cluster.entryPoints = entryPoints.map((e) => ({ host: e.host, port: e.port }));
  (out as Record<string, unknown>).users = [];
  return out as unknown as Config;
}

/** [[users]]: an array of tables, each checked against USER_SCHEMA; names unique. */
function parseUsers(body: unknown, problems: string[], out: UserConfig[]): void {
  if (!Array.isArray(body) || !body.every(isTable)) {
    problems.push(`users: expected [[users]] tables, got ${describe(body)}`);
    return;
  }
  const seen = new Set<string>();
  body.forEach((entry, i) => {
    const at = `users[${i}]`;
    const v: Record<string, unknown> = {};
    const before = problems.length;
    for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
      const rule = Object.hasOwn(USER_SCHEMA, key) ? (USER_SCHEMA as Record<string, Rule>)[key] : undefined;
      if (rule === undefined) problems.push(`unknown key "${at}.${key}"`);
      else v[key] = rule.check(value, `${at}.${key}`, problems);
    }
    const name = (v.name as string | undefined) ?? "";
    if (name === "" && !("name" in entry)) problems.push(`${at}.name: required`);
    else if (name === "" || /[\s\0]/.test(name)) problems.push(`${at}.name: expected a user name without spaces, got ${describe(name)}`);
    else if (seen.has(name)) problems.push(`${at}.name: user "${name}" is defined twice`);
    seen.add(name);
    const sha = (v.password_sha256 as string | undefined) ?? "";
    if (sha !== "" && !/^[0-9a-f]{64}$/.test(sha)) problems.push(`${at}.password_sha256: expected 64 lowercase hex digits (SHA-256), got ${describe(sha)}`);
    const cu = (v.cluster_username as string | undefined) ?? "", cp = (v.cluster_password as string | undefined) ?? "";
    if (cu !== "" && cp === "") problems.push(`${at}.cluster_username: requires cluster_password (ACL AUTH needs both)`);
    if (problems.length > before) return;
    const rules: string[] = [];
    if (v.password) rules.push(`>${v.password as string}`);
    if (sha) rules.push(`#${sha}`);
    rules.push(...((v.rules as string[] | undefined) ?? []));
    out.push({ name, rules, clusterUsername: cu, clusterPassword: cp });
  });
}

/**
 * Keys of the file at `path` that hold a secret written out in it (rather than `{ env }` or
 * `{ file }`): those a file readable by others would leak.
 */
export function inlineSecrets(text: string, format: ConfigFormat = "toml"): string[] {
  const doc = readDocument(text, "", format);
  if (typeof doc === "string") return [];
  const out: string[] = [];
  const inline = (v: unknown) => typeof v === "string" && v !== "";
  for (const [section, key] of [["server", "password"], ["cluster", "password"], ["tls", "key_passphrase"]]) {
    const body = doc[section];
    if (isTable(body) && inline(body[key])) out.push(`${section}.${key}`);
  }
  const users = doc.users;
  if (Array.isArray(users)) {
    users.forEach((u, i) => {
      if (!isTable(u)) return;
      for (const key of ["password", "password_sha256", "cluster_password"]) if (inline(u[key])) out.push(`users[${i}].${key}`);
      const rules = u.rules;
      const list = typeof rules === "string" ? rules.split(/\s+/) : Array.isArray(rules) ? rules : [];
      if (list.some((r) => typeof r === "string" && /^[>#]/.test(r))) out.push(`users[${i}].rules`);
    });
  }
  return out;
}

/** Warnings `--check` and start-up print: a config holding secrets that other users can read. */
export function secretWarnings(path: string, text: string): string[] {
  const keys = inlineSecrets(text, formatOf(path));
  if (keys.length === 0) return [];
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return [];
  }
  if ((mode & 0o004) === 0) return [];
  return [`${path} is readable by other users and holds secrets (${keys.join(", ")}): chmod o-r it, or move them to { env = "NAME" } or { file = "/path" }`];
}

function unknownKey(path: string): string {
  const hint = suggest(path);
  return `unknown key "${path}"` + (hint === undefined ? "" : ` (did you mean "${hint}"?)`);
}

/** The schema path nearest `path` (a top-level key matching a known leaf, or a 1–2 edit typo). */
function suggest(path: string): string | undefined {
  const all = Object.entries(SCHEMA).flatMap(([s, rules]) => Object.keys(rules).map((k) => `${s}.${k}`));
  if (!path.includes(".")) return all.find((p) => p.endsWith(`.${path}`));
  let best: string | undefined, bestDist = 3;
  for (const p of all) {
    const d = editDistance(path, p);
    if (d < bestDist) [best, bestDist] = [p, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** A TOML/YAML value as an operator would recognise it in an error message. */
function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "nan";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    return Number.isInteger(v) ? v.toFixed(1) : String(v); // TOML floats keep their point
  }
  if (v instanceof Date) return `a date-time (${v.toISOString()})`;
  if (Array.isArray(v)) return v.length === 0 ? "[]" : "an array";
  if (isTable(v)) return "a table";
  return String(v);
}
