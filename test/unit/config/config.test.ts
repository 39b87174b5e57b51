// Config parsing: defaults, every error class, error collection, and the shipped files.

import { test, expect, describe } from "bun:test";
import fc from "fast-check";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CONFIG_SCHEMA,
  ConfigError,
  DEFAULT_DENY,
  defaultConfig,
  inlineSecrets,
  loadConfig,
  secretWarnings,
  parseConfig,
  type Config,
} from "../../../src/config/config.ts";

const ROOT = join(import.meta.dir, "../../..");
const MIN = `[cluster]\nentry_points = ["127.0.0.1:7000"]\n`;
const EP = [{ host: "127.0.0.1", port: 7000 }];

/** The problems parseConfig reports for `text` ([] if it parses). */
function problemsOf(text: string): readonly string[] {
  try {
    parseConfig(text);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

/** Integer keys and their ranges, from the brief (independent of the schema under test). */
const INT_RANGES: Record<string, [number, number]> = {
  "server.port": [0, 65535],
  "server.max_clients": [1, Number.MAX_SAFE_INTEGER],
  "server.client_idle_timeout_ms": [0, 2 ** 31 - 1],
  "server.client_write_timeout_ms": [0, 2 ** 31 - 1],
  "server.announce_port": [0, 65535],
  "server.drain_timeout_ms": [0, 2 ** 31 - 1],
  "cluster.refresh_interval_ms": [100, 2 ** 31 - 1],
  "cluster.connect_timeout_ms": [1, 2 ** 31 - 1],
  "cluster.command_timeout_ms": [1, 2 ** 31 - 1],
  "cluster.retry_timeout_ms": [0, 2 ** 31 - 1],
  "cluster.max_redirects": [1, 16],
  "cluster.health_check_interval_ms": [0, 2 ** 31 - 1],
  "cluster.health_check_timeout_ms": [1, 2 ** 31 - 1],
  "cluster.max_replica_lag": [0, Number.MAX_SAFE_INTEGER],
  "pool.size": [1, 1024],
  "pool.min_idle": [0, 64],
  "pool.max_idle": [0, 1024],
  "pool.max_pinned": [1, 1000000],
  "performance.worker_threads": [1, 64],
  "performance.buffer_size": [1024, 67108864],
  "performance.batch_size": [1, 1000000],
  "performance.max_client_input_bytes": [1024, Number.MAX_SAFE_INTEGER],
  "performance.max_client_output_bytes": [0, 2147483648],
  "performance.max_memory": [0, Number.MAX_SAFE_INTEGER],
  "performance.max_pubsub_output_bytes": [0, 2147483648],
  "performance.stream_retain_bytes": [0, 2147483648],
  "metrics.slowlog_log_slower_than": [-1, Number.MAX_SAFE_INTEGER],
  "metrics.slowlog_max_len": [0, 1000000],
  "metrics.hotkeys": [0, 10000],
  "metrics.hotkeys_sample_rate": [1, 1000000],
  "admin.port": [0, 65535],
  "tls.port": [0, 65535],
};

const ALL_KEYS = Object.entries(CONFIG_SCHEMA).flatMap(([s, rules]) =>
  Object.keys(rules).map((k) => `${s}.${k}`),
);

/** A config setting one key (plus the required entry point, and pool.size so min_idle fits). */
function withKey(path: string, value: string): string {
  const [section, key] = path.split(".");
  // Ports: the other listener on a port of its own, so that 0 (none) still leaves one.
  const other = value === "1" ? 2 : 1;
  const extra = path === "pool.min_idle" ? "size = 64\n"
    : path === "tls.port" ? `cert_file = "c"\nkey_file = "k"\nauth_clients = "no"\n[server]\nport = ${other}\n` : "";
  const tail = path === "server.port" ? `[tls]\nport = ${other}\ncert_file = "c"\nkey_file = "k"\nauth_clients = "no"\n` : "";
  const cluster = section === "cluster" ? "" : MIN;
  const ep = section === "cluster" && key !== "entry_points" ? `entry_points = ["127.0.0.1:7000"]\n` : "";
  return `${cluster}[${section}]\n${ep}${key} = ${value}\n${extra}${tail}`;
}

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function valueAt(c: Config, path: string): unknown {
  const [section, key] = path.split(".");
  return (c as unknown as Record<string, Record<string, unknown>>)[section][camel(key)];
}

describe("valid configs", () => {
  test("a full config round-trips to the expected Config", () => {
    const text = `
[server]
bind = "::"
port = 7617
max_clients = 500
password = "s3cret"
client_idle_timeout_ms = 30000
client_write_timeout_ms = 1500
drain_timeout_ms = 0
[cluster]
entry_points = ["10.0.0.1:7000", "[fe80::1]:7001", "redis-a.example.com:7002"]
username = "proxy"
password = "pw"
refresh_interval_ms = 1000
connect_timeout_ms = 250
command_timeout_ms = 3000
retry_timeout_ms = 0
max_redirects = 16
health_check_interval_ms = 0
health_check_timeout_ms = 300
read_from = "prefer-replica"
max_replica_lag = 0
tls = true
tls_ca_file = "/etc/ca.pem"
tls_cert_file = "/etc/c.pem"
tls_key_file = "/etc/c.key"
tls_server_name = "redis.internal"
tls_verify = "ca"
[tls]
port = 6380
cert_file = "/etc/s.pem"
key_file = "/etc/s.key"
key_passphrase = "kp"
ca_file = "/etc/clients.pem"
auth_clients = "optional"
min_version = "TLSv1.3"
[commands]
deny = ["flushall", "config|set"]
rename = { keys = "", config = "cfg" }
[[users]]
name = "app"
password = "apw"
rules = "on ~app:* +@read"
cluster_username = "app-backend"
cluster_password = "bpw"
[[users]]
name = "ops"
password_sha256 = "${"ab".repeat(32)}"
rules = ["on", "+@all", "~*"]
[pool]
size = 4
min_idle = 4
max_idle = 0
[performance]
worker_threads = 8
buffer_size = 1024
batch_size = 1000000
max_client_input_bytes = 2048
max_client_output_bytes = 1048576
max_memory = 0
[log]
level = "debug"
`;
    const expected: Config = {
      server: { bind: "::", port: 7617, maxClients: 500, password: "s3cret", clientIdleTimeoutMs: 30000, clientWriteTimeoutMs: 1500, announceHost: "", announcePort: 0, drainTimeoutMs: 0 },
      cluster: {
        entryPoints: [
          { host: "10.0.0.1", port: 7000 },
          { host: "fe80::1", port: 7001 },
          { host: "redis-a.example.com", port: 7002 },
        ],
        username: "proxy",
        password: "pw",
        refreshIntervalMs: 1000,
        connectTimeoutMs: 250,
        commandTimeoutMs: 3000,
        retryTimeoutMs: 0,
        maxRedirects: 16,
        healthCheckIntervalMs: 0,
        healthCheckTimeoutMs: 300,
        readFrom: "prefer-replica",
        maxReplicaLag: 0,
        tls: true,
        tlsCaFile: "/etc/ca.pem",
        tlsCertFile: "/etc/c.pem",
        tlsKeyFile: "/etc/c.key",
        tlsServerName: "redis.internal",
        tlsVerify: "ca",
      },
      tls: {
        port: 6380, certFile: "/etc/s.pem", keyFile: "/etc/s.key", keyPassphrase: "kp", caFile: "/etc/clients.pem",
        authClients: "optional", minVersion: "TLSv1.3",
      },
      commands: { deny: ["flushall", "config|set"], rename: { keys: "", config: "cfg" } },
      users: [
        { name: "app", rules: [">apw", "on", "~app:*", "+@read"], clusterUsername: "app-backend", clusterPassword: "bpw" },
        { name: "ops", rules: [`#${"ab".repeat(32)}`, "on", "+@all", "~*"], clusterUsername: "", clusterPassword: "" },
      ],
      pool: { size: 4, minIdle: 4, maxIdle: 0, maxPinned: 1024 },
      performance: { workerThreads: 8, bufferSize: 1024, batchSize: 1000000, maxClientInputBytes: 2048, maxClientOutputBytes: 1048576, maxMemory: 0, maxPubsubOutputBytes: 33554432, streamRetainBytes: 67108864 },
      log: { level: "debug", format: "text" },
      metrics: { enabled: true, slowlogLogSlowerThan: 10000, slowlogMaxLen: 128, hotkeys: 0, hotkeysSampleRate: 100, latencyPercentiles: [50, 99, 99.9] },
      admin: { bind: "127.0.0.1", port: 9380 },
    };
    expect(parseConfig(text)).toEqual(expected);
  });

  test("omitted keys and sections take their defaults", () => {
    expect(parseConfig(MIN)).toEqual(defaultConfig(EP));
    expect(parseConfig(MIN)).toEqual({
      server: { bind: "0.0.0.0", port: 6379, maxClients: 10000, password: "", clientIdleTimeoutMs: 0, clientWriteTimeoutMs: 60000, announceHost: "", announcePort: 0, drainTimeoutMs: 5000 },
      cluster: {
        entryPoints: EP,
        username: "",
        password: "",
        refreshIntervalMs: 5000,
        connectTimeoutMs: 1000,
        commandTimeoutMs: 5000,
        retryTimeoutMs: 20000,
        maxRedirects: 5,
        healthCheckIntervalMs: 1000,
        healthCheckTimeoutMs: 1000,
        readFrom: "master",
        maxReplicaLag: 1048576,
        tls: false,
        tlsCaFile: "",
        tlsCertFile: "",
        tlsKeyFile: "",
        tlsServerName: "",
        tlsVerify: "full",
      },
      tls: { port: 0, certFile: "", keyFile: "", keyPassphrase: "", caFile: "", authClients: "yes", minVersion: "TLSv1.2" },
      commands: { deny: [...DEFAULT_DENY], rename: {} },
      users: [],
      pool: { size: 1, minIdle: 1, maxIdle: 4, maxPinned: 1024 },
      performance: { workerThreads: 1, bufferSize: 65536, batchSize: 256, maxClientInputBytes: 1073741824, maxClientOutputBytes: 134217728, maxMemory: 1073741824, maxPubsubOutputBytes: 33554432, streamRetainBytes: 67108864 },
      log: { level: "info", format: "text" },
      metrics: { enabled: true, slowlogLogSlowerThan: 10000, slowlogMaxLen: 128, hotkeys: 0, hotkeysSampleRate: 100, latencyPercentiles: [50, 99, 99.9] },
      admin: { bind: "127.0.0.1", port: 9380 },
    });
  });

  test("an empty section is the same as an absent one", () => {
    expect(parseConfig(`${MIN}[server]\n[pool]\n[log]\n`)).toEqual(defaultConfig(EP));
  });

  test("backend password without username is allowed (plain AUTH)", () => {
    expect(parseConfig(`[cluster]\nentry_points = ["a:1"]\npassword = "pw"\n`).cluster.password).toBe("pw");
  });

  test("defaultConfig copies its entry points and returns fresh objects", () => {
    const eps = [{ host: "h", port: 1 }];
    const a = defaultConfig(eps), b = defaultConfig(eps);
    eps[0].port = 2;
    a.server.port = 1;
    expect(a.cluster.entryPoints).toEqual([{ host: "h", port: 1 }]);
    expect(b.server.port).toBe(6379);
  });

  test("the schema has exactly the keys of the brief", () => {
    const nonInt = ["server.bind", "server.password", "server.announce_host", "cluster.entry_points", "cluster.username", "cluster.password", "cluster.read_from",
      "log.level", "log.format", "metrics.enabled", "metrics.latency_percentiles", "admin.bind",
      "cluster.tls", "cluster.tls_ca_file", "cluster.tls_cert_file", "cluster.tls_key_file", "cluster.tls_server_name",
      "cluster.tls_verify", "tls.cert_file", "tls.key_file", "tls.key_passphrase", "tls.ca_file", "tls.auth_clients",
      "tls.min_version", "commands.deny", "commands.rename"];
    expect([...ALL_KEYS].sort()).toEqual([...Object.keys(INT_RANGES), ...nonInt].sort());
  });
});

describe("errors name the key", () => {
  const cases: [string, string, string][] = [
    ["unknown key", `${MIN}[server]\nprot = 1\n`, 'unknown key "server.prot" (did you mean "server.port"?)'],
    ["unknown section", `${MIN}[serer]\nport = 1\n`, 'unknown section "serer"'],
    ["top-level key outside any section", `port = 1\n${MIN}`, 'unknown key "port" (did you mean "server.port"?)'],
    ["nested table in a section", `${MIN}[server.tls]\ncert = "x"\n`, 'unknown key "server.tls"'],
    ["section that is not a table", `log = "info"\n${MIN}`, 'log: expected a table, got "info"'],
    ["array of tables for a section", `${MIN}[[pool]]\nsize = 1\n`, "pool: expected a table, got an array"],
    ["string for an integer", `${MIN}[server]\nport = "abc"\n`, 'server.port: expected an integer from 0 to 65535, got "abc"'],
    ["float for an integer", `${MIN}[server]\nport = 6379.0\n`, "server.port: expected an integer from 0 to 65535, got 6379.0"],
    ["boolean for an integer", `${MIN}[pool]\nsize = true\n`, "pool.size: expected an integer from 1 to 1024, got true"],
    ["integer for a string", `${MIN}username = 123\n`, "cluster.username: expected a string, got 123"],
    ["integer for a secret", `${MIN}[server]\npassword = 123\n`, 'server.password: expected a string, { env = "NAME" } or { file = "/path" }, got 123'],
    ["out of range, low", `${MIN}[server]\nport = -1\n`, "server.port: expected an integer from 0 to 65535, got -1"],
    ["out of range, high", `${MIN}max_redirects = 17\n`, "cluster.max_redirects: expected an integer from 1 to 16, got 17"],
    ["below a floor-only minimum", `${MIN}[performance]\nmax_client_input_bytes = 1023\n`, "performance.max_client_input_bytes: expected an integer >= 1024, got 1023"],
    ["integer too big for a double", `${MIN}[server]\nmax_clients = 99999999999999999999\n`, "server.max_clients: expected an integer >= 1, got 99999999999999999999"],
    ["timeout past the timer limit", `${MIN}[server]\nclient_idle_timeout_ms = 2147483648\n`, "server.client_idle_timeout_ms: expected an integer from 0 to 2147483647, got 2147483648"],
    ["unknown log level", `${MIN}[log]\nlevel = "warn"\n`, 'log.level: expected one of "trace", "debug", "info", "warning", "error", "fatal", got "warn"'],
    ["unknown read_from", `[cluster]\nentry_points = ["a:1"]\nread_from = "slave"\n`, 'cluster.read_from: expected one of "master", "prefer-replica", "replica", "any", got "slave"'],
    ["bad bind address", `${MIN}[server]\nbind = "not an address"\n`, 'server.bind: expected an IP address or hostname, got "not an address"'],
    ["missing required entry_points", `[server]\nport = 1\n`, "cluster.entry_points: required"],
    ["missing entry_points in a present section", `[cluster]\nusername = ""\n`, "cluster.entry_points: required"],
    ["empty entry_points", `[cluster]\nentry_points = []\n`, 'cluster.entry_points: expected a non-empty array of "host:port" strings, got []'],
    ["entry_points not an array", `[cluster]\nentry_points = "a:1"\n`, 'cluster.entry_points: expected a non-empty array of "host:port" strings, got "a:1"'],
    ["entry point without port", `[cluster]\nentry_points = ["a:1", "localhost"]\n`, 'cluster.entry_points[1]: expected "host:port", got "localhost"'],
    ["entry point port 0", `[cluster]\nentry_points = ["127.0.0.1:0"]\n`, 'cluster.entry_points[0]: expected a port from 1 to 65535, got "127.0.0.1:0"'],
    ["entry point port too high", `[cluster]\nentry_points = ["h:65536"]\n`, 'cluster.entry_points[0]: expected a port from 1 to 65535, got "h:65536"'],
    ["entry point bare IPv6", `[cluster]\nentry_points = ["::1:7000"]\n`, 'cluster.entry_points[0]: expected "host:port", got "::1:7000"'],
    ["entry point bad bracketed IPv6", `[cluster]\nentry_points = ["[nope]:7000"]\n`, 'cluster.entry_points[0]: expected an IPv4 address, [IPv6] address or hostname, got "[nope]:7000"'],
    ["entry point bad IPv4", `[cluster]\nentry_points = ["999.0.0.1:7000"]\n`, 'cluster.entry_points[0]: expected an IPv4 address, [IPv6] address or hostname, got "999.0.0.1:7000"'],
    ["entry point not a string", `[cluster]\nentry_points = [7000]\n`, 'cluster.entry_points[0]: expected "host:port", got 7000'],
    ["min_idle > size", `${MIN}[pool]\nsize = 2\nmin_idle = 3\n`, "pool.min_idle: must be <= pool.size (2), got 3"],
    ["min_idle > default size", `${MIN}[pool]\nmin_idle = 2\n`, "pool.min_idle: must be <= pool.size (1), got 2"],
    ["username without password", `[cluster]\nentry_points = ["a:1"]\nusername = "u"\n`, "cluster.username: requires cluster.password (ACL AUTH needs both)"],
    ["prototype-named keys are just unknown", `${MIN}[server]\nconstructor = 1\n__proto__ = 2\n`, 'unknown key "server.constructor"'],
    ["prototype-named section is just unknown", `${MIN}[toString]\n`, 'unknown section "toString"'],
  ];
  for (const [name, text, message] of cases)
    test(name, () => expect(problemsOf(text)).toContain(message));

  test("ConfigError message is the problems, one per line", () => {
    expect(() => parseConfig(`${MIN}[server]\nport = -1\n`)).toThrow(
      new ConfigError("server.port: expected an integer from 0 to 65535, got -1"),
    );
  });

  test("TOML syntax errors say source:line:column", () => {
    let err: unknown;
    try {
      parseConfig(`[server]\nport = 1\nbind = \n`, "p.toml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const [first, ...context] = (err as ConfigError).message.split("\n");
    expect(first).toMatch(/^p\.toml:3:8: TOML syntax error: /);
    expect(context.join("\n")).toContain("bind =");
  });

  test("TOML syntax errors without a source name say <config>", () => {
    expect(() => parseConfig(`[server\n`)).toThrow(/^<config>:1:\d+: TOML syntax error/);
  });

  test("duplicate keys are a TOML syntax error", () => {
    expect(() => parseConfig(`${MIN}[server]\nport = 1\nport = 2\n`, "d.toml")).toThrow(/^d\.toml:5:/);
  });
});

describe("every problem is reported together", () => {
  test("one line per problem, in file order, cross-key checks last", () => {
    const text = `
[server]
prot = 7000
port = "7000"
[serer]
[cluster]
entry_points = ["a:1", "b"]
username = "u"
[pool]
size = 2
min_idle = 3
[log]
level = "loud"
`;
    expect(problemsOf(text)).toEqual([
      'unknown key "server.prot" (did you mean "server.port"?)',
      'server.port: expected an integer from 0 to 65535, got "7000"',
      'unknown section "serer"',
      'cluster.entry_points[1]: expected "host:port", got "b"',
      'log.level: expected one of "trace", "debug", "info", "warning", "error", "fatal", got "loud"',
      "pool.min_idle: must be <= pool.size (2), got 3",
      "cluster.username: requires cluster.password (ACL AUTH needs both)",
    ]);
  });

  test("a cross-key check is skipped when one of its keys is itself invalid", () => {
    expect(problemsOf(`${MIN}[pool]\nsize = 0\nmin_idle = 3\n`)).toEqual([
      "pool.size: expected an integer from 1 to 1024, got 0",
    ]);
  });

  test("a bad section is not also reported as missing its required keys", () => {
    expect(problemsOf(`cluster = 1\n`)).toEqual(["cluster: expected a table, got 1"]);
  });
});

describe("integer keys (property)", () => {
  for (const [path, [min, max]] of Object.entries(INT_RANGES)) {
    test(`${path} accepts ${min}..${max} and round-trips`, () => {
      fc.assert(
        fc.property(fc.oneof(fc.constant(min), fc.constant(max), fc.integer({ min, max: Math.min(max, 2 ** 31) })), (n) => {
          expect(valueAt(parseConfig(withKey(path, String(n))), path)).toBe(n);
        }),
        { numRuns: 50 },
      );
    });

    test(`${path} rejects integers outside ${min}..${max}`, () => {
      const below = fc.bigInt({ min: -(2n ** 63n), max: BigInt(min) - 1n });
      const above = fc.bigInt({ min: BigInt(max) + 1n, max: 2n ** 63n - 1n });
      fc.assert(
        fc.property(fc.oneof(below, above), (n) => {
          const ps = problemsOf(withKey(path, String(n)));
          expect(ps).toHaveLength(1);
          expect(ps[0]).toStartWith(`${path}: expected an integer`);
          expect(ps[0]).toEndWith(`got ${n}`);
        }),
        { numRuns: 50 },
      );
    });

    test(`${path} rejects floats`, () => {
      fc.assert(
        fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
          const ps = problemsOf(withKey(path, x.toExponential()));
          expect(ps).toHaveLength(1);
          expect(ps[0]).toStartWith(`${path}: expected an integer`);
        }),
        { numRuns: 30 },
      );
    });
  }
});

describe("entry points (property)", () => {
  const port = fc.integer({ min: 1, max: 65535 });
  const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);

  test("IPv4:port round-trips", () => {
    fc.assert(
      fc.property(fc.ipV4(), port, (host, p) => {
        const c = parseConfig(`[cluster]\nentry_points = ["${host}:${p}"]\n`);
        expect(c.cluster.entryPoints).toEqual([{ host, port: p }]);
      }),
    );
  });

  test("[IPv6]:port round-trips without brackets", () => {
    fc.assert(
      fc.property(fc.ipV6(), port, (host, p) => {
        const c = parseConfig(`[cluster]\nentry_points = ["[${host}]:${p}"]\n`);
        expect(c.cluster.entryPoints).toEqual([{ host, port: p }]);
      }),
    );
  });

  test("hostname:port round-trips", () => {
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), port, (labels, p) => {
        const host = labels.join(".");
        const c = parseConfig(`[cluster]\nentry_points = ["${host}:${p}"]\n`);
        expect(c.cluster.entryPoints).toEqual([{ host, port: p }]);
      }),
    );
  });

  test("any port outside 1..65535 is rejected", () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant(0), fc.integer({ min: 65536, max: 99999 })), (p) => {
        expect(problemsOf(`[cluster]\nentry_points = ["127.0.0.1:${p}"]\n`)).toEqual([
          `cluster.entry_points[0]: expected a port from 1 to 65535, got "127.0.0.1:${p}"`,
        ]);
      }),
    );
  });
});

describe("loadConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "predixy-config-"));

  test("a missing file is a ConfigError naming the path", async () => {
    const path = join(dir, "nope.toml");
    await expect(loadConfig(path)).rejects.toThrow(new ConfigError(`${path}: no such file`));
  });

  test("a directory is a ConfigError naming the path", async () => {
    await expect(loadConfig(dir)).rejects.toThrow(new ConfigError(`${dir}: is a directory`));
  });

  test("reads and validates a file; syntax errors name it", async () => {
    const good = join(dir, "good.toml"), bad = join(dir, "bad.toml");
    writeFileSync(good, `${MIN}[server]\nport = 7777\n`);
    writeFileSync(bad, `${MIN}[server]\nport = = 1\n`);
    expect((await loadConfig(good)).server.port).toBe(7777);
    await expect(loadConfig(bad)).rejects.toThrow(new RegExp(`^${bad.replace(/[.]/g, "\\.")}:4:`));
  });
});

describe("metrics, admin and log keys", () => {
  test("log.format is text or json", () => {
    expect(parseConfig(`${MIN}[log]\nformat = "json"\n`).log.format).toBe("json");
    expect(problemsOf(`${MIN}[log]\nformat = "xml"\n`)).toEqual(['log.format: expected one of "text", "json", got "xml"']);
  });

  test("metrics.enabled is a boolean", () => {
    expect(parseConfig(`${MIN}[metrics]\nenabled = false\n`).metrics.enabled).toBe(false);
    expect(problemsOf(`${MIN}[metrics]\nenabled = 0\n`)).toEqual(["metrics.enabled: expected true or false, got 0"]);
  });

  test("metrics.latency_percentiles must be ascending numbers from 0 to 100", () => {
    expect(parseConfig(`${MIN}[metrics]\nlatency_percentiles = [50, 90.5, 100]\n`).metrics.latencyPercentiles).toEqual([50, 90.5, 100]);
    for (const bad of ["[]", "[99, 50]", "[101]", '["p50"]', "50"]) {
      expect(problemsOf(`${MIN}[metrics]\nlatency_percentiles = ${bad}\n`)[0]).toStartWith("metrics.latency_percentiles: expected");
    }
  });

  test("admin.bind is an address and admin.port 0 turns the server off", () => {
    expect(parseConfig(`${MIN}[admin]\nbind = "::1"\nport = 0\n`).admin).toEqual({ bind: "::1", port: 0 });
    expect(problemsOf(`${MIN}[admin]\nbind = "not an address"\n`)[0]).toStartWith("admin.bind: expected an IP address");
  });
});

describe("shipped files", () => {
  const shipped = join(ROOT, "predixy.toml");

  test("predixy.toml parses and points at the local cluster", async () => {
    const c = await loadConfig(shipped);
    expect(c.cluster.entryPoints.length).toBeGreaterThan(0);
    for (const ep of c.cluster.entryPoints) {
      expect(ep.host).toBe("127.0.0.1");
      expect(ep.port).toBeGreaterThanOrEqual(7000);
      expect(ep.port).toBeLessThanOrEqual(7017);
    }
  });

  test("predixy.toml shows every key, at its default except bind and entry_points", async () => {
    const text = await Bun.file(shipped).text();
    const c = parseConfig(text);
    const d = defaultConfig(c.cluster.entryPoints);
    d.server.bind = c.server.bind;
    expect(c).toEqual(d);
    for (const path of ALL_KEYS) expect(text).toMatch(new RegExp(`^${path.split(".")[1]} = `, "m"));
  });

  test("docs/config.md documents every key", async () => {
    const doc = await Bun.file(join(ROOT, "docs/config.md")).text();
    for (const path of ALL_KEYS) expect(doc).toContain(`\`${path.split(".")[1]}\``);
    for (const section of Object.keys(CONFIG_SCHEMA)) expect(doc).toContain(`[${section}]`);
  });

  test("README's short table names every key, each in its section's row", async () => {
    const rows = (await Bun.file(join(ROOT, "README.md")).text()).split("\n");
    for (const [section, rules] of Object.entries(CONFIG_SCHEMA)) {
      const row = rows.find((l) => l.startsWith(`| \`[${section}]\` |`));
      expect(row, section).toBeDefined();
      for (const key of Object.keys(rules)) expect(row, `${section}.${key}`).toContain(`\`${key}\``);
    }
  });
});

describe("security keys", () => {
  test("secrets come from the text, an environment variable or a file (one trailing newline dropped)", () => {
    const dir = mkdtempSync(join(tmpdir(), "predixy-secret-"));
    writeFileSync(join(dir, "pw"), "from-file\n");
    process.env.PREDIXY_UNIT_SECRET = "from-env";
    const c = parseConfig(`[server]\npassword = { env = "PREDIXY_UNIT_SECRET" }\n${MIN}password = { file = "${join(dir, "pw")}" }\n`);
    expect(c.server.password).toBe("from-env");
    expect(c.cluster.password).toBe("from-file");
    expect(problemsOf(`[server]\npassword = { env = "PREDIXY_UNIT_UNSET" }\n${MIN}`)).toEqual(["server.password: environment variable PREDIXY_UNIT_UNSET is not set"]);
    expect(problemsOf(`[server]\npassword = { file = "${join(dir, "nope")}" }\n${MIN}`)).toEqual([`server.password: cannot read ${join(dir, "nope")}: ENOENT`]);
    expect(problemsOf(`[server]\npassword = { env = "A", file = "b" }\n${MIN}`)).toEqual(['server.password: expected a string, { env = "NAME" } or { file = "/path" }, got a table']);
  });

  test("[[users]]: each entry checked, passwords turned into rules first", () => {
    const ok = parseConfig(`${MIN}[[users]]\nname = "a"\npassword = "p"\nrules = "on  +get ~k*"\n`);
    expect(ok.users).toEqual([{ name: "a", rules: [">p", "on", "+get", "~k*"], clusterUsername: "", clusterPassword: "" }]);
    expect(problemsOf(`${MIN}[[users]]\nrules = "on"\n[[users]]\nname = "a b"\n[[users]]\nname = "c"\n[[users]]\nname = "c"\npassword_sha256 = "XY"\ncluster_username = "u"\nnope = 1\n`)).toEqual([
      "users[0].name: required",
      'users[1].name: expected a user name without spaces, got "a b"',
      'unknown key "users[3].nope"',
      'users[3].name: user "c" is defined twice',
      'users[3].password_sha256: expected 64 lowercase hex digits (SHA-256), got "XY"',
      "users[3].cluster_username: requires cluster_password (ACL AUTH needs both)",
    ]);
    expect(problemsOf(`${MIN}[users]\nname = "a"\n`)).toEqual(["users: expected [[users]] tables, got a table"]);
  });

  test("TLS keys go together", () => {
    expect(problemsOf(`${MIN}[server]\nport = 0\n`)).toEqual(["server.port: 0 (no plaintext listener) needs tls.port"]);
    expect(problemsOf(`${MIN}[tls]\nport = 6379\n`)).toEqual([
      "tls.port: must differ from server.port (6379)",
      "tls.port: requires tls.cert_file and tls.key_file",
      'tls.auth_clients: "yes" requires tls.ca_file (the CA client certificates are checked against), or set it to "no"',
    ]);
    expect(problemsOf(`${MIN}tls_cert_file = "c"\n`)).toEqual(["cluster.tls_cert_file: tls_cert_file and tls_key_file go together"]);
    expect(parseConfig(`${MIN}[server]\nport = 0\n[tls]\nport = 6380\ncert_file = "c"\nkey_file = "k"\nauth_clients = "no"\n`).tls.port).toBe(6380);
  });

  test("secretWarnings: only a file that holds secrets and that others can read", () => {
    const dir = mkdtempSync(join(tmpdir(), "predixy-mode-"));
    const file = join(dir, "p.toml");
    const inline = `[server]\npassword = "x"\n${MIN}[[users]]\nname = "u"\npassword_sha256 = "${"a".repeat(64)}"\n`;
    writeFileSync(file, inline);
    chmodSync(file, 0o644); // not the mode option: the umask would narrow it
    expect(inlineSecrets(inline)).toEqual(["server.password", "users[0].password_sha256"]);
    expect(secretWarnings(file, inline)).toHaveLength(1);
    chmodSync(file, 0o640);
    expect(secretWarnings(file, inline)).toEqual([]);
    chmodSync(file, 0o644);
    expect(secretWarnings(file, `[server]\npassword = { env = "X" }\n${MIN}`)).toEqual([]);
  });
});
