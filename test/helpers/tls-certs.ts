// A throwaway PKI made with Debian's openssl: a test CA, server and client certificates, and bad ones.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

export interface TestPki {
  dir: string;
  caCert: string;
  caKey: string;
  /** For "localhost" and 127.0.0.1, signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** Signed by the CA. */
  clientCert: string;
  clientKey: string;
  /** Signed by the CA, valid for no time at all (expired). */
  expiredCert: string;
  expiredKey: string;
  /** Another CA, and a client certificate it signed. */
  otherCaCert: string;
  otherClientCert: string;
  otherClientKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const p = Bun.spawn(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`openssl ${args.join(" ")} failed (${code}): ${err}`);
}

/** 63 random bits, as hex: positive, and unique among the certificates of a test CA. */
export function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  b[0] &= 0x7f;
  return "0x" + Buffer.from(b).toString("hex");
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(["req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "3650", "-subj", `/CN=predixy test ${name}`], dir);
}

async function makeCert(dir: string, name: string, ca: string, days: string, ext: string | null): Promise<void> {
  await openssl(["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
  const extArgs: string[] = [];
  if (ext !== null) {
    await Bun.write(join(dir, `${name}.ext`), ext);
    extArgs.push("-extfile", `${name}.ext`);
  }
  // A serial of its own: -CAcreateserial has the certificates signed at once share ca.srl, and
  // one of them could read it half-written ("Unable to load number from ca.srl": 2 PKIs in 300).
  await openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-set_serial", serial(),
    "-out", `${name}.crt`, "-days", days, ...extArgs], dir);
}

/** Creates the certificates under `dir` (made if missing). Takes well under a second. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const d = resolve(dir);
  mkdirSync(d, { recursive: true });
  await Promise.all([makeCa(d, "ca"), makeCa(d, "other-ca")]);
  await Promise.all([
    makeCert(d, "server", "ca", "365", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"),
    makeCert(d, "client", "ca", "365", "extendedKeyUsage=clientAuth\n"),
    // notAfter a day before notBefore: expired from the start.
    makeCert(d, "expired", "ca", "-1", "extendedKeyUsage=clientAuth\n"),
    makeCert(d, "other-client", "other-ca", "365", "extendedKeyUsage=clientAuth\n"),
  ]);
  const p = (f: string) => join(d, f);
  return {
    dir: d, caCert: p("ca.crt"), caKey: p("ca.key"), serverCert: p("server.crt"), serverKey: p("server.key"),
    clientCert: p("client.crt"), clientKey: p("client.key"), expiredCert: p("expired.crt"), expiredKey: p("expired.key"),
    otherCaCert: p("other-ca.crt"), otherClientCert: p("other-client.crt"), otherClientKey: p("other-client.key"),
  };
}
