// The client-facing server: Bun.listen handlers shared by every client socket.

import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions, TLSOptions } from "bun";
import { getLogger } from "@logtape/logtape";
import { ERR_MAX_CLIENTS } from "../resp/replies.ts";
import type { Router } from "../router/router.ts";
import type { Stats } from "../metrics/stats.ts";
import { handshakeRefusal, type AuthClients } from "../tls/server-tls.ts";
import { ClientConn, type ClientLimits } from "./client-conn.ts";
import { MemoryBudget } from "./memory-budget.ts";
import { peerKey, receiveQueues } from "./receive-queues.ts";

const log = getLogger(["predixy", "client"]);

export interface ListenOptions extends ClientLimits {
  bind: string;
  /** Plaintext port; 0 = none. */
  port: number;
  /** TLS port; 0 = none. */
  tlsPort: number;
  /** Bun.listen's tls options for tlsPort (see tls/server-tls.ts). */
  tls: TLSOptions | null;
  authClients: AuthClients;
  maxClients: number;
  /** Let several processes listen on the port (worker processes). */
  reusePort: boolean;
  /** `performance.max_memory` in force (0 = no total budget). */
  maxMemory: number;
}

type Listener = TCPSocketListener<ClientConn | null>;

export interface Listening {
  /** Every listener (plaintext and TLS): stop them to stop accepting. */
  servers: Listener[];
  clients: Set<ClientConn>;
  budget: MemoryBudget;
  /**
   * New certificates for the TLS port: a listener with `tls` takes the port beside the old
   * one, which then stops accepting; connected clients are not touched.
   */
  reloadTls(tls: TLSOptions): void;
  /** Applies reloaded limits to every client, connected or to come. */
  configure(opts: ListenOptions): void;
  /** Stops accepting; every client runs what it sent before now (socket buffers included), then is closed. */
  drain(): void;
}

/** Starts accepting clients. Returns the listeners and the live client set (for sweeps and shutdown). */
export function listen(opts: ListenOptions, router: Router, stats: Stats): Listening {
  const clients = new Set<ClientConn>();
  const budget = new MemoryBudget(stats, clients);
  budget.configure(opts.maxMemory);

  const handlers: SocketHandler<ClientConn | null> = {
    open(sock) {
      stats.totalConnections++;
      if (clients.size >= opts.maxClients) {
        stats.rejectedConnections++;
        sock.write(ERR_MAX_CLIENTS);
        sock.end();
        return;
      }
      sock.setNoDelay(true);
      const c = new ClientConn(sock as Socket<ClientConn>, router, opts, stats, budget);
      sock.data = c;
      clients.add(c);
      stats.connectedClients = clients.size;
    },
    data(sock, chunk) {
      const c = sock.data;
      if (c === null) return;
      try {
        c.onData(chunk);
      } catch (err) {
        log.error("client {id}: internal error, closing: {err}", { id: c.id, err: (err as Error)?.stack ?? err });
        c.close();
      }
    },
    // FIN from the client (allowHalfOpen below): it may still be reading, as `printf … | nc` is.
    end(sock) {
      sock.data?.peerEnded();
    },
    drain(sock) {
      const c = sock.data;
      if (c === null) return;
      try {
        c.onDrain();
      } catch (err) {
        log.error("client {id}: internal error on drain: {err}", { id: c.id, err: (err as Error)?.stack ?? err });
        c.close();
      }
    },
    close(sock) {
      const c = sock.data;
      if (c === null) return;
      c.onClosed();
      clients.delete(c);
      stats.connectedClients = clients.size;
    },
    error(sock, err) {
      log.debug("client socket error: {err}", { err: err.message });
      sock.data?.close();
    },
  };

  // TLS clients are let in, or refused and counted, once their handshake is judged.
  const tlsHandlers: SocketHandler<ClientConn | null> = {
    ...handlers,
    handshake(sock, ok, err) {
      const why = handshakeRefusal(opts.authClients, sock, ok, err);
      if (why === null) return;
      stats.tlsRefused++;
      log.debug("TLS client {addr} refused: {why}", { addr: sock.remoteAddress, why });
      sock.data?.close();
      sock.terminate();
    },
  };

  // reusePort works with Bun.listen but is missing from its type declarations. The TLS port
  // always sets it: a certificate reload opens the new listener before closing the old one.
  const start = (port: number, tls: TLSOptions | null): Listener => {
    const listenOptions: TCPSocketListenOptions<ClientConn | null> & { reusePort: boolean } = {
      hostname: opts.bind, port, data: null, socket: tls ? tlsHandlers : handlers,
      reusePort: opts.reusePort || tls !== null, allowHalfOpen: true, ...(tls ? { tls } : {}),
    };
    return Bun.listen<ClientConn | null>(listenOptions);
  };
  const servers: Listener[] = [];
  try {
    if (opts.port > 0) servers.push(start(opts.port, null));
    if (opts.tlsPort > 0) servers.push(start(opts.tlsPort, opts.tls));
  } catch (err) {
    for (const s of servers) s.stop(true);
    throw err;
  }

  let sweep: ReturnType<typeof setInterval> | null = null;
  const startSweep = () => {
    if (sweep !== null) clearInterval(sweep);
    sweep = setInterval(() => {
      const now = performance.now();
      for (const c of clients) c.sweep(now);
    }, opts.idleTimeoutMs > 0 ? Math.min(1000, opts.idleTimeoutMs) : 1000);
    sweep.unref?.();
  };
  startSweep();

  return {
    servers, clients, budget,
    reloadTls(tls) {
      const i = servers.findIndex((s) => s.port === opts.tlsPort);
      if (i < 0) return;
      const fresh = start(opts.tlsPort, tls);
      servers[i].stop(false);
      servers[i] = fresh;
    },
    configure(next) {
      const idleChanged = next.idleTimeoutMs !== opts.idleTimeoutMs;
      // The clients share `opts` as their limits: updated in place, seen by all at once. What
      // the listeners were opened with stays.
      Object.assign(opts, {
        ...next, bind: opts.bind, port: opts.port, tlsPort: opts.tlsPort, tls: opts.tls,
        reusePort: opts.reusePort, bufferSize: opts.bufferSize,
      });
      budget.configure(opts.maxMemory);
      for (const c of clients) c.limitsChanged();
      if (idleChanged) startSweep();
    },
    drain() {
      for (const s of servers) s.stop(false);
      // What waits unread in each client's socket (for TLS clients, encrypted bytes: a little more).
      const queued = new Map<string, number>();
      for (const s of servers) for (const [k, v] of receiveQueues(s.port) ?? []) queued.set(k, v);
      for (const c of clients) {
        const p = c.peer;
        c.drain(queued.get(peerKey(p.address, p.port)) ?? -1);
      }
    },
  };
}
