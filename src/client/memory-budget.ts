// max_memory: one budget for what all clients make the proxy hold; reading pauses first, then the biggest clients go.

import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { getLogger } from "@logtape/logtape";
import type { Stats } from "../metrics/stats.ts";

const log = getLogger(["predixy", "memory"]);

/** Under pressure, clients holding at least this much are not read (those holding less cannot add much). */
const PAUSE_MIN_BYTES = 64 * 1024;
/** Fractions of max_memory: pressure starts above PAUSE_AT and ends below RESUME_AT. */
const PAUSE_AT = 0.8;
const RESUME_AT = 0.6;
/** How often the budget is looked at while under pressure. */
const CHECK_MS = 100;

/** A client as the budget sees it (client/client-conn.ts). */
export interface BudgetedClient {
  readonly id: number;
  readonly closed: boolean;
  /** What it makes the proxy hold now, by kind. */
  memory(): { replies: number; input: number; waiting: number };
  /** Stop (true) or resume (false) reading it because of memory pressure. */
  pauseForMemory(on: boolean): void;
  /** Closes it; `why` goes to the log. */
  evict(why: string): void;
  /** "id=… addr=… name=…" for logs. */
  label(): string;
}

/**
 * Counts, in `stats.clientMemory`, the bytes clients make the proxy hold: replies not yet
 * written (queued, or waiting for an earlier reply of the same client), unparsed input, and
 * the copies of commands waiting for a node. Every change is added where it happens (plain
 * arithmetic on the hot path); this object only acts when the total crosses a mark:
 *
 * - above 80% of max_memory, clients holding 64 KiB or more are no longer read (a client that
 *   does not read its replies stops adding to them; well-behaved clients, which hold little,
 *   go on), until the total falls below 60%;
 * - above max_memory, the clients holding the most are closed, one at a time, until it is
 *   under again (as Redis' maxmemory-clients does). Each is logged with what it held and
 *   counted in INFO's `evicted_clients`.
 */
export class MemoryBudget {
  private limit = 0;
  /** The total past which `press()` must be called (Infinity without a budget): a plain field, read per reply. */
  mark = Infinity;
  private timer: ReturnType<typeof setInterval> | null = null;
  private scheduled = false;
  private readonly paused = new Set<BudgetedClient>();

  constructor(private readonly stats: Stats, private readonly clients: Iterable<BudgetedClient>) {}

  configure(maxMemory: number): void {
    this.limit = maxMemory;
    this.mark = maxMemory > 0 ? maxMemory * PAUSE_AT : Infinity;
    this.stats.maxClientMemory = maxMemory;
    this.press();
  }

  /** The total crossed the mark: look at it at the end of this turn (once, however many call). */
  press(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(check, this);
  }

  /** @internal */
  check(): void {
    this.scheduled = false;
    const used = this.stats.clientMemory;
    if (this.limit === 0 || used < this.limit * RESUME_AT) return this.relieve();
    if (used > this.mark) this.pauseBig(used);
    if (used > this.limit) this.evict();
    if (this.timer === null) this.timer = setInterval(check, CHECK_MS, this);
  }

  private pauseBig(used: number): void {
    let newly = 0;
    for (const c of this.clients) {
      if (c.closed || this.paused.has(c)) continue;
      const m = c.memory();
      if (m.replies + m.input + m.waiting < PAUSE_MIN_BYTES) continue;
      this.paused.add(c);
      c.pauseForMemory(true);
      newly++;
    }
    if (newly > 0) {
      this.stats.memoryPauses++;
      log.warn("clients hold {used} bytes, over 80% of max_memory ({limit}): not reading the {n} clients holding 64 KiB or more until under 60%", {
        used, limit: this.limit, n: this.paused.size,
      });
    }
    this.stats.clientsPausedForMemory = this.paused.size;
  }

  /** Closes the clients holding the most until the total is within the budget. */
  private evict(): void {
    const all: { c: BudgetedClient; total: number; m: ReturnType<BudgetedClient["memory"]> }[] = [];
    for (const c of this.clients) {
      if (c.closed) continue;
      const m = c.memory();
      all.push({ c, total: m.replies + m.input + m.waiting, m });
    }
    all.sort((a, b) => b.total - a.total);
    for (const { c, total, m } of all) {
      const used = this.stats.clientMemory;
      if (used <= this.limit) break;
      this.stats.evictedClients++;
      log.warn("client {client} closed: it held {total} bytes ({replies} of replies, {input} of input, {waiting} of waiting commands), the most of any client, while clients held {used}, over max_memory ({limit})", {
        client: c.label(), total, replies: m.replies, input: m.input, waiting: m.waiting, used, limit: this.limit,
      });
      this.paused.delete(c);
      c.evict("max_memory");
    }
    this.stats.clientsPausedForMemory = this.paused.size;
  }

  private relieve(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (this.paused.size === 0) return;
    log.info("clients hold {used} bytes, under 60% of max_memory ({limit}): reading the {n} paused clients again", {
      used: this.stats.clientMemory, limit: this.limit, n: this.paused.size,
    });
    for (const c of this.paused) if (!c.closed) c.pauseForMemory(false);
    this.paused.clear();
    this.stats.clientsPausedForMemory = 0;
  }
}

function check(b: MemoryBudget): void {
  b.check();
}

/**
 * Lowers max_memory to half of what this process may use (its cgroup's limit, else the
 * machine's memory), logging it, as max_clients is lowered to fit the open-file limit: a
 * budget past what the host has would let clients take it down.
 */
export function fitMaxMemory(configured: number): number {
  if (configured === 0) return 0;
  const room = memoryRoom();
  const fit = Math.floor(room / 2);
  if (configured <= fit) return configured;
  log.warn("max_memory lowered from {configured} to {fit}: half of the {room} bytes this process may use", { configured, fit, room });
  return fit;
}

function memoryRoom(): number {
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const n = Number(readFileSync(file, "utf8").trim());
      // cgroup v1 says "no limit" with a huge number; v2 with "max" (NaN here).
      if (Number.isFinite(n) && n > 0 && n < totalmem()) return n;
    } catch { /* not there */ }
  }
  return totalmem();
}
