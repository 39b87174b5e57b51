// The client-facing server: Bun.listen handlers shared by every client socket.

import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { getLogger } from "@logtape/logtape";
import { ERR_MAX_CLIENTS } from "../resp/replies.ts";
import type { Router } from "../router/router.ts";
import type { Stats } from "../metrics/stats.ts";
import { ClientConn, type ClientLimits } from "./client-conn.ts";
import { MemoryBudget } from "./memory-budget.ts";
import { peerKey, receiveQueues } from "./receive-queues.ts";

const log = getLogger(["predixy", "client"]);

export interface ListenOptions extends ClientLimits {
  bind: string;
  port: number;
  maxClients: number;
  /** Let several processes listen on the port (worker processes). */
  reusePort: boolean;
  /** `performance.max_memory` in force (0 = no total budget). */
  maxMemory: number;
}

export interface Listening {
  server: TCPSocketListener<ClientConn | null>;
  clients: Set<ClientConn>;
  budget: MemoryBudget;
  /** Applies reloaded limits to every client, connected or to come. */
  configure(opts: ListenOptions): void;
  /** Stops accepting; every client runs what it sent before now (socket buffers included), then is closed. */
  drain(): void;
}

/** Starts accepting clients. Returns the listener and the live client set (for sweeps and shutdown). */
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

  // reusePort works with Bun.listen but is missing from its type declarations.
  const listenOptions: TCPSocketListenOptions<ClientConn | null> & { reusePort: boolean } = {
    hostname: opts.bind, port: opts.port, data: null, socket: handlers, reusePort: opts.reusePort, allowHalfOpen: true,
  };
  const server = Bun.listen<ClientConn | null>(listenOptions);

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
    server, clients, budget,
    configure(next) {
      const idleChanged = next.idleTimeoutMs !== opts.idleTimeoutMs;
      // The clients share `opts` as their limits: updated in place, seen by all at once.
      Object.assign(opts, { ...next, bind: opts.bind, port: opts.port, reusePort: opts.reusePort, bufferSize: opts.bufferSize });
      budget.configure(opts.maxMemory);
      for (const c of clients) c.limitsChanged();
      if (idleChanged) startSweep();
    },
    drain() {
      server.stop(false);
      const queued = receiveQueues(server.port);
      for (const c of clients) {
        const p = c.peer;
        c.drain(queued?.get(peerKey(p.address, p.port)) ?? -1);
      }
    },
  };
}
