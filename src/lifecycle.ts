// Process state that readiness checks read (admin /readyz): serving, or draining after SIGTERM/SIGINT.

export const lifecycle = {
  /** SIGTERM/SIGINT received: no longer accepting; answering what clients already sent, then closing them. */
  draining: false,
  /** A slot table is known: the cluster has answered at least once since start-up. */
  topologyKnown: false,
};

/** Whether the proxy should be sent new clients: it knows the cluster and is not shutting down. */
export function isReady(): boolean {
  return !lifecycle.draining && lifecycle.topologyKnown;
}
