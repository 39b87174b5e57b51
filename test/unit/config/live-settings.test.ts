// CONFIG GET/SET over the live settings: Redis' glob, validation, immutable keys, the targets called.

import { expect, test } from "bun:test";
import { defaultConfig } from "../../../src/config/config.ts";
import { globRegExp, LiveSettings } from "../../../src/config/live-settings.ts";

function settings() {
  const calls: string[] = [];
  const cfg = defaultConfig([{ host: "127.0.0.1", port: 7000 }]);
  const s = new LiveSettings(cfg, {
    setLogLevel: (l) => calls.push(`log ${l}`),
    setSlowlogThreshold: (n) => calls.push(`slow ${n}`),
    setSlowlogMaxLen: (n) => calls.push(`len ${n}`),
    setLatencyTracking: (on) => calls.push(`track ${on}`),
  }, "/etc/predixy.toml");
  return { s, cfg, calls };
}

test("Redis' glob: * ? [set] [^set] and escapes, whole name only", () => {
  const m = (g: string, name: string) => globRegExp(g).test(name);
  expect(m("slowlog*", "slowlog-max-len")).toBe(true);
  expect(m("slowlog", "slowlog-max-len")).toBe(false);
  expect(m("p?rt", "port")).toBe(true);
  expect(m("[pb]ort", "bort")).toBe(true);
  expect(m("[^p]ort", "port")).toBe(false);
  expect(m("a\\*", "a*")).toBe(true);
  expect(m("a\\*", "ab")).toBe(false);
  expect(m("a.b", "axb")).toBe(false);
  expect(m("[unclosed", "[unclosed")).toBe(true);
});

test("CONFIG GET matches case-insensitively and lists each setting once", () => {
  const { s } = settings();
  expect(s.get(["SLOWLOG-*"])).toEqual([["slowlog-log-slower-than", "10000"], ["slowlog-max-len", "128"]]);
  expect(s.get(["port", "p*"]).map(([k]) => k)).toEqual(["port"]);
  expect(s.get(["config-file"])).toEqual([["config-file", "/etc/predixy.toml"]]);
  expect(s.get(["nosuch"])).toEqual([]);
});

test("CONFIG SET validates, applies through the targets, and keeps immutable settings", () => {
  const { s, cfg, calls } = settings();
  expect(s.set("loglevel", "notice")).toBeNull();
  expect(cfg.log.level).toBe("info");
  expect(s.set("LOGLEVEL", "debug")).toBeNull();
  expect(s.get(["loglevel"])).toEqual([["loglevel", "debug"]]);
  expect(s.set("loglevel", "loud")).toStartWith("ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of");
  expect(s.set("slowlog-log-slower-than", "-1")).toBeNull();
  expect(s.set("slowlog-log-slower-than", "-2")).toContain("must be between -1 and");
  expect(s.set("slowlog-max-len", "1.5")).toContain("couldn't be parsed into an integer");
  expect(s.set("latency-tracking", "maybe")).toContain("'yes' or 'no'");
  expect(s.set("latency-tracking", "no")).toBeNull();
  expect(s.set("latency-tracking-info-percentiles", "99 50")).toContain("ascending");
  expect(s.set("latency-tracking-info-percentiles", "90 99.99")).toBeNull();
  expect(cfg.metrics.latencyPercentiles).toEqual([90, 99.99]);
  expect(s.set("port", "1")).toBe("ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
  expect(s.set("nosuch", "1")).toBe("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
  expect(s.settable("port")).toBe(false);
  expect(s.settable("slowlog-max-len")).toBe(true);
  expect(calls).toEqual(["log info", "log debug", "slow -1", "track false"]);
});
