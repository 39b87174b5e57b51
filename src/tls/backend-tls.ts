// TLS towards the cluster: connect options from [cluster] tls_*, and the verdict on each node's certificate.

import { readFileSync } from "node:fs";
import type { TLSOptions } from "bun";

/** How a node's certificate is checked. */
export type TlsVerify = "full" | "ca" | "none";

export interface BackendTls {
  /** Passed to Bun.connect. Verification is ours (see peerRefusal), so Bun never rejects on its own. */
  readonly options: TLSOptions;
  readonly verify: TlsVerify;
}

export interface BackendTlsConfig {
  caFile: string;
  certFile: string;
  keyFile: string;
  serverName: string;
  verify: TlsVerify;
}

/** Reads the files now (a missing one is a start-up error, with its path). */
export function backendTls(c: BackendTlsConfig): BackendTls {
  const options: TLSOptions = { rejectUnauthorized: false };
  if (c.caFile) options.ca = read(c.caFile, "cluster.tls_ca_file");
  if (c.certFile) {
    options.cert = read(c.certFile, "cluster.tls_cert_file");
    options.key = read(c.keyFile, "cluster.tls_key_file");
  }
  if (c.serverName) options.serverName = c.serverName;
  return { options, verify: c.verify };
}

function read(path: string, key: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${key}: cannot read ${path}: ${(err as { code?: string }).code ?? (err as Error).message}`);
  }
}

/**
 * Why the node's certificate is refused, or null to go on. "full": a trusted chain naming the
 * server name (or the address connected to); "ca": a trusted chain, whatever it names, as Redis
 * nodes check each other (OpenSSL reports chain errors before the name check, so a name error
 * alone means the chain was good); "none": anything.
 */
export function peerRefusal(verify: TlsVerify, ok: boolean, err: Error | null): string | null {
  if (verify === "none") return null;
  const code = (err as { code?: string } | null)?.code ?? err?.message;
  if (verify === "ca" && code === "ERR_TLS_CERT_ALTNAME_INVALID") return null;
  if (ok && err === null) return null;
  return `TLS certificate refused: ${code ?? "handshake failed"}`;
}
