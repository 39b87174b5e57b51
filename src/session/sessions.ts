// Starts a client's session: a transaction, a blocking call or a WAIT, once its earlier commands are answered.

import type { CommandSpec } from "../commands/command-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import type { ClientSession } from "../router/router.ts";
import { BlockingCall } from "./blocking.ts";
import type { SessionHost } from "./session.ts";
import { Transaction } from "./transaction.ts";
import { WaitCall } from "./wait.ts";

const ERR_EXEC_WITHOUT = R.errorReply("ERR EXEC without MULTI");
const ERR_DISCARD_WITHOUT = R.errorReply("ERR DISCARD without MULTI");

export class Sessions {
  constructor(private readonly host: SessionHost) {}

  /**
   * A command that needs a pinned connection, from a client without a session. It waits until
   * every earlier command of the client is answered: on a connection of its own, it would
   * otherwise run before commands sent before it on the shared ones.
   */
  start(c: ClientSession, f: Frame, spec: CommandSpec): void {
    switch (spec.name) {
      case "exec": return this.host.answer(c, ERR_EXEC_WITHOUT);
      case "discard": return this.host.answer(c, ERR_DISCARD_WITHOUT);
      case "unwatch": return this.host.answer(c, R.OK);
    }
    if (c.oldestPending() !== null) return c.deferUntilIdle();
    switch (spec.local) {
      case "transaction": {
        const t = new Transaction(c, this.host);
        c.session = t;
        return t.dispatch(f, spec);
      }
      case "wait":
        return new WaitCall(c, this.host).start(f, spec);
      default: // blocking commands, and XREAD/XREADGROUP with BLOCK
        return new BlockingCall(c, this.host).start(f, spec);
    }
  }
}
