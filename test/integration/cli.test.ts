// The command line as an operator meets it: exit codes and messages of `predixy`.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startProxy } from "../helpers/proxy.ts";
import { makeTestPki } from "../helpers/tls-certs.ts";

const MAIN = resolve(import.meta.dir, "../../src/main.ts");
const dir = mkdtempSync(join(tmpdir(), "predixy-cli-"));

function run(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** As run(), without blocking this process's event loop (for servers the test itself runs). */
async function runAsync(...args: string[]) {
  const p = Bun.spawn([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test("--version from source prints the version and the checkout's commit, and exits 0", () => {
  const r = run("--version");
  expect(r.code).toBe(0);
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: resolve(MAIN, "../..") }).stdout.toString().trim();
  expect(r.out).toMatch(new RegExp(`^predixy \\d+\\.\\d+\\.\\d+ \\(from source, commit ${head}(-dirty)?\\)\\n$`));
});

test("--version of an executable built with a commit prints that commit", () => {
  const exe = join(dir, "predixy-versioned");
  const b = Bun.spawnSync([process.execPath, "build", "--compile", "--define", 'PREDIXY_COMMIT="0123456789ab"', MAIN, "--outfile", exe], { stdout: "pipe", stderr: "pipe" });
  expect(b.exitCode).toBe(0);
  const r = Bun.spawnSync([exe, "--version"], { stdout: "pipe" });
  expect(r.stdout.toString()).toMatch(/^predixy \d+\.\d+\.\d+ \(commit 0123456789ab\)\n$/);
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

describe("--ping", () => {
  const PORT = 8595;

  /** A stand-in for predixy that answers AUTH (password "pw") and PING as Redis does (over TLS with `tls`). */
  function fakeProxy(password: string | null, tls?: { cert: string; key: string }) {
    return Bun.listen<{ authed: boolean }>({
      hostname: "127.0.0.1", port: PORT, tls,
      socket: {
        open(s) { s.data = { authed: password === null }; },
        data(s, d) {
          for (const cmd of new TextDecoder().decode(d).split("*").slice(1)) {
            const args = cmd.split("\r\n").filter((_, i) => i > 0 && i % 2 === 0);
            if (args[0] === "AUTH") { s.data.authed = args[1] === password; s.write(s.data.authed ? "+OK\r\n" : "-WRONGPASS invalid username-password pair\r\n"); }
            else if (args[0] === "PING") s.write(s.data.authed ? "+PONG\r\n" : "-NOAUTH Authentication required.\r\n");
          }
        },
      },
    });
  }
  const config = (extra: string) =>
    file("ping.yaml", `server:\n  bind: "0.0.0.0"\n  port: ${PORT}\n${extra}cluster:\n  entry_points: ["127.0.0.1:1"]\n`);

  test("PONG from the configured port (a wildcard bind means loopback): exit 0", async () => {
    const server = fakeProxy(null);
    try {
      const r = await runAsync("--ping", "-c", config(""));
      expect(r.code).toBe(0);
      expect(r.out).toBe(`PONG from 127.0.0.1:${PORT}\n`);
    } finally { server.stop(true); }
  });

  test("with server.password it authenticates first", async () => {
    const server = fakeProxy("pw");
    try {
      expect((await runAsync("--ping", "-c", config(`  password: "pw"\n`))).code).toBe(0);
      const wrong = await runAsync("--ping", "-c", config(`  password: "nope"\n`));
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain("WRONGPASS");
      const none = await runAsync("--ping", "-c", config(""));
      expect(none.code).toBe(1);
      expect(none.err).toContain("NOAUTH");
    } finally { server.stop(true); }
  });

  test("nothing listening: exit 1, saying so", () => {
    const r = run("--ping", "-c", config(""));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`predixy: no PONG from 127.0.0.1:${PORT}: connection refused\n`);
  });

  test("a bad config is a failed health check (1), not Docker's reserved 2", () => {
    const r = run("--ping", "-c", file("bad-ping.yaml", "server:\n  port: 0\n"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("server.port");
  });

  test("a TLS-only config is pinged over TLS on tls.port, its certificate not checked", async () => {
    // The test CA is trusted by no one: a PONG shows the certificate was not verified.
    const pki = await makeTestPki(join(dir, "pki"));
    const tlsOnly = (authClients: string) => file("ping-tls.yaml", [
      "server:", `  bind: "0.0.0.0"`, "  port: 0",
      "tls:", `  port: ${PORT}`, `  cert_file: "${pki.serverCert}"`, `  key_file: "${pki.serverKey}"`,
      `  ca_file: "${pki.caCert}"`, `  auth_clients: "${authClients}"`,
      "cluster:", `  entry_points: ["127.0.0.1:1"]`, "",
    ].join("\n"));
    const server = fakeProxy(null, { cert: await Bun.file(pki.serverCert).text(), key: await Bun.file(pki.serverKey).text() });
    try {
      for (const authClients of ["no", "optional"]) {
        const r = await runAsync("--ping", "-c", tlsOnly(authClients));
        expect(r.err).toBe("");
        expect(r.out).toBe(`PONG from 127.0.0.1:${PORT} (TLS)\n`);
        expect(r.code).toBe(0);
      }
      // Client certificates required: --ping has none, and says so rather than fail a handshake.
      const r = await runAsync("--ping", "-c", tlsOnly("yes"));
      expect(r.code).toBe(1);
      expect(r.err).toBe(`predixy: --ping: server.port is 0 and tls.auth_clients is "yes": --ping has no client certificate to present on the TLS port ${PORT}; ` +
        `check the admin server's /healthz instead, or set tls.auth_clients to "optional"\n`);
    } finally { server.stop(true); }
    // Nothing on the TLS port: a failed check, as for the plaintext one.
    const none = await runAsync("--ping", "-c", tlsOnly("no"));
    expect(none.code).toBe(1);
    expect(none.err).toBe(`predixy: no PONG from 127.0.0.1:${PORT} (TLS): connection refused\n`);
  });

  test("predixy answers --ping before it reaches the cluster, while /readyz says not ready", async () => {
    // Liveness, not readiness: predixy listens (and answers PING itself) with no cluster behind it.
    const ADMIN = 8596;
    const proxy = await startProxy(PORT, ["127.0.0.1:1"], { rest: `[admin]\nbind = "127.0.0.1"\nport = ${ADMIN}` });
    try {
      const r = await runAsync("--ping", "-c", proxy.configFile);
      expect(r.out).toBe(`PONG from 127.0.0.1:${PORT}\n`);
      expect(r.code).toBe(0);
      const ready = await fetch(`http://127.0.0.1:${ADMIN}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toStartWith("not ready: ");
      expect((await fetch(`http://127.0.0.1:${ADMIN}/healthz`)).status).toBe(200);
    } finally { await proxy.stop(); }
  });

  test("the config comes from PREDIXY_CONFIG when no -c is given", () => {
    const p = Bun.spawnSync([process.execPath, MAIN, "--check"], { env: { ...process.env, PREDIXY_CONFIG: config("") }, stdout: "pipe" });
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString()).toContain("ping.yaml: OK");
  });
});
