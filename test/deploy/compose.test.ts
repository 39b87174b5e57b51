// compose.yaml: valid Compose (dclint checks it against the Compose Specification's schema) and in step with config.yaml and the image.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { parseConfig } from "../../src/config/config.ts";
import { finalStage } from "../helpers/dockerfile.ts";

const ROOT = resolve(import.meta.dir, "../..");
const text = readFileSync(join(ROOT, "compose.yaml"), "utf8");
const compose = parse(text);
const dir = mkdtempSync(join(tmpdir(), "predixy-compose-"));

function dclint(file: string) {
  const p = Bun.spawnSync([join(ROOT, "node_modules/.bin/dclint"), "--color=false", file], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
}

describe("syntax", () => {
  test("dclint finds no schema error and no warning", () => {
    const r = dclint(join(ROOT, "compose.yaml"));
    expect(r.out.trim()).toBe("");
    expect(r.code).toBe(0);
  });

  test("dclint does report a key the Compose schema does not have (the check can fail)", () => {
    const broken = join(dir, "compose.yaml");
    writeFileSync(broken, text.replace("    depends_on:\n      cluster-init:", "    depend_on:\n      cluster-init:"));
    const r = dclint(broken);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("must NOT have additional properties");
  });

  test("no $ is left for Compose to interpolate: the init script's shell variables are escaped as $$", () => {
    const script = compose.services["cluster-init"].command.join("\n");
    expect(script).toContain("$$nodes");
    expect(script.replaceAll("$$", "")).not.toContain("$");
  });
});

describe("in step with config.yaml and the image", () => {
  const cfg = parseConfig(readFileSync(join(ROOT, "config.yaml"), "utf8"), "config.yaml", "yaml");
  const predixy = compose.services.predixy;

  test("predixy is built from the Dockerfile and reads ./config.yaml where the image looks by default", () => {
    expect(predixy.build).toBe(".");
    expect(predixy.volumes).toContain(`./config.yaml:${finalStage().env.PREDIXY_CONFIG}:ro`);
  });

  test("every entry point of config.yaml is a Redis node of this file, on Redis' port", () => {
    for (const ep of cfg.cluster.entryPoints) {
      expect(compose.services[ep.host]?.command).toContain("--cluster-enabled");
      expect(ep.port).toBe(6379);
    }
  });

  test("the cluster is formed from every node before predixy starts", () => {
    const nodes = Object.keys(compose.services).filter((s) => compose.services[s].command?.includes("--cluster-enabled"));
    expect(nodes).toHaveLength(6);
    const init = compose.services["cluster-init"];
    expect(Object.keys(init.depends_on).sort()).toEqual(nodes.sort());
    expect(init.command.join("\n")).toContain("--cluster-replicas 1");
    expect(predixy.depends_on["cluster-init"].condition).toBe("service_completed_successfully");
  });

  test("the published ports are the config's client and admin ports, on loopback (no password, an admin server without authentication)", () => {
    expect(cfg.server.password).toBe("");
    // The admin server must listen beyond the container's loopback for a published port to reach it.
    expect(["0.0.0.0", "::"]).toContain(cfg.admin.bind);
    expect(predixy.ports).toEqual([
      `127.0.0.1:${cfg.server.port}:${cfg.server.port}`,
      `127.0.0.1:${cfg.admin.port}:${cfg.admin.port}`,
    ]);
    expect(finalStage().expose.toSorted()).toEqual([cfg.server.port, cfg.admin.port].toSorted());
  });

  test("the stop grace period covers the drain", () => {
    expect(Number(/^(\d+)s$/.exec(predixy.stop_grace_period)![1])).toBeGreaterThan(cfg.server.drainTimeoutMs / 1000);
  });
});
