// TLS on both sides: redis-cli, ioredis and redis-py over TLS to predixy, predixy over TLS to a
// TLS-only cluster; bad handshakes refused and counted; certificates reloaded on SIGHUP.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Redis from "ioredis";
import { startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { rawExchange, startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { makeTestPki, serial, type TestPki } from "../helpers/tls-certs.ts";

const BASE = 8330;
const PLAIN = 8396, TLS = 8397;
let pki: TestPki;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
/** The files the proxy serves, swapped on SIGHUP. */
let liveCert: string, liveKey: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "predixy-tls-"));
  pki = await makeTestPki(join(dir, "pki"));
  liveCert = join(dir, "live.crt");
  liveKey = join(dir, "live.key");
  copyFileSync(pki.serverCert, liveCert);
  copyFileSync(pki.serverKey, liveKey);
  cluster = await startCluster({
    basePort: BASE, masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster"),
    tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert },
  });
  proxy = await startProxy(PLAIN, [cluster.entryPoints[0]], {
    cluster: [`tls = true`, `tls_ca_file = "${pki.caCert}"`, `tls_cert_file = "${pki.clientCert}"`, `tls_key_file = "${pki.clientKey}"`].join("\n"),
    rest: ["[tls]", `port = ${TLS}`, `cert_file = "${liveCert}"`, `key_file = "${liveKey}"`, `ca_file = "${pki.caCert}"`].join("\n"),
  });
}, 90_000);

afterAll(async () => {
  await proxy?.stop();
  await cluster?.stop();
});

async function run(cmd: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const timer = setTimeout(() => p.kill(), 15_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: (out + err).trim() };
}

const tlsCli = (cert: string | null, key: string | null, ...args: string[]) =>
  run(["redis-cli", "-p", String(TLS), "--tls", "--cacert", pki.caCert, ...(cert ? ["--cert", cert, "--key", key!] : []), ...args]);

async function refused(): Promise<number> {
  const r = await run(["redis-cli", "-p", String(PLAIN), "info", "stats"]);
  return Number(/tls_refused_connections:(\d+)/.exec(r.out)?.[1]);
}

function tlsClient(): Redis {
  return new Redis({
    port: TLS, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null,
    tls: { ca: readFileSync(pki.caCert), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) },
  });
}

describe("TLS", () => {
  test("redis-cli --tls with a client certificate works through predixy to the TLS-only cluster", async () => {
    // Keys spread over the three masters: every node is reached over TLS (they have no plaintext port).
    for (let i = 0; i < 12; i++) expect((await tlsCli(pki.clientCert, pki.clientKey, "set", `tls:${i}`, `v${i}`)).out).toBe("OK");
    expect((await tlsCli(pki.clientCert, pki.clientKey, "get", "tls:7")).out).toBe("v7");
    // The plaintext port beside it serves the same data.
    expect((await run(["redis-cli", "-p", String(PLAIN), "get", "tls:3"])).out).toBe("v3");
  });

  test("ioredis over TLS", async () => {
    const r = tlsClient();
    await r.connect();
    await r.set("tls:io", "ioredis");
    expect(await r.get("tls:io")).toBe("ioredis");
    expect(await r.incrby("tls:counter", 5)).toBe(5);
    r.disconnect();
  });

  test("redis-py over TLS", async () => {
    const script = [
      "import redis",
      `r = redis.Redis(host="127.0.0.1", port=${TLS}, ssl=True, ssl_ca_certs="${pki.caCert}", ssl_certfile="${pki.clientCert}", ssl_keyfile="${pki.clientKey}")`,
      "r.set('tls:py', 'redis-py')",
      "print(r.get('tls:py').decode(), r.ping())",
    ].join("\n");
    const r = await run(["/usr/bin/python3", "-c", script]);
    expect(r.out).toBe("redis-py True");
    expect(r.code).toBe(0);
  });

  test("plaintext, no certificate, an expired one and one from another CA are refused, counted, and disturb no one", async () => {
    const steady = tlsClient();
    await steady.connect();
    await steady.set("tls:steady", "1");
    const before = await refused();

    const plain = await rawExchange(TLS, "PING\r\n", (s) => s.includes("\r\n"), 2000);
    expect(plain.text).not.toContain("PONG");
    expect(plain.closed).toBe(true);
    const none = await tlsCli(null, null, "ping");
    const expired = await tlsCli(pki.expiredCert, pki.expiredKey, "ping");
    const other = await tlsCli(pki.otherClientCert, pki.otherClientKey, "ping");
    for (const r of [none, expired, other]) expect(r.out).not.toContain("PONG");

    expect(await refused()).toBe(before + 4);
    expect(await steady.incr("tls:steady")).toBe(2);
    steady.disconnect();
  });

  test("SIGHUP serves a new certificate to new clients; connected clients stay connected", async () => {
    const steady = tlsClient();
    await steady.connect();
    const id = await steady.client("ID");
    // A new server certificate from the same CA, with another subject.
    const dir = mkdtempSync(join(tmpdir(), "predixy-tls2-"));
    const fresh = await makeTestPki(dir);
    const p = Bun.spawn(["openssl", "x509", "-req", "-in", join(fresh.dir, "server.csr"), "-CA", pki.caCert, "-CAkey", pki.caKey,
      "-set_serial", serial(), "-out", liveCert, "-days", "30", "-extfile", join(fresh.dir, "server.ext"), "-subj", "/CN=reloaded"], { stdout: "pipe", stderr: "pipe" });
    expect(await p.exited).toBe(0);
    copyFileSync(fresh.serverKey, liveKey);
    process.kill(proxy.pid, "SIGHUP");
    for (let i = 0; i < 100 && !proxy.logs().includes("TLS certificates reloaded"); i++) await Bun.sleep(50);
    expect(proxy.logs()).toContain("TLS certificates reloaded");

    const s = await run(["sh", "-c", `echo | openssl s_client -connect 127.0.0.1:${TLS} -CAfile ${pki.caCert} -cert ${pki.clientCert} -key ${pki.clientKey} 2>/dev/null | openssl x509 -noout -subject`]);
    expect(s.out).toContain("CN = reloaded");
    expect((await tlsCli(pki.clientCert, pki.clientKey, "ping")).out).toBe("PONG");
    // The client connected before the reload is the same connection, still served.
    expect(await steady.client("ID")).toBe(id);
    expect(await steady.ping()).toBe("PONG");
    steady.disconnect();
  });

  test("auth_clients = optional: no certificate is fine, a bad one is refused", async () => {
    const opt = await startProxy(PLAIN + 2, [cluster.entryPoints[0]], {
      cluster: [`tls = true`, `tls_ca_file = "${pki.caCert}"`, `tls_cert_file = "${pki.clientCert}"`, `tls_key_file = "${pki.clientKey}"`].join("\n"),
      rest: ["[tls]", `port = ${TLS + 2}`, `cert_file = "${pki.serverCert}"`, `key_file = "${pki.serverKey}"`, `ca_file = "${pki.caCert}"`, `auth_clients = "optional"`].join("\n"),
    });
    try {
      const cli = (...a: string[]) => run(["redis-cli", "-p", String(TLS + 2), "--tls", "--cacert", pki.caCert, ...a]);
      expect((await cli("get", "tls:3")).out).toBe("v3");
      expect((await cli("--cert", pki.otherClientCert, "--key", pki.otherClientKey, "ping")).out).not.toContain("PONG");
      expect((await cli("--cert", pki.clientCert, "--key", pki.clientKey, "ping")).out).toBe("PONG");
    } finally {
      await opt.stop();
    }
  }, 30_000);

  test("a cluster certificate from an untrusted CA stops predixy from starting, saying why", async () => {
    const err = await startProxy(PLAIN + 3, [cluster.entryPoints[0]], {
      cluster: [`tls = true`, `tls_ca_file = "${pki.otherCaCert}"`, `tls_cert_file = "${pki.clientCert}"`, `tls_key_file = "${pki.clientKey}"`].join("\n"),
    }).then(async (p) => { await p.stop(); return ""; }, (e: Error) => e.message);
    expect(err).toContain("TLS certificate refused");
    expect(err).toContain("no entry point answered CLUSTER SLOTS");
  }, 30_000);
});
