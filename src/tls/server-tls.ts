// TLS towards clients: listener options from [tls], and which handshakes to refuse.

import { readFileSync } from "node:fs";
import type { Socket, TLSOptions } from "bun";

export type AuthClients = "no" | "optional" | "yes";

export interface ServerTlsConfig {
  certFile: string;
  keyFile: string;
  keyPassphrase: string;
  caFile: string;
  authClients: AuthClients;
  minVersion: "TLSv1.2" | "TLSv1.3";
}

// OpenSSL's SSL_OP_NO_* bits: older protocol versions are switched off one by one.
const NO_TLSv1 = 0x04000000, NO_TLSv1_1 = 0x10000000, NO_TLSv1_2 = 0x08000000;

/**
 * Bun.listen's tls options, the files read now (so a reload that cannot read them fails before
 * anything changes). Throws naming the key and file that could not be read.
 */
export function serverTlsOptions(c: ServerTlsConfig): TLSOptions {
  const options: TLSOptions = {
    cert: read(c.certFile, "tls.cert_file"),
    key: read(c.keyFile, "tls.key_file"),
    secureOptions: NO_TLSv1 | NO_TLSv1_1 | (c.minVersion === "TLSv1.3" ? NO_TLSv1_2 : 0),
    // "optional" lets a client without a certificate in; one with a bad certificate is refused
    // in handshakeRefusal, as Redis' tls-auth-clients optional does.
    requestCert: c.authClients !== "no",
    rejectUnauthorized: c.authClients === "yes",
  };
  if (c.keyPassphrase) options.passphrase = c.keyPassphrase;
  if (c.caFile) options.ca = read(c.caFile, "tls.ca_file");
  return options;
}

function read(path: string, key: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${key}: cannot read ${path}: ${(err as { code?: string }).code ?? (err as Error).message}`);
  }
}

/**
 * Why a client's handshake is refused, or null to accept it: not TLS at all or a failed
 * handshake; with client certificates required, any certificate error (none, expired, another
 * CA); with them optional, a certificate that was presented and does not verify.
 */
export function handshakeRefusal(mode: AuthClients, sock: Socket<unknown>, ok: boolean, err: Error | null): string | null {
  const code = (err as { code?: string } | null)?.code ?? err?.message ?? null;
  if (!ok) return code ?? "handshake failed";
  if (err === null || mode === "no") return null;
  if (mode === "yes") return code;
  return presentedCert(sock) ? code : null;
}

function presentedCert(sock: Socket<unknown>): boolean {
  const cert = sock.getPeerCertificate?.() as object | null | undefined;
  return cert !== null && cert !== undefined && Object.keys(cert).length > 0;
}
