// predixy.toml → validated, typed Config: one schema table drives defaults, checks and errors.

import { isIP, isIPv4 } from "node:net";
import { parse, TomlError } from "smol-toml";

/** A backend address as given in `cluster.entry_points`; IPv6 hosts carry no brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** Where read-only commands go: see docs/config.md, `read_from`. */
export type ReadFrom = "master" | "prefer-replica" | "replica" | "any";

/** Log levels, named as LogTape names them. */
export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";

/**
 * The validated configuration. Every field is present (defaults filled in) and within the
 * ranges documented in docs/config.md; consumers need not re-check.
 */
export interface Config {
  server: {
    bind: string;
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
  };
  pool: {
    size: number;
    /** <= size. */
    minIdle: number;
    maxIdle: number;
  };
  performance: {
    workerThreads: number;
    bufferSize: number;
    batchSize: number;
    maxClientInputBytes: number;
    maxClientOutputBytes: number;
    /** What all clients together may make the proxy hold, bytes; 0 = no total budget. */
    maxMemory: number;
  };
  log: {
    level: LogLevel;
  };
}

/**
 * Invalid configuration. `problems` holds one entry per fault, each naming its key
 * (`server.port: …`, `unknown key "server.prot"`); the message is those joined by newlines.
 * A TOML syntax error is the single problem `file:line:column: …`, followed by the lines around it.
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

// ---- rules: each checks one TOML value, records a problem and returns undefined if bad ----

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
    // Integers arrive as bigint (see parseToml), so a TOML float such as 1.0 is told apart.
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
 * Every section and key, in documentation order. The single source for defaults, checks and
 * the unknown-key list; exported so tests and docs can be checked against it.
 */
export const CONFIG_SCHEMA = {
  server: {
    bind: address("0.0.0.0"),
    port: int(1, 65535, 6379),
    max_clients: int(1, Number.MAX_SAFE_INTEGER, 10000),
    password: str(""),
    client_idle_timeout_ms: int(0, TIMER_MAX, 0),
    client_write_timeout_ms: int(0, TIMER_MAX, 60000),
    announce_host: address(""),
    announce_port: int(0, 65535, 0),
    drain_timeout_ms: int(0, TIMER_MAX, 10000),
  },
  cluster: {
    entry_points: entryPoints,
    username: str(""),
    password: str(""),
    refresh_interval_ms: int(100, TIMER_MAX, 5000),
    connect_timeout_ms: int(1, TIMER_MAX, 1000),
    command_timeout_ms: int(1, TIMER_MAX, 5000),
    retry_timeout_ms: int(0, TIMER_MAX, 20000),
    max_redirects: int(1, 16, 5),
    health_check_interval_ms: int(0, TIMER_MAX, 1000),
    health_check_timeout_ms: int(1, TIMER_MAX, 1000),
    read_from: oneOf<ReadFrom>(["master", "prefer-replica", "replica", "any"], "master"),
    max_replica_lag: int(0, Number.MAX_SAFE_INTEGER, 1048576),
  },
  pool: {
    size: int(1, 64, 1),
    min_idle: int(0, 64, 1),
    max_idle: int(0, 1024, 4),
  },
  performance: {
    worker_threads: int(1, 64, 1),
    buffer_size: int(1024, 67108864, 65536),
    batch_size: int(1, 1000000, 256),
    max_client_input_bytes: int(1024, Number.MAX_SAFE_INTEGER, 1073741824),
    max_client_output_bytes: int(0, 2147483648, 134217728),
    max_memory: int(0, Number.MAX_SAFE_INTEGER, 1073741824),
  },
  log: {
    level: oneOf<LogLevel>(["trace", "debug", "info", "warning", "error", "fatal"], "info"),
  },
} as const satisfies Record<string, Record<string, Rule<any>>>;

const SCHEMA: Record<string, Record<string, Rule>> = CONFIG_SCHEMA;

/** Rules that span keys; each sees only keys that passed their own check (others undefined). */
const CROSS_CHECKS: ((c: PartialConfig) => string | undefined)[] = [
  (c) =>
    c.pool.minIdle !== undefined && c.pool.size !== undefined && c.pool.minIdle > c.pool.size
      ? `pool.min_idle: must be <= pool.size (${c.pool.size}), got ${c.pool.minIdle}`
      : undefined,
  (c) =>
    c.cluster.username && c.cluster.password === ""
      ? `cluster.username: requires cluster.password (ACL AUTH needs both)`
      : undefined,
];

type PartialConfig = { [S in keyof Config]: Partial<Config[S]> };

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
 * Parse and validate TOML text. `source` (a file name) prefixes syntax errors as
 * `source:line:column`. Throws ConfigError listing every problem found, one per line.
 */
export function parseConfig(text: string, source = "<config>"): Config {
  const doc = parseToml(text, source);
  const problems: string[] = [];
  const out: Record<string, Record<string, unknown>> = {};
  for (const section of Object.keys(SCHEMA)) out[camel(section)] = {};

  for (const [section, body] of Object.entries(doc)) {
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

  const partial = out as unknown as PartialConfig;
  for (const cross of CROSS_CHECKS) {
    const p = cross(partial);
    if (p !== undefined) problems.push(p);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as unknown as Config;
}

/** Read and validate the file at `path`. Throws ConfigError naming the path if unreadable. */
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
  return parseConfig(text, path);
}

/** All defaults, with the given entry points (copied). For tests and embedding. */
export function defaultConfig(entryPoints: HostPort[]): Config {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, rules] of Object.entries(SCHEMA)) {
    const s: Record<string, unknown> = (out[camel(section)] = {});
    for (const [key, rule] of Object.entries(rules)) s[camel(key)] = rule.default;
  }
  out.cluster.entryPoints = entryPoints.map((e) => ({ host: e.host, port: e.port }));
  return out as unknown as Config;
}

function parseToml(text: string, source: string): Record<string, unknown> {
  try {
    // bigint integers keep `port = 1.0` (a float) distinct from `port = 1`, and let huge
    // integers reach the range check instead of failing as "not representable".
    return parse(text, { integersAsBigInt: true });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: <reason>\n\n<codeblock>"; keep the reason,
    // put the position up front where editors and terminals can jump to it.
    const reason = err.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
    throw new ConfigError(
      `${source}:${err.line}:${err.column}: TOML syntax error: ${reason}\n${err.codeblock.trimEnd()}`,
    );
  }
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

/** A TOML value as an operator would recognise it in an error message. */
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
