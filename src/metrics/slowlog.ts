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

export class SlowLog {
  private entries: SlowEntry[] = [];
  private nextId = 0;

  constructor(public maxLen = 128) {}

  get length(): number {
    return this.entries.length;
  }

  add(e: Omit<SlowEntry, "id">): void {
    if (this.maxLen <= 0) return;
    this.entries.unshift({ id: this.nextId++, ...e });
    if (this.entries.length > this.maxLen) this.entries.length = this.maxLen;
  }

  /** Newest first; `count` < 0 means all. */
  get(count = 10): SlowEntry[] {
    return count < 0 ? this.entries.slice() : this.entries.slice(0, count);
  }

  setMaxLen(n: number): void {
    this.maxLen = n;
    if (this.entries.length > n) this.entries.length = Math.max(0, n);
  }

  reset(): void {
    this.entries = [];
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
