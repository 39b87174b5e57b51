// ACL LOG: recent denials and failed logins, grouped as Redis groups them.

import { Double, ReplyMap, type ReplyValue } from "../resp/reply-writer.ts";
import { Verdict } from "./check.ts";

interface Entry {
  count: number;
  reason: Verdict;
  /** The command's name, or the key or channel refused (bytes: they need not be UTF-8). */
  object: Uint8Array;
  username: string;
  /** Date.now() of the last occurrence. */
  at: number;
  clientInfo: string;
}

/** Redis' acllog-max-len default. */
const MAX_ENTRIES = 128;
/** Like events this close together update one entry (Redis' ACL_LOG_GROUPING_MAX_TIME_DELTA). */
const GROUPING_MS = 60_000;
/** How many recent entries a new event is compared with. */
const SCAN = 10;

const REASONS: Record<number, string> = {
  [Verdict.CMD]: "command", [Verdict.KEY]: "key", [Verdict.CHANNEL]: "channel", [Verdict.AUTH]: "auth",
};

export class AclLog {
  /** Newest first. */
  private entries: Entry[] = [];

  add(reason: Verdict, object: Uint8Array, username: string, clientInfo: string): void {
    const now = Date.now();
    for (let i = 0; i < Math.min(SCAN, this.entries.length); i++) {
      const e = this.entries[i];
      if (e.reason === reason && Buffer.compare(e.object, object) === 0 && e.username === username && Math.abs(now - e.at) <= GROUPING_MS) {
        e.count++;
        e.at = now;
        e.clientInfo = clientInfo;
        this.entries.splice(i, 1);
        this.entries.unshift(e);
        return;
      }
    }
    this.entries.unshift({ count: 1, reason, object, username, at: now, clientInfo });
    if (this.entries.length > MAX_ENTRIES) this.entries.length = MAX_ENTRIES;
  }

  reset(): void {
    this.entries = [];
  }

  /** ACL LOG [count]'s reply value: the newest `count` entries as Redis 7.0 lists their fields. */
  list(count: number): ReplyValue {
    const now = Date.now();
    return this.entries.slice(0, Math.max(0, count)).map((e): ReplyValue => new ReplyMap([
      ["count", e.count], ["reason", REASONS[e.reason]], ["context", "toplevel"], ["object", e.object],
      ["username", e.username], ["age-seconds", new Double((now - e.at) / 1000)], ["client-info", e.clientInfo],
    ]));
  }
}
