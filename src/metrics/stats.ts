// Process-wide counters, bumped on the hot path as plain field increments.

export class Stats {
  readonly startedAt = Date.now();
  connectedClients = 0;
  totalConnections = 0;
  rejectedConnections = 0;
  commands = 0;
  protocolErrors = 0;
  inputLimitDisconnections = 0;
  outputLimitDisconnections = 0;
  redirects = 0;
  retries = 0;
  /** Commands sent on to a node as their large argument arrived, and replies sent on to clients as they arrived. */
  streamedUploads = 0;
  streamedReplies = 0;
  /** Bytes all clients make the proxy hold now (client/memory-budget.ts); max_memory in force. */
  clientMemory = 0;
  maxClientMemory = 0;
  /** Clients closed to keep within max_memory; times reading was paused for it; clients paused now. */
  evictedClients = 0;
  memoryPauses = 0;
  clientsPausedForMemory = 0;
  /** Commands parked now, waiting for a node (router/retry.ts). */
  parkedCommands = 0;
  aclDeniedAuth = 0;
  aclDeniedCmd = 0;
  aclDeniedKey = 0;
  aclDeniedChannel = 0;
  /** TLS clients refused at the handshake: not TLS, an untrusted or expired certificate, none when one is required. */
  tlsRefused = 0;

  /** Bytes read from clients and replies queued for them. */
  bytesIn = 0;
  bytesOut = 0;

  /** CONFIG RESETSTAT: the counters, not the gauges. */
  reset(): void {
    this.totalConnections = this.rejectedConnections = this.commands = this.protocolErrors = 0;
    this.inputLimitDisconnections = this.outputLimitDisconnections = this.redirects = this.retries = 0;
    this.streamedUploads = this.streamedReplies = 0;
    this.bytesIn = this.bytesOut = 0;
  }
}
