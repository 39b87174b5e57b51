// SIGHUP: read the config file again, apply what can change live, name what needs a restart.

import { getLogger } from "@logtape/logtape";
import { CONFIG_SCHEMA, ConfigError, loadConfig, type Config } from "./config/config.ts";

const log = getLogger(["predixy", "reload"]);

/** Applies a reloaded config to one part of the proxy. `next` keeps the old value of keys that need a restart. */
export type ReloadHook = (next: Config, prev: Config) => void;

const hooks: ReloadHook[] = [];

/**
 * Registers `hook` to run on each accepted reload, after those registered before it. A hook
 * that throws is logged and the others still run: one part failing to apply a change must
 * not leave the rest on the old config.
 */
export function onReload(hook: ReloadHook): void {
  hooks.push(hook);
}

/**
 * Keys read once at start-up: a change is logged and takes effect at the next restart. (Users
 * and the command policy shape the command table and the backend credentials' pools; backend
 * TLS, metrics and the admin server are set up once.)
 */
export const RESTART_KEYS: readonly string[] = [
  "server.bind", "server.port", "pool.size", "pool.min_idle", "pool.max_idle", "pool.max_pinned",
  "performance.worker_threads", "performance.buffer_size",
  "cluster.tls", "cluster.tls_ca_file", "cluster.tls_cert_file", "cluster.tls_key_file", "cluster.tls_server_name", "cluster.tls_verify",
  "tls.port", "commands.deny", "commands.rename", "users",
  "metrics.enabled", "metrics.slowlog_log_slower_than", "metrics.slowlog_max_len", "metrics.hotkeys", "metrics.hotkeys_sample_rate",
  "metrics.latency_percentiles", "admin.bind", "admin.port",
];

/** The "section.key" names (and "users") whose values differ between `a` and `b`. */
export function changedKeys(a: Config, b: Config): string[] {
  const out: string[] = [];
  if (JSON.stringify(a.users) !== JSON.stringify(b.users)) out.push("users");
  for (const [section, rules] of Object.entries(CONFIG_SCHEMA)) {
    for (const key of Object.keys(rules)) {
      const field = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      const va = (a as unknown as Record<string, Record<string, unknown>>)[section][field];
      const vb = (b as unknown as Record<string, Record<string, unknown>>)[section][field];
      if (JSON.stringify(va) !== JSON.stringify(vb)) out.push(`${section}.${key}`);
    }
  }
  return out;
}

/**
 * Reads `path` again. An invalid file is rejected with the problems `--check` reports and the
 * running config stays. Otherwise every hook applies the new config (keys in RESTART_KEYS keep
 * their running values, and are logged), even when nothing changed in the file: files it names
 * (TLS certificates) may have. Returns the config now in force.
 */
export async function reload(path: string, current: Config): Promise<Config> {
  let next: Config;
  try {
    next = await loadConfig(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error("reload rejected, the running configuration stays: {problems}", { problems: err.problems.join("; ") });
    return current;
  }
  const changed = changedKeys(current, next);
  if (changed.length === 0) log.info("reload: {path} has no changes", { path });
  const restart = changed.filter((k) => RESTART_KEYS.includes(k));
  const applied = structuredClone(next);
  if (restart.includes("users")) applied.users = structuredClone(current.users);
  for (const key of restart) {
    if (key === "users") continue;
    const [section, name] = key.split(".");
    const field = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    (applied as unknown as Record<string, Record<string, unknown>>)[section][field] =
      (current as unknown as Record<string, Record<string, unknown>>)[section][field];
  }
  for (const hook of hooks) {
    try {
      hook(applied, current);
    } catch (err) {
      log.error("reload: applying the new configuration failed in part: {err}", { err: (err as Error)?.stack ?? err });
    }
  }
  const live = changed.filter((k) => !restart.includes(k));
  if (live.length > 0) log.info("reloaded {path}: {keys} now in effect", { path, keys: live.join(", ") });
  if (restart.length > 0) log.warn("reload: {keys} changed in {path} but take effect only after a restart", { keys: restart.join(", "), path });
  return applied;
}
