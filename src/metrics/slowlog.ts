// SLOWLOG: the most recent commands that took at least the threshold through the proxy.

export interface SlowEntry {
  /** Unique in its process; merged views make it unique in the group (see group.ts). */
  id: number;
  /** Unix time (s) the command completed. */
  time: number;
  /** Client-observed µs: from the command's arrival to its reply being queued. */
  durationUs: number;
  /** The command's arguments as Redis logs them (at most 32, each cut to 128 bytes). */
  args: string[];
  client: string;
  clientName: string;
  /** The node that answered ("" when the proxy answered itself). */
  node: string;
}

const MAX_ARGS = 32;
const MAX_ARG_BYTES = 128;
const decoder = new TextDecoder();

/**
 * The newest `maxLen` entries, in a ring. At most `maxLen` are taken per second: the latency it
 * records is the client's, queueing included, so under a saturating load half the commands can
 * pass the threshold, and building an entry for each (15–18% of the CPU at pipeline 16 with
 * 100 clients) was spent on entries the next second overwrote. The rest are counted (`dropped`).
 */
export class SlowLog {
  private ring: (SlowEntry | undefined)[] = [];
  /** Index of the newest entry. */
  private newest = -1;
  private count = 0;
  private nextId = 0;
  private windowStart = -Infinity;
  private inWindow = 0;
  /** Slow commands not logged because `maxLen` were in the same second already. */
  dropped = 0;

  constructor(public maxLen = 128) {}

  get length(): number {
    return this.count;
  }

  /** Whether a slow command completing at `nowMs` (performance.now()) is logged; call add() if so. */
  admits(nowMs: number): boolean {
    if (this.maxLen <= 0) return false;
    if (nowMs - this.windowStart >= 1000) {
      this.windowStart = nowMs;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.maxLen) {
      this.dropped++;
      return false;
    }
    this.inWindow++;
    return true;
  }

  add(time: number, durationUs: number, args: string[], client: string, clientName: string, node: string): void {
    if (this.maxLen <= 0) return;
    if (this.ring.length !== this.maxLen) this.resize(this.maxLen);
    this.newest = (this.newest + 1) % this.maxLen;
    this.ring[this.newest] = { id: this.nextId++, time, durationUs, args, client, clientName, node };
    if (this.count < this.maxLen) this.count++;
  }

  /** Newest first; `count` < 0 means all. */
  get(count = 10): SlowEntry[] {
    const n = count < 0 ? this.count : Math.min(count, this.count);
    const out: SlowEntry[] = [];
    for (let k = 0; k < n; k++) out.push(this.ring[(this.newest - k + this.ring.length) % this.ring.length]!);
    return out;
  }

  setMaxLen(n: number): void {
    this.maxLen = n;
    this.resize(n);
  }

  reset(): void {
    this.ring = [];
    this.newest = -1;
    this.count = 0;
  }

  /** A ring of `n` holding the newest entries that fit. */
  private resize(n: number): void {
    const keep = this.get(Math.min(this.count, Math.max(0, n))).reverse();
    this.ring = Array.from({ length: Math.max(0, n) });
    this.count = keep.length;
    keep.forEach((e, i) => { this.ring[i] = e; });
    this.newest = keep.length - 1;
  }
}

/** Argument texts of `argc` arguments, as SLOWLOG shows them (Redis' truncation rules). */
export function slowlogArgs(argc: number, arg: (i: number) => Uint8Array): string[] {
  const out: string[] = [];
  const n = Math.min(argc, MAX_ARGS);
  for (let i = 0; i < n; i++) {
    if (i === MAX_ARGS - 1 && argc > MAX_ARGS) {
      out.push(`... (${argc - MAX_ARGS + 1} more arguments)`);
      break;
    }
    const a = arg(i);
    out.push(a.length > MAX_ARG_BYTES
      ? `${decoder.decode(a.subarray(0, MAX_ARG_BYTES))}... (${a.length - MAX_ARG_BYTES} more bytes)`
      : decoder.decode(a));
  }
  return out;
}

export const slowlog = new SlowLog();
