// make release's script: tarballs with the right files, SHA256SUMS that verify, and executables for the right machine.
//
// Built here for linux-x64 (run natively) and linux-arm64 (cross-compiled with Bun's arm64
// runtime from the npm registry; run under qemu-user with Debian's arm64 cross glibc, which
// setup.sh cross installs). The musl targets take the same path as arm64; `make release` builds
// all four.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };

const ROOT = resolve(import.meta.dir, "../..");
const VERSION = pkg.version;
const TARGETS = ["linux-x64", "linux-arm64"];
const dir = mkdtempSync(join(tmpdir(), "predixy-release-"));
const out = join(dir, "dist");
const FILES = ["DEPLOY.md", "LICENSE", "README.md", "config.yaml", "predixy", "predixy.service", "predixy.toml"];

function run(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const p = Bun.spawnSync(argv, { cwd: opts.cwd ?? ROOT, env: opts.env, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}
const commit = run(["git", "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"]).out.trim();

beforeAll(() => {
  const tools = run(["bash", "scripts/setup.sh", "cross"]);
  if (tools.code !== 0) throw new Error(`setup.sh cross failed:\n${tools.err}`);
  const r = run(["bash", "scripts/release.sh", out], { env: { ...process.env, TARGETS: TARGETS.join(" ") } as Record<string, string> });
  if (r.code !== 0) throw new Error(`release.sh failed:\n${r.out}\n${r.err}`);
  for (const t of TARGETS) expect(run(["tar", "-xzf", join(out, `predixy-${VERSION}-${t}.tar.gz`), "-C", dir]).code).toBe(0);
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("archives", () => {
  test("one tarball per target, each holding one directory with the executable and its companions", () => {
    for (const t of TARGETS) {
      const listing = run(["tar", "-tzf", join(out, `predixy-${VERSION}-${t}.tar.gz`)]).out.trim().split("\n").sort();
      expect(listing).toEqual([`predixy-${VERSION}-${t}/`, ...FILES.map((f) => `predixy-${VERSION}-${t}/${f}`)].sort());
    }
  });

  test("SHA256SUMS names every tarball and verifies with sha256sum -c", () => {
    const sums = readFileSync(join(out, "SHA256SUMS"), "utf8");
    expect(sums.trim().split("\n").map((l) => l.split(/\s+/)[1]).sort()).toEqual(TARGETS.map((t) => `predixy-${VERSION}-${t}.tar.gz`).sort());
    const r = run(["sha256sum", "-c", "SHA256SUMS"], { cwd: out });
    expect(r.code).toBe(0);
    expect(r.out.match(/: OK$/gm)).toHaveLength(TARGETS.length);
  });

  test("the companions are the repository's own files", () => {
    const pkgDir = join(dir, `predixy-${VERSION}-linux-x64`);
    const same: [string, string][] = [["config.yaml", "config.yaml"], ["predixy.toml", "predixy.toml"], ["LICENSE", "LICENSE"],
      ["README.md", "README.md"], ["predixy.service", "deploy/systemd/predixy.service"], ["DEPLOY.md", "docs/DEPLOY.md"]];
    for (const [inTar, inRepo] of same) expect(readFileSync(join(pkgDir, inTar), "utf8")).toBe(readFileSync(join(ROOT, inRepo), "utf8"));
  });

  test("the executable is executable, for everyone", () => {
    const line = run(["tar", "-tvzf", join(out, `predixy-${VERSION}-linux-x64.tar.gz`)]).out.split("\n").find((l) => l.endsWith("/predixy"));
    expect(line).toStartWith("-rwxr-xr-x 0/0 ");
  });
});

describe("executables", () => {
  const x64 = join(dir, `predixy-${VERSION}-linux-x64`);

  test("linux-x64 prints the version and the commit it was built from", () => {
    const r = run([join(x64, "predixy"), "--version"]);
    expect(r.out).toBe(`predixy ${VERSION} (commit ${commit})\n`);
  });

  test("linux-x64 accepts both shipped example configs", () => {
    for (const f of ["config.yaml", "predixy.toml"]) {
      const r = run([join(x64, "predixy"), "-c", join(x64, f), "--check"]);
      expect(r.out).toBe(`${join(x64, f)}: OK\n`);
      expect(r.code).toBe(0);
    }
  });

  test("linux-arm64, run under qemu, prints the version and commit and accepts the example config", () => {
    const arm = join(dir, `predixy-${VERSION}-linux-arm64`);
    const qemu = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", join(arm, "predixy")];
    expect(run([...qemu, "--version"]).out).toBe(`predixy ${VERSION} (commit ${commit})\n`);
    const r = run([...qemu, "-c", join(arm, "config.yaml"), "--check"]);
    expect(r.out).toBe(`${join(arm, "config.yaml")}: OK\n`);
    expect(r.code).toBe(0);
  });

  test("linux-arm64 is an AArch64 glibc executable carrying the same bundle", () => {
    const exe = readFileSync(join(dir, `predixy-${VERSION}-linux-arm64`, "predixy"));
    expect([...exe.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // ELF
    expect(exe.readUInt16LE(18)).toBe(183); // e_machine: EM_AARCH64
    expect(exe.includes("/lib/ld-linux-aarch64.so.1")).toBe(true);
    expect(exe.includes(commit)).toBe(true); // the --define of this build
    expect(exe.includes("[--check | --ping]")).toBe(true); // the bundled USAGE text
  });
});
