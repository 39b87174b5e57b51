// deploy/systemd/predixy.service: systemd accepts it, it is hardened, and predixy does what the unit expects on signals.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseConfig } from "../../src/config/config.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";

const ROOT = resolve(import.meta.dir, "../..");
const UNIT = join(ROOT, "deploy/systemd/predixy.service");
const text = readFileSync(UNIT, "utf8");
const dir = mkdtempSync(join(tmpdir(), "predixy-systemd-"));

/** The [Service] settings, last one winning as in systemd (enough for these single-valued keys). */
const service: Record<string, string> = {};
for (const line of text.slice(text.indexOf("[Service]"), text.indexOf("[Install]")).split("\n")) {
  const m = /^(\w+)=(.*)$/.exec(line);
  if (m) service[m[1]] = m[2];
}

function analyze(...args: string[]) {
  const p = Bun.spawnSync(["systemd-analyze", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("systemd's own checks", () => {
  /** `verify` also checks that ExecStart's program exists: the unit is verified with a stand-in there. */
  function verify(unitText: string, name: string) {
    const stub = join(dir, "predixy");
    writeFileSync(stub, "#!/bin/sh\n");
    chmodSync(stub, 0o755);
    const unit = join(dir, name);
    writeFileSync(unit, unitText.replaceAll("/usr/local/bin/predixy", stub));
    return analyze("verify", unit);
  }

  test("systemd-analyze verify passes without a warning", () => {
    const r = verify(text, "predixy.service");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
  });

  test("systemd-analyze verify would report a mistake (the check can fail)", () => {
    expect(verify(text.replace("KillMode=mixed", "KillMode=gently"), "broken.service").err).toContain("kill mode");
  });

  test("systemd-analyze security rates its exposure low", () => {
    const r = analyze("security", "--offline=true", UNIT);
    const m = /Overall exposure level for predixy\.service: (\d+\.\d+)/.exec(r.out);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
  });
});

describe("settings", () => {
  test("runs the installed executable on /etc/predixy/config.yaml, the release's example config", () => {
    expect(service.Type).toBe("exec");
    expect(service.ExecStart).toBe("/usr/local/bin/predixy -c /etc/predixy/config.yaml");
    expect(() => parseConfig(readFileSync(join(ROOT, "config.yaml"), "utf8"), "config.yaml", "yaml")).not.toThrow();
  });

  test("reload is SIGHUP to the main process; a failure restarts it, a bad config (status 2) does not", () => {
    expect(service.ExecReload).toBe("/bin/kill -HUP $MAINPID");
    expect(service.Restart).toBe("on-failure");
    expect(service.RestartPreventExitStatus).toBe("2");
  });

  test("stop sends SIGTERM to the first process only, and waits longer than the default drain", () => {
    expect(service.KillMode).toBe("mixed");
    const drainS = parseConfig(`cluster:\n  entry_points: ["a:1"]\n`, "-", "yaml").server.drainTimeoutMs / 1000;
    expect(Number(/^(\d+)s$/.exec(service.TimeoutStopSec)![1])).toBeGreaterThan(drainS + 5);
  });

  test("LimitNOFILE holds max_clients plus backends for the example config on an 18-node cluster", () => {
    const c = parseConfig(readFileSync(join(ROOT, "config.yaml"), "utf8"), "config.yaml", "yaml");
    expect(Number(service.LimitNOFILE)).toBeGreaterThanOrEqual(c.server.maxClients + 64 + 18 * (c.pool.size + 1));
  });

  test("hardened: its own unprivileged user, read-only system, no new privileges, no capabilities", () => {
    expect(service.DynamicUser).toBe("yes");
    expect(service.ProtectSystem).toBe("strict");
    expect(service.NoNewPrivileges).toBe("yes");
    expect(service.CapabilityBoundingSet).toBe("");
    // The JIT needs writable code pages.
    expect(service.MemoryDenyWriteExecute).toBeUndefined();
  });
});

describe("predixy on the signals the unit sends", () => {
  let cluster: ClusterHandle;
  let proxy: ProxyHandle;

  beforeAll(async () => {
    cluster = await startCluster({ basePort: 8510, masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster") });
    proxy = await startProxy(8593, cluster.entryPoints);
  });

  afterAll(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  test("SIGHUP (ExecReload) reloads the config file and leaves it serving", async () => {
    await redisCli(8593, ["set", "hup", "before"]);
    proxy.signal("SIGHUP");
    for (let i = 0; i < 100 && !proxy.logs().includes("has no changes"); i++) await Bun.sleep(20);
    expect(proxy.logs()).toContain("SIGHUP: reloading");
    expect(proxy.logs()).toContain("has no changes");
    expect(await redisCli(8593, ["get", "hup"])).toBe("before");
  });

  test("SIGTERM (stop) ends it with status 0", async () => {
    proxy.signal("SIGTERM");
    expect(await proxy.exited).toBe(0);
  });
});
