// YAML configs: the same schema, validation and messages as TOML (a conformance property), plus YAML's own syntax errors.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONFIG_SCHEMA, ConfigError, defaultConfig, loadConfig, parseConfig, type Config } from "../../../src/config/config.ts";
import { formatOf } from "../../../src/config/syntax.ts";

const MIN = `cluster:\n  entry_points: ["127.0.0.1:7000"]\n`;

/** The Config, or the problems, parseConfig gives for `text`. */
function outcome(text: string, format: "toml" | "yaml"): Config | readonly string[] {
  try {
    return parseConfig(text, "<config>", format);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

const problemsOf = (yaml: string) => {
  const o = outcome(yaml, "yaml");
  return Array.isArray(o) ? o : [];
};

// ---- one document written both ways ----

type Scalar = bigint | number | string | boolean;
type Value = Scalar | Value[] | { [k: string]: Value };
type Doc = Record<string, Value>;

function isMap(v: Value): v is { [k: string]: Value } {
  return typeof v === "object" && !Array.isArray(v);
}

/** A value as a literal both formats read the same way (a float always keeps its point). */
function literal(v: Value, yaml: boolean): string {
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    if (Number.isNaN(v)) return yaml ? ".nan" : "nan";
    if (!Number.isFinite(v)) return (v < 0 ? "-" : "") + (yaml ? ".inf" : "inf");
    return Number.isInteger(v) && Math.abs(v) < 1e21 ? v.toFixed(1) : String(v);
  }
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => literal(x, yaml)).join(", ")}]`;
  return `{ ${Object.entries(v).map(([k, x]) => `${k}${yaml ? ":" : " ="} ${literal(x, yaml)}`).join(", ")} }`;
}

function toToml(doc: Doc): string {
  const bare = Object.entries(doc).filter(([, v]) => !isMap(v)).map(([k, v]) => `${k} = ${literal(v, false)}\n`);
  const tables = Object.entries(doc).filter(([, v]) => isMap(v)).map(([k, v]) =>
    `[${k}]\n` + Object.entries(v as Doc).map(([kk, vv]) => `${kk} = ${literal(vv, false)}\n`).join(""));
  return bare.join("") + tables.join("");
}

/** In TOML's order: keys outside any table come first there, so they come first here too. */
function toYaml(doc: Doc): string {
  const entries = [...Object.entries(doc).filter(([, v]) => !isMap(v)), ...Object.entries(doc).filter(([, v]) => isMap(v))];
  return entries.map(([k, v]) => !isMap(v) ? `${k}: ${literal(v, true)}\n`
    : `${k}:\n` + Object.entries(v).map(([kk, vv]) => `  ${kk}: ${literal(vv, true)}\n`).join("")).join("");
}

const SECTIONS = Object.keys(CONFIG_SCHEMA);
const KEYS = [...new Set(Object.values(CONFIG_SCHEMA).flatMap((rules) => Object.keys(rules)))];
const name = (known: string[]) => fc.oneof(fc.constantFrom(...known), fc.stringMatching(/^[a-z][a-z_]{0,8}$/));
const scalar: fc.Arbitrary<Scalar> = fc.oneof(
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.constantFrom(0n, 1n, 6379n, 65536n, 2n ** 31n),
  fc.double(),
  fc.constantFrom("127.0.0.1:7000", "[::1]:7000", "nohost", "info", "::", "0.0.0.0", ""),
  fc.stringMatching(/^[ -~]{0,12}$/),
  fc.boolean(),
);
const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(name(KEYS), scalar, { maxKeys: 2 }) },
);
const section = fc.dictionary(name(KEYS), value, { maxKeys: 5 });
const doc: fc.Arbitrary<Doc> = fc.dictionary(name(SECTIONS), fc.oneof({ weight: 5, arbitrary: section }, { weight: 1, arbitrary: scalar }), { maxKeys: 5 });

describe("YAML and TOML agree", () => {
  test("any document gives the same Config or the same problems in both formats (property)", () => {
    fc.assert(
      fc.property(doc, (d) => {
        expect(outcome(toYaml(d), "yaml")).toEqual(outcome(toToml(d), "toml"));
      }),
      { numRuns: 1000 },
    );
  });

  test("a document that sets every key validly is the same Config", () => {
    const d: Doc = {
      server: { bind: "::", port: 7617n, max_clients: 500n, password: "s3cret", client_idle_timeout_ms: 30000n },
      cluster: { entry_points: ["10.0.0.1:7000", "[fe80::1]:7001", "redis-a.example.com:7002"], username: "u", password: "p", max_redirects: 16n },
      pool: { size: 100n, min_idle: 10n, max_idle: 50n },
      performance: { worker_threads: 8n, buffer_size: 4096n, batch_size: 100n },
      log: { level: "debug" },
    };
    const yaml = outcome(toYaml(d), "yaml");
    expect(Array.isArray(yaml)).toBe(false);
    expect(yaml).toEqual(outcome(toToml(d), "toml"));
    expect((yaml as Config).pool.size).toBe(100);
  });
});

describe("YAML values", () => {
  test("a float is not an integer, whatever it is worth", () => {
    expect(problemsOf(`${MIN}server:\n  port: 6379.0\n`)).toEqual(["server.port: expected an integer from 0 to 65535, got 6379.0"]);
    expect(problemsOf(`${MIN}server:\n  port: 1e3\n`)).toEqual(["server.port: expected an integer from 0 to 65535, got 1000.0"]);
  });

  test("hex and octal integers are integers, as in TOML", () => {
    expect((parseConfig(`${MIN}server:\n  port: 0x1A2B\n`, "y", "yaml")).server.port).toBe(0x1a2b);
    expect((parseConfig(`${MIN}server:\n  port: 0o17\n`, "y", "yaml")).server.port).toBe(15);
  });

  test("a quoted number is a string, not a port", () => {
    expect(problemsOf(`${MIN}server:\n  port: "6379"\n`)).toEqual(['server.port: expected an integer from 0 to 65535, got "6379"']);
  });

  test("yes/no/on/off are strings (YAML 1.2), so they are not mistaken for booleans", () => {
    expect(parseConfig(`${MIN}server:\n  password: yes\n`, "y", "yaml").server.password).toBe("yes");
  });

  test("unquoted host:port entries and an unquoted bind address read as strings", () => {
    const c = parseConfig(`server:\n  bind: 0.0.0.0\ncluster:\n  entry_points:\n    - redis-1:6379\n    - 10.0.0.2:6379\n`, "y", "yaml");
    expect(c.server.bind).toBe("0.0.0.0");
    expect(c.cluster.entryPoints).toEqual([{ host: "redis-1", port: 6379 }, { host: "10.0.0.2", port: 6379 }]);
  });

  test("a key with no value is null, and says so", () => {
    expect(problemsOf(`${MIN}server:\n  port:\n`)).toEqual(["server.port: expected an integer from 0 to 65535, got null"]);
  });

  test("a section whose keys are all commented out is empty, like [server] alone in TOML", () => {
    expect(parseConfig(`${MIN}server:\n  # port: 7000\npool:\n`, "y", "yaml")).toEqual(defaultConfig([{ host: "127.0.0.1", port: 7000 }]));
  });

  test("an empty file, or one of comments only, lacks only the entry points", () => {
    expect(problemsOf("")).toEqual(["cluster.entry_points: required"]);
    expect(problemsOf("# nothing yet\n")).toEqual(["cluster.entry_points: required"]);
  });

  test("anchors and aliases are followed", () => {
    const aliased = parseConfig(`cluster:\n  entry_points: ["a:1"]\n  connect_timeout_ms: &t 250\n  command_timeout_ms: *t\n`, "y", "yaml");
    expect(aliased.cluster.commandTimeoutMs).toBe(250);
  });

  test("a merge key (<<) is just an unknown key, not a silent merge", () => {
    expect(problemsOf(`${MIN}server:\n  <<: {port: 1}\n`)).toEqual(['unknown key "server.<<"']);
  });

  test("an alias bomb is refused instead of expanded", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) bomb.push(`${"abcdefghij"[i]}: &${"abcdefghij"[i]} [${Array(10).fill(`*${"abcdefghij"[i - 1]}`).join(", ")}]`);
    expect(problemsOf(bomb.join("\n") + "\n")).toEqual([expect.stringMatching(/^<config>: YAML syntax error: .*alias/i)]);
  });
});

describe("YAML syntax errors", () => {
  /** The single problem for `text`, split into its first line and the context lines after it. */
  function syntaxError(text: string): [string, string] {
    const ps = problemsOf(text);
    expect(ps).toHaveLength(1);
    const [first, ...rest] = ps[0].split("\n");
    return [first, rest.join("\n")];
  }

  test("a duplicate key is an error at its line, never last-one-wins", () => {
    const [first, context] = syntaxError(`${MIN}server:\n  port: 1\n  port: 2\n`);
    expect(first).toBe("<config>:5:3: YAML syntax error: Map keys must be unique");
    expect(context).toContain("port: 2");
  });

  test("bad indentation names line and column", () => {
    expect(syntaxError(`server:\n  port: 1\n bind: x\n`)[0]).toMatch(/^<config>:3:\d+: YAML syntax error: /);
  });

  test("an unclosed flow sequence is reported where the input ends", () => {
    expect(syntaxError(`cluster:\n  entry_points: ["a:1"\n`)[0]).toMatch(/^<config>:3:1: YAML syntax error: Flow sequence .* end with a ]$/);
  });

  test("two documents in one file are refused", () => {
    expect(syntaxError(`${MIN}---\n${MIN}`)[0]).toMatch(/^<config>:3:1: YAML syntax error: Source contains multiple documents/);
  });

  test("an unknown tag is refused, not guessed at", () => {
    expect(syntaxError(`${MIN}server:\n  port: !port 6379\n`)[0]).toMatch(/^<config>:4:9: YAML syntax error: Unresolved tag: !port/);
  });

  test("a list or a scalar at the top level is refused", () => {
    expect(problemsOf(`- server\n- cluster\n`)).toEqual(["<config>: expected a mapping of sections (server:, cluster:, …) at the top level, got a list"]);
    expect(problemsOf(`hello\n`)).toEqual(['<config>: expected a mapping of sections (server:, cluster:, …) at the top level, got "hello"']);
  });
});

describe("files", () => {
  const dir = mkdtempSync(join(tmpdir(), "predixy-yaml-"));

  test(".yaml and .yml are YAML; anything else is TOML", () => {
    expect(formatOf("/etc/predixy/config.yaml")).toBe("yaml");
    expect(formatOf("a.YML")).toBe("yaml");
    expect(formatOf("predixy.toml")).toBe("toml");
    expect(formatOf("predixy.conf")).toBe("toml");
    expect(formatOf("yaml")).toBe("toml");
  });

  test("loadConfig reads a .yaml file as YAML and names it in errors", async () => {
    const good = join(dir, "good.yaml"), bad = join(dir, "bad.yml");
    writeFileSync(good, `${MIN}server:\n  port: 7777\n`);
    writeFileSync(bad, `${MIN}server:\n  port: 1\n  port: 2\n`);
    expect((await loadConfig(good)).server.port).toBe(7777);
    await expect(loadConfig(bad)).rejects.toThrow(new RegExp(`^${bad.replace(/[.]/g, "\\.")}:5:3: YAML syntax error`));
  });
});
