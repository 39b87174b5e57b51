// The command line as an operator meets it: exit codes and messages of `predixy`.

import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MAIN = resolve(import.meta.dir, "../../src/main.ts");
const dir = mkdtempSync(join(tmpdir(), "predixy-cli-"));

function run(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test("--version prints the version and exits 0", () => {
  const r = run("--version");
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^predixy \d+\.\d+\.\d+\n$/);
});

test("--check accepts a valid file without connecting anywhere", () => {
  const r = run("-c", file("ok.toml", `[cluster]\nentry_points = ["127.0.0.1:1"]\n`), "--check");
  expect(r.code).toBe(0);
  expect(r.out).toContain("OK");
});

test("an invalid config names every bad key and exits 2", () => {
  const r = run("-c", file("bad.toml", `[server]\nprot = 1\nport = "x"\n[cluster]\nentry_points = ["nohost"]\n`));
  expect(r.code).toBe(2);
  expect(r.err).toContain(`unknown key "server.prot"`);
  expect(r.err).toContain("server.port");
  expect(r.err).toContain("cluster.entry_points[0]");
});

test("a missing config file and an unknown flag exit 2", () => {
  expect(run("-c", join(dir, "nope.toml")).code).toBe(2);
  const r = run("--bogus");
  expect(r.code).toBe(2);
  expect(r.err).toContain("Usage");
});
