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
  /** Clients in a blocking call or WAIT. */
  blockedClients = 0;
  retries = 0;
}
