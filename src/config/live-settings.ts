// The settings CONFIG GET reads and CONFIG SET changes at run time, under Redis' parameter names.

import { LOG_LEVELS, type Config, type LogLevel } from "./config.ts";

/** What changing a setting acts on; wired by main.ts. */
export interface SettingTargets {
  setLogLevel(level: LogLevel): void;
  setSlowlogThreshold(us: number): void;
  setSlowlogMaxLen(n: number): void;
  setLatencyTracking(on: boolean): void;
}

interface Setting {
  get(): string;
  /** Applies `value`; returns why it is refused, or null. Absent: immutable. */
  set?(value: string): string | null;
}

/** Redis' loglevel names, mapped onto LogTape's. */
const REDIS_LEVELS: Record<string, LogLevel> = { verbose: "info", notice: "info", nothing: "fatal" };

const INT = /^-?\d{1,15}$/;

export class LiveSettings {
  private readonly table: Record<string, Setting>;

  constructor(cfg: Config, targets: SettingTargets, configFile: string) {
    const m = cfg.metrics;
    const int = (min: number, max: number, apply: (n: number) => void) => (v: string) => {
      if (!INT.test(v)) return "argument couldn't be parsed into an integer";
      const n = Number(v);
      if (n < min || n > max) return `argument must be between ${min} and ${max} inclusive`;
      apply(n);
      return null;
    };
    const fixed = (v: string | number): Setting => ({ get: () => String(v) });
    this.table = {
      loglevel: {
        get: () => cfg.log.level,
        set: (v) => {
          const level = (LOG_LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : REDIS_LEVELS[v];
          if (level === undefined) return `argument(s) must be one of the following: ${[...LOG_LEVELS, ...Object.keys(REDIS_LEVELS)].join(", ")}`;
          cfg.log.level = level;
          targets.setLogLevel(level);
          return null;
        },
      },
      "slowlog-log-slower-than": {
        get: () => String(m.slowlogLogSlowerThan),
        set: int(-1, Number.MAX_SAFE_INTEGER, (n) => { m.slowlogLogSlowerThan = n; targets.setSlowlogThreshold(n); }),
      },
      "slowlog-max-len": {
        get: () => String(m.slowlogMaxLen),
        set: int(0, 1_000_000, (n) => { m.slowlogMaxLen = n; targets.setSlowlogMaxLen(n); }),
      },
      "latency-tracking": {
        get: () => (m.enabled ? "yes" : "no"),
        set: (v) => {
          if (v !== "yes" && v !== "no") return "argument must be 'yes' or 'no'";
          m.enabled = v === "yes";
          targets.setLatencyTracking(m.enabled);
          return null;
        },
      },
      "latency-tracking-info-percentiles": {
        get: () => m.latencyPercentiles.join(" "),
        set: (v) => {
          const ps = v.trim() === "" ? [] : v.trim().split(/\s+/).map(Number);
          if (ps.length === 0 || ps.some((p, i) => !(p >= 0 && p <= 100) || (i > 0 && p <= ps[i - 1]))) {
            return "percentiles must be ascending numbers between 0 and 100";
          }
          m.latencyPercentiles = ps;
          return null;
        },
      },
      port: fixed(cfg.server.port),
      bind: fixed(cfg.server.bind),
      maxclients: fixed(cfg.server.maxClients),
      timeout: fixed(Math.floor(cfg.server.clientIdleTimeoutMs / 1000)),
      "worker-threads": fixed(cfg.performance.workerThreads),
      "cluster-entry-points": fixed(cfg.cluster.entryPoints.map((e) => `${e.host}:${e.port}`).join(" ")),
      "admin-port": fixed(cfg.admin.port),
      "config-file": fixed(configFile),
      // Asked for by redis-benchmark and other tools at start-up; a proxy persists nothing.
      save: fixed(""),
      appendonly: fixed("no"),
    };
  }

  /** [name, value] pairs whose name matches any of the glob `patterns` (case-insensitive). */
  get(patterns: string[]): [string, string][] {
    const res = patterns.map((p) => globRegExp(p.toLowerCase()));
    return Object.entries(this.table).filter(([name]) => res.some((r) => r.test(name))).map(([name, s]) => [name, s.get()]);
  }

  /** Null when `name` may be set to `value` (then it is), else Redis' error text. */
  set(name: string, value: string): string | null {
    const s = this.table[name.toLowerCase()];
    if (s === undefined) return `ERR Unknown option or number of arguments for CONFIG SET - '${name}'`;
    if (s.set === undefined) return `ERR CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`;
    const why = s.set(value);
    return why === null ? null : `ERR CONFIG SET failed (possibly related to argument '${name}') - ${why}`;
  }

  /** Whether `name` exists and can be set (checked for every pair before any is applied). */
  settable(name: string): boolean {
    return this.table[name.toLowerCase()]?.set !== undefined;
  }
}

/** Redis' glob (stringmatchlen) for CONFIG GET: * ? [abc] [^a-z] and backslash escapes. */
export function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 1);
      if (close < 0) { re += "\\["; continue; }
      let body = glob.slice(i + 1, close);
      const neg = body.startsWith("^");
      if (neg) body = body.slice(1);
      re += `[${neg ? "^" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = close;
    } else if (c === "\\" && i + 1 < glob.length) re += escape(glob[++i]);
    else re += escape(c);
  }
  return new RegExp(`^${re}$`, "s");
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
