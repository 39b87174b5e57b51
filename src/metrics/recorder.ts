// Hot-path recording: per-command and per-node calls, errors by kind and latency, in typed arrays.
//
// How a module records (one call each, no allocation, no string work on success):
//
//   metrics.commandDone(spec.id, req.arrivedAt, errorKind)   a client's command got its reply;
//       true when it was slower than the slowlog threshold (then log it: see client-conn.ts)
//   metrics.errorReply(buf, start, end, proxyKind)            kind of an error reply ('-' at start),
//       counted in errorstats by its first word; call it only for error replies
//   metrics.nodeReply(node.id, req.sentAt, errorKind)          a node answered (write → reply)
//   metrics.nodeEvent(node.id, errorKind)                      a node-level error: timeout, lost, …
//   metrics.redirected(spec.id) / metrics.retried(spec.id)     a command followed MOVED/ASK / was retried
//   metrics.pinnedOpened(node.id) / pinnedClosed(node.id)       a client-pinned backend connection
//
// Times are performance.now() milliseconds. `metrics.now` is the clock of the current event: the
// client and backend read handlers (and rare timer paths, via tick()) set it from the one
// performance.now() they read anyway, so a reply's end time costs no clock read of its own.
// Everything is summed in place and read (merged across workers) only when a view asks.

import { bucketOf, newHistogram } from "./histogram.ts";

/** Why a command or a node exchange failed. Numbered for array slots; names in ERROR_KIND_NAMES. */
export const enum ErrorKind {
  NONE,
  MOVED,
  ASK,
  TRYAGAIN,
  CLUSTERDOWN,
  LOADING,
  MASTERDOWN,
  READONLY,
  /** The node gave no reply within command_timeout_ms (the connection was closed). */
  TIMEOUT,
  /** The connection carrying the command was lost. */
  CONN_LOST,
  /** A connection could not be made (refused, connect timeout, AUTH refused). */
  CONNECT_FAILED,
  /** predixy refused the command itself (arity, NOAUTH, unsupported, limits). */
  REFUSED,
  /** Any other error reply (WRONGTYPE, ERR …). */
  OTHER,
}

export const ERROR_KINDS = 13;
export const ERROR_KIND_NAMES: readonly string[] = [
  "none", "moved", "ask", "tryagain", "clusterdown", "loading", "masterdown", "readonly",
  "timeout", "connection_lost", "connect_failed", "refused", "other",
];

/** Redis keeps at most this many distinct error prefixes in errorstats; so do we. */
const MAX_ERROR_PREFIXES = 128;
const NODE_CAPACITY = 32;

const decoder = new TextDecoder();

export class Metrics {
  /** Off: nothing is recorded (for A/B benchmarks of the recording's cost). */
  enabled = true;
  /** The clock of the current event (performance.now() ms); see the header. */
  now = performance.now();
  /** Commands at least this slow (µs) go to the slowlog; Infinity: never (see setSlowlog). */
  slowlogUs = 10_000;

  // Per command, indexed by CommandSpec.id (0 = unknown command).
  cmdCalls = new Float64Array(0);
  cmdUsec = new Float64Array(0);
  cmdFailed = new Float64Array(0);
  cmdRejected = new Float64Array(0);
  cmdRedirects = new Float64Array(0);
  cmdRetries = new Float64Array(0);
  /** [id * ERROR_KINDS + kind]. */
  cmdErrors = new Float64Array(0);
  /** Allocated on a command's first call: most of the table is never used. */
  cmdHist: (Float64Array | undefined)[] = [];

  // Per backend node, indexed by BackendNode.id (an address keeps its id for the process' life).
  readonly nodeAddrs: string[] = [];
  private readonly nodeIds = new Map<string, number>();
  nodeCalls = new Float64Array(NODE_CAPACITY);
  nodeErrors = new Float64Array(NODE_CAPACITY * ERROR_KINDS);
  nodePinned = new Float64Array(NODE_CAPACITY);
  nodeUps = new Float64Array(NODE_CAPACITY);
  nodeDowns = new Float64Array(NODE_CAPACITY);
  nodeBytesOut = new Float64Array(NODE_CAPACITY);
  nodeBytesIn = new Float64Array(NODE_CAPACITY);
  nodeHist: Float64Array[] = [];

  totalErrorReplies = 0;
  readonly errorPrefixes = new Map<string, number>();

  constructor(commandCount = 0) {
    this.ensureCommands(commandCount);
  }

  /** Makes room for command ids below `count` (commands learned at start-up get new ids). */
  ensureCommands(count: number): void {
    if (count <= this.cmdCalls.length) return;
    const grow = (a: Float64Array, n: number) => { const b = new Float64Array(n); b.set(a); return b; };
    this.cmdCalls = grow(this.cmdCalls, count);
    this.cmdUsec = grow(this.cmdUsec, count);
    this.cmdFailed = grow(this.cmdFailed, count);
    this.cmdRejected = grow(this.cmdRejected, count);
    this.cmdRedirects = grow(this.cmdRedirects, count);
    this.cmdRetries = grow(this.cmdRetries, count);
    this.cmdErrors = grow(this.cmdErrors, count * ERROR_KINDS);
    while (this.cmdHist.length < count) this.cmdHist.push(undefined);
  }

  /** The id of the node at `addr`, allocated on first sight. */
  nodeId(addr: string): number {
    let id = this.nodeIds.get(addr);
    if (id !== undefined) return id;
    id = this.nodeAddrs.length;
    this.nodeAddrs.push(addr);
    this.nodeIds.set(addr, id);
    this.nodeHist.push(newHistogram());
    if (id >= this.nodeCalls.length) {
      const n = this.nodeCalls.length * 2;
      const grow = (a: Float64Array, k = 1) => { const b = new Float64Array(n * k); b.set(a); return b; };
      this.nodeCalls = grow(this.nodeCalls);
      this.nodeErrors = grow(this.nodeErrors, ERROR_KINDS);
      this.nodePinned = grow(this.nodePinned);
      this.nodeUps = grow(this.nodeUps);
      this.nodeDowns = grow(this.nodeDowns);
      this.nodeBytesOut = grow(this.nodeBytesOut);
      this.nodeBytesIn = grow(this.nodeBytesIn);
    }
    return id;
  }

  /** slowlog_log_slower_than: µs, or < 0 for never. */
  setSlowlog(us: number): void {
    this.slowlogUs = us < 0 ? Infinity : us;
  }

  /** Sets `now` from the clock, for events that did not read it (timers). */
  tick(): number {
    return (this.now = performance.now());
  }

  /**
   * A client's command (`id` = CommandSpec.id, 0 when unknown) got its reply, now; it arrived
   * at `startedAt`. Returns true when it took at least the slowlog threshold.
   */
  commandDone(id: number, startedAt: number, kind: ErrorKind): boolean {
    if (!this.enabled) return false;
    let us = (this.now - startedAt) * 1000;
    if (us < 0) us = 0;
    if (kind !== ErrorKind.NONE) this.commandFailed(id, kind);
    if (id !== 0) {
      this.cmdCalls[id]++;
      this.cmdUsec[id] += us;
      const h = this.cmdHist[id];
      if (h !== undefined) h[bucketOf(us)]++;
      else (this.cmdHist[id] = newHistogram())[bucketOf(us)]++;
    }
    return us >= this.slowlogUs;
  }

  private commandFailed(id: number, kind: ErrorKind): void {
    this.totalErrorReplies++;
    if (id === 0) return;
    if (kind === ErrorKind.REFUSED) this.cmdRejected[id]++;
    else this.cmdFailed[id]++;
    this.cmdErrors[id * ERROR_KINDS + kind]++;
  }

  /**
   * The kind of the error reply `buf[start, end)` (it starts with '-'), counted in errorstats by
   * its first word as Redis counts it. `proxyKind`, when not NONE, is what the proxy knows the
   * error to be (a lost connection, a refusal) and wins over the reply's text.
   */
  errorReply(buf: Uint8Array, start: number, end: number, proxyKind: ErrorKind): ErrorKind {
    if (!this.enabled) return ErrorKind.OTHER;
    let e = start + 1;
    const stop = Math.min(end, start + 33);
    while (e < stop && buf[e] !== 32 && buf[e] !== 13) e++;
    const prefix = decoder.decode(buf.subarray(start + 1, e));
    const seen = this.errorPrefixes.get(prefix);
    if (seen !== undefined) this.errorPrefixes.set(prefix, seen + 1);
    else if (this.errorPrefixes.size < MAX_ERROR_PREFIXES) this.errorPrefixes.set(prefix, 1);
    return proxyKind !== ErrorKind.NONE ? proxyKind : kindOfPrefix(prefix);
  }

  /** Node `node` answered a request written at `sentAt` (0: not timed); `kind` from its reply. */
  nodeReply(node: number, sentAt: number, kind: ErrorKind): void {
    if (!this.enabled) return;
    this.nodeCalls[node]++;
    if (sentAt > 0) {
      const us = (this.now - sentAt) * 1000;
      this.nodeHist[node][bucketOf(us < 0 ? 0 : us)]++;
    }
    if (kind !== ErrorKind.NONE) this.nodeErrors[node * ERROR_KINDS + kind]++;
  }

  /** A node-level failure: a timeout, a lost connection, a failed connect (counted even when disabled: rare). */
  nodeEvent(node: number, kind: ErrorKind): void {
    this.nodeErrors[node * ERROR_KINDS + kind]++;
  }

  /** The node's state flipped: reachable again (`up`) or backing off after a failed connect. */
  nodeTransition(node: number, up: boolean): void {
    if (up) this.nodeUps[node]++;
    else this.nodeDowns[node]++;
  }

  redirected(id: number): void {
    this.cmdRedirects[id]++;
  }

  retried(id: number): void {
    this.cmdRetries[id]++;
  }

  pinnedOpened(node: number): void {
    this.nodePinned[node]++;
  }

  pinnedClosed(node: number): void {
    this.nodePinned[node]--;
  }

  /** CONFIG RESETSTAT: zero the counters and histograms (gauges and node ids stay). */
  reset(): void {
    for (const a of [this.cmdCalls, this.cmdUsec, this.cmdFailed, this.cmdRejected, this.cmdRedirects,
      this.cmdRetries, this.cmdErrors, this.nodeCalls, this.nodeErrors, this.nodeUps, this.nodeDowns,
      this.nodeBytesOut, this.nodeBytesIn]) a.fill(0);
    this.cmdHist = this.cmdHist.map(() => undefined);
    for (const h of this.nodeHist) h.fill(0);
    this.totalErrorReplies = 0;
    this.errorPrefixes.clear();
  }
}

function kindOfPrefix(p: string): ErrorKind {
  switch (p) {
    case "MOVED": return ErrorKind.MOVED;
    case "ASK": return ErrorKind.ASK;
    case "TRYAGAIN": return ErrorKind.TRYAGAIN;
    case "CLUSTERDOWN": return ErrorKind.CLUSTERDOWN;
    case "LOADING": return ErrorKind.LOADING;
    case "MASTERDOWN": return ErrorKind.MASTERDOWN;
    case "READONLY": return ErrorKind.READONLY;
    default: return ErrorKind.OTHER;
  }
}

/** The kind of a node's error reply `buf[start, end)` ('-' at start), without making a string. */
export function replyErrorKind(buf: Uint8Array, start: number, end: number): ErrorKind {
  const c = buf[start + 1];
  // First letters tell most apart; the rest are checked in full.
  if (c === 77 /* M */) return has(buf, start, end, MOVED_B) ? ErrorKind.MOVED : has(buf, start, end, MASTERDOWN_B) ? ErrorKind.MASTERDOWN : ErrorKind.OTHER;
  if (c === 65 /* A */) return has(buf, start, end, ASK_B) ? ErrorKind.ASK : ErrorKind.OTHER;
  if (c === 84 /* T */) return has(buf, start, end, TRYAGAIN_B) ? ErrorKind.TRYAGAIN : ErrorKind.OTHER;
  if (c === 67 /* C */) return has(buf, start, end, CLUSTERDOWN_B) ? ErrorKind.CLUSTERDOWN : ErrorKind.OTHER;
  if (c === 76 /* L */) return has(buf, start, end, LOADING_B) ? ErrorKind.LOADING : ErrorKind.OTHER;
  if (c === 82 /* R */) return has(buf, start, end, READONLY_B) ? ErrorKind.READONLY : ErrorKind.OTHER;
  return ErrorKind.OTHER;
}

const enc = (s: string) => new TextEncoder().encode(s);
const MOVED_B = enc("-MOVED "), ASK_B = enc("-ASK "), TRYAGAIN_B = enc("-TRYAGAIN"), CLUSTERDOWN_B = enc("-CLUSTERDOWN");
const LOADING_B = enc("-LOADING"), MASTERDOWN_B = enc("-MASTERDOWN"), READONLY_B = enc("-READONLY");

function has(buf: Uint8Array, start: number, end: number, p: Uint8Array): boolean {
  if (end - start < p.length) return false;
  for (let i = 1; i < p.length; i++) if (buf[start + i] !== p[i]) return false;
  return true;
}

/** The process' recorder. One per process: workers' figures are merged when read (group.ts). */
export const metrics = new Metrics();
