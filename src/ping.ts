// `predixy --ping`: the health check of a container or probe — PING the proxy a config describes.

import { query } from "./cluster/control-client.ts";
import type { Config } from "./config/config.ts";
import { RespError } from "./resp/reply-value.ts";

/** Within Docker's default HEALTHCHECK timeout (30 s) and the probe timeout our manifests set (3 s). */
export const PING_TIMEOUT_MS = 2000;

/** The address a client on this host uses for a proxy listening on `bind`: a wildcard means loopback. */
export function pingAddress(bind: string): string {
  if (bind === "0.0.0.0") return "127.0.0.1";
  if (bind === "::") return "::1";
  return bind;
}

/**
 * PINGs the proxy `cfg` describes (after AUTH when it has a password): "" on PONG, else why not.
 * A proxy listens only once it knows the cluster's slots and stops accepting when it drains, so
 * a PONG means it is serving.
 */
export async function pingProxy(cfg: Config, timeoutMs = PING_TIMEOUT_MS): Promise<string> {
  const auth = cfg.server.password ? { username: "", password: cfg.server.password } : null;
  try {
    const [reply] = await query(pingAddress(cfg.server.bind), cfg.server.port, [["PING"]], auth, timeoutMs);
    if (reply === "PONG") return "";
    return reply instanceof RespError ? reply.message : `unexpected reply ${JSON.stringify(reply)}`;
  } catch (err) {
    // Bun says "Failed to connect" for every refused or unreachable connect; the code is plainer.
    const { code, message } = err as Error & { code?: string };
    return code === "ECONNREFUSED" ? "connection refused" : message;
  }
}
