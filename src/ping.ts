// `predixy --ping`: the health check of a container or probe — PING the proxy a config describes.

import { query } from "./cluster/control-client.ts";
import type { Config } from "./config/config.ts";
import { RespError } from "./resp/reply-value.ts";
import type { BackendTls } from "./tls/backend-tls.ts";

/** Within Docker's default HEALTHCHECK timeout (30 s) and any probe timeout of a few seconds. */
export const PING_TIMEOUT_MS = 2000;

/** The address a client on this host uses for a proxy listening on `bind`: a wildcard means loopback. */
export function pingAddress(bind: string): string {
  if (bind === "0.0.0.0") return "127.0.0.1";
  if (bind === "::") return "::1";
  return bind;
}

/** Where `--ping` connects: the plaintext port, else (a TLS-only config) the TLS port. */
export interface PingTarget {
  host: string;
  port: number;
  tls: boolean;
}

/**
 * The listener `--ping` checks, or why it cannot check one. A TLS-only config (`server.port` 0)
 * is pinged over TLS, which needs `tls.auth_clients` "no" or "optional": `--ping` has no client
 * certificate to present.
 */
export function pingTarget(cfg: Config): PingTarget | string {
  const host = pingAddress(cfg.server.bind);
  if (cfg.server.port > 0) return { host, port: cfg.server.port, tls: false };
  if (cfg.tls.authClients === "yes") {
    return `server.port is 0 and tls.auth_clients is "yes": --ping has no client certificate to present on the TLS port ${cfg.tls.port}; ` +
      `check the admin server's /healthz instead, or set tls.auth_clients to "optional"`;
  }
  return { host, port: cfg.tls.port, tls: true };
}

/**
 * The proxy's own certificate is not checked: the check is whether the process accepts and
 * answers on its port, from the same host (or pod), not whether the certificate is one a client
 * would trust. verify "none" still completes the handshake, so a listener whose TLS is broken fails.
 */
const OWN_CERT: BackendTls = { options: { rejectUnauthorized: false }, verify: "none" };

/**
 * PINGs the proxy `cfg` describes (over TLS on a TLS-only config; after AUTH when it has a
 * password): "" on PONG, else why not. PING is answered by predixy itself, so a PONG means the
 * listener accepts and the event loop answers: a liveness check. predixy listens before it knows
 * the cluster's slots (commands wait for the cluster meanwhile), so a PONG does not say the
 * cluster is reachable: that is the admin server's /readyz. Once a drain starts the listener is
 * closed and the check fails.
 */
export async function pingProxy(cfg: Config, timeoutMs = PING_TIMEOUT_MS): Promise<string> {
  const target = pingTarget(cfg);
  if (typeof target === "string") return target;
  const auth = cfg.server.password ? { username: "", password: cfg.server.password } : null;
  try {
    const [reply] = await query(target.host, target.port, [["PING"]], auth, timeoutMs, target.tls ? OWN_CERT : null);
    if (reply === "PONG") return "";
    return reply instanceof RespError ? reply.message : `unexpected reply ${JSON.stringify(reply)}`;
  } catch (err) {
    // Bun says "Failed to connect" for every refused or unreachable connect; the code is plainer.
    const { code, message } = err as Error & { code?: string };
    return code === "ECONNREFUSED" ? "connection refused" : message;
  }
}
