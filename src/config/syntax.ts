// Config file text → a plain document of sections, from TOML or YAML; the schema (config.ts) checks it.

import { parse as parseToml, TomlError } from "smol-toml";
import { parseDocument } from "yaml";

export type ConfigFormat = "toml" | "yaml";

/** `.yaml`/`.yml` files are YAML; anything else is TOML (the original, and the default). */
export function formatOf(path: string): ConfigFormat {
  return /\.ya?ml$/i.test(path) ? "yaml" : "toml";
}

/**
 * Both front ends give the same shapes: integers as bigint (so `port: 6379.0`, a float, is told
 * apart from `port: 6379`, and a huge integer reaches the range check), floats as numbers,
 * tables/mappings as plain objects. A syntax error comes back as one string,
 * `source:line:column: <FORMAT> syntax error: reason`, followed by the lines around it.
 */
export function readDocument(text: string, source: string, format: ConfigFormat): Record<string, unknown> | string {
  return format === "yaml" ? readYaml(text, source) : readToml(text, source);
}

function readToml(text: string, source: string): Record<string, unknown> | string {
  try {
    return parseToml(text, { integersAsBigInt: true });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: <reason>\n\n<codeblock>"; keep the reason,
    // put the position up front where editors and terminals can jump to it.
    const reason = err.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
    return `${source}:${err.line}:${err.column}: TOML syntax error: ${reason}\n${err.codeblock.trimEnd()}`;
  }
}

// Bun.YAML.parse was the first choice, but it keeps the last of two equal keys without a word,
// reads 6379.0 as 6379 and reports no usable error position; the `yaml` package does all three.
function readYaml(text: string, source: string): Record<string, unknown> | string {
  // YAML 1.2 core schema: `yes`/`on` are strings and no dates, as in TOML. Warnings (an unknown
  // `!tag`) are refused like errors: a config should not mean something the reader guessed.
  // logLevel "error": we report warnings ourselves instead of YAML printing them to stderr.
  const doc = parseDocument(text, { intAsBigInt: true, uniqueKeys: true, prettyErrors: true, logLevel: "error" });
  const [first] = [...doc.errors, ...doc.warnings];
  if (first !== undefined) {
    const at = first.linePos?.[0];
    // With prettyErrors the message is "<reason> at line L, column C:\n\n<lines>\n<caret>".
    const m = /^([\s\S]*?) at line \d+, column \d+:\n\n([\s\S]*)$/.exec(first.message);
    const reason = m ? m[1] : first.message;
    const where = at ? `${source}:${at.line}:${at.col}` : source;
    return `${where}: YAML syntax error: ${reason}${m ? `\n${m[2].trimEnd()}` : ""}`;
  }
  // An alias bomb ("billion laughs") stops here instead of exhausting memory.
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return `${source}: YAML syntax error: ${(err as Error).message}`;
  }
  if (value === null || value === undefined) return {}; // empty file, or only comments
  if (typeof value !== "object" || Array.isArray(value)) {
    return `${source}: expected a mapping of sections (server:, cluster:, …) at the top level, got ${Array.isArray(value) ? "a list" : JSON.stringify(String(value))}`;
  }
  // A section whose keys are all commented out reads as null; TOML's lone `[server]` is empty too.
  const sections = value as Record<string, unknown>;
  for (const k of Object.keys(sections)) if (sections[k] === null) sections[k] = {};
  return sections;
}
