// What a client's session (transaction, blocking call, WAIT, subscriptions) is to the router.

import type { BackendConn } from "../backend/backend-conn.ts";
import type { BackendNode } from "../backend/backend-node.ts";
import type { CommandSpec } from "../commands/command-table.ts";
import type { Topology } from "../cluster/topology.ts";
import type { Frame } from "../resp/request-reader.ts";
import type { ClientSession } from "../router/router.ts";
import type { Request } from "../router/request.ts";

/**
 * A client with a session has every command handed to it (`dispatch`) instead of the router's
 * shared path, and the replies to the requests it sends (`req.session === this`) come to it
 * first. A session that ends sets `client.session = null` (or back to the transaction a blocking
 * call or WAIT ran within) before its last reply is delivered, so that commands waiting for it
 * are routed normally.
 */
export interface Session {
  dispatch(f: Frame, spec: CommandSpec): void;
  onReply(req: Request, buf: Uint8Array, start: number, end: number, conn: BackendConn): void;
  onLost(req: Request, written: boolean, reason: string): void;
  /**
   * The router refuses one of the client's commands (unknown, wrong arity …) with `reply` while
   * the session lasts. True if the session answers it itself (a refused EXEC ends a transaction).
   */
  refused(f: Frame, spec: CommandSpec | null, reply: Uint8Array): boolean;
  /** The client has gone: close or give back what the session holds, at once. */
  clientGone(): void;
  /** Waiting in a blocking call or WAIT (INFO blocked_clients). */
  readonly blocked: boolean;
}

/** What sessions use of the router. */
export interface SessionHost {
  readonly topology: Topology;
  readonly retryTimeoutMs: number;
  /** A request for `f`, queued in `c`'s reply order (not sent). */
  track(c: ClientSession, f: Frame, spec: CommandSpec, slot: number): Request;
  /** A reply predixy makes, queued behind the client's earlier commands. */
  answer(c: ClientSession, reply: Uint8Array): void;
  /** `req`'s final reply. */
  finish(req: Request, buf: Uint8Array, start?: number, end?: number): void;
  /** Routes `f` as if the client had no session. */
  route(c: ClientSession, f: Frame, spec: CommandSpec): void;
  /** The slot of `f`'s first key, -1 if it has none. */
  slotOf(f: Frame, spec: CommandSpec): number;
  anyMaster(): BackendNode | null;
  /** RESET's effect on what the router keeps of the client (name, protocol, authentication). */
  resetClient(c: ClientSession): void;
}
