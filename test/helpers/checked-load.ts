// A client that checks every reply: open-loop pipelined GET/SET/INCR on its own keys against a model (fault tests, bench/failover-load.ts).

import type { Socket } from "bun";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { ReplyFramer } from "./resp-client.ts";
import { decodeReply, encodeCommand, RespError } from "../../src/resp/reply-value.ts";

const enc = new TextEncoder();

/** What a key may hold: every value a write whose outcome is unknown may or may not have set. */
type Possible = (string | null)[];

const enum Op { GET, SET, INCR }

interface Sent {
  op: Op;
  key: number;
  /** SET's value. */
  value: string;
  /** Position in the client's command order (a SET's value carries it). */
  seq: number;
  at: number;
}

/** Shared by all clients: where latencies and errors go. */
export interface LoadSink {
  /** A reply `ms` after its command was sent, at `now` (performance.now()). */
  latency(now: number, ms: number): void;
  /** An error reply of kind `kind` for a key in `slot`, for a command of type `op`. */
  error(kind: string, message: string, slot: number, op: string): void;
  /** A reply that contradicts the model: lost write, stale read, wrong counter. */
  wrong(what: string): void;
}

/** A write in flight to a node that failed: it may or may not have run. */
export const AMBIGUOUS_WRITE = "ambiguous write (in flight to a node that failed)";
/** A read in flight to a node that failed, with a later write of its client to its slot: not repeated. */
export const READ_NOT_REPEATED = "read not repeated (a later write of the client was in flight with it)";

/** The kind of an error reply, for the report: its first word, or one of the kinds above. */
export function errorKind(message: string): string {
  if (message.includes("may or may not have run")) return AMBIGUOUS_WRITE;
  if (message.includes("the read was not repeated")) return READ_NOT_REPEATED;
  if (message.startsWith("CLUSTERDOWN")) return message.replace(/node \S+/, "node X").slice(0, 80);
  return message.split(" ")[0];
}

/**
 * Keys `c<id>:k<j>` (strings) and `c<id>:n<j>` (counters) belong to this client alone, so its
 * replies, which come in the order sent, can be checked exactly: a GET returns what the last
 * acknowledged SET wrote (or one of the values an unacknowledged one may have), an INCR one
 * more than the counter was. A write that fails with "may or may not have run" widens what the
 * key may hold; the next read narrows it again.
 */
export class LoadClient {
  private sock: Socket<LoadClient> | null = null;
  private readonly strings: Possible[];
  private readonly counters: number[][];
  private readonly slots: Int32Array;
  private readonly pending: Sent[] = [];
  private head = 0;
  private readonly framer = new ReplyFramer();
  private seq = 0;
  /** SETs answered with an error that says they did not run, by position (to explain a wrong read). */
  private readonly failedSets = new Map<number, string>();
  private out: Uint8Array[] = [];
  private outBytes = 0;
  closed = false;
  sent = 0;
  answered = 0;
  /** Sends skipped because too many commands were outstanding. */
  skipped = 0;
  /** Longest time with commands outstanding and no reply (ms). */
  longestPause = 0;
  private progressAt = 0;

  constructor(readonly id: number, private readonly keys: number, private readonly sink: LoadSink, private readonly maxOutstanding: number) {
    this.strings = Array.from({ length: keys }, () => [null]);
    this.counters = Array.from({ length: keys }, () => [0]);
    this.slots = new Int32Array(keys * 2);
    for (let j = 0; j < keys; j++) {
      this.slots[2 * j] = slot(this.name(Op.GET, j));
      this.slots[2 * j + 1] = slot(this.name(Op.INCR, j));
    }
  }

  async connect(port: number): Promise<void> {
    this.sock = await Bun.connect<LoadClient>({
      hostname: "127.0.0.1", port, data: this,
      socket: {
        data(s, chunk) { s.data.onData(chunk); },
        drain(s) { s.data.flush(); },
        close(s) { s.data.closed = true; },
        error(s) { s.data.closed = true; },
      },
    });
    this.sock.setNoDelay(true);
  }

  get outstanding(): number {
    return this.pending.length - this.head;
  }

  /** Slots this client's keys hash to (for telling healthy from failed masters). */
  slotOf(key: number, counter: boolean): number {
    return this.slots[2 * key + (counter ? 1 : 0)];
  }

  /** Queues `n` commands: 70% GET, 25% SET, 5% INCR on random keys of its own. */
  send(n: number, now: number): void {
    if (this.closed) return;
    for (let i = 0; i < n; i++) {
      if (this.outstanding >= this.maxOutstanding) { this.skipped += n - i; break; }
      const r = Math.random(), key = Math.floor(Math.random() * this.keys);
      const op = r < 0.7 ? Op.GET : r < 0.95 ? Op.SET : Op.INCR;
      const seq = ++this.seq;
      const value = op === Op.SET ? `v${this.id}:${seq}` : "";
      const name = this.name(op, key);
      this.queue(op === Op.GET ? ["GET", name] : op === Op.SET ? ["SET", name, value] : ["INCR", name]);
      if (this.outstanding === 0) this.progressAt = now;
      this.pending.push({ op, key, value, seq, at: now });
      this.sent++;
    }
    this.flush();
  }

  /** Reads back every key through the proxy at the end and checks it against the model. */
  verifyAll(now: number): void {
    for (let j = 0; j < this.keys; j++) {
      this.queue(["GET", this.name(Op.GET, j)]);
      this.pending.push({ op: Op.GET, key: j, value: "", seq: ++this.seq, at: now });
      this.queue(["GET", this.name(Op.INCR, j)]);
      this.pending.push({ op: Op.INCR, key: -1 - j, value: "", seq: ++this.seq, at: now });
    }
    this.flush();
  }

  private name(op: Op, key: number): string {
    return op === Op.INCR ? `c${this.id}:n${key}` : `c${this.id}:k${key}`;
  }

  private queue(args: string[]): void {
    const b = encodeCommand(args);
    this.out.push(b);
    this.outBytes += b.length;
  }

  flush(): void {
    if (this.sock === null || this.outBytes === 0) return;
    const all = new Uint8Array(this.outBytes);
    let o = 0;
    for (const b of this.out) { all.set(b, o); o += b.length; }
    const n = this.sock.write(all);
    this.out = n < all.length ? [all.subarray(Math.max(0, n))] : [];
    this.outBytes = all.length - Math.max(0, n);
  }

  private onData(chunk: Uint8Array): void {
    const now = performance.now();
    if (!this.framer.feed(chunk, (r) => this.onReply(decodeReply(r, 0).value, now))) {
      this.sink.wrong(`client ${this.id}: protocol error in a reply`);
      this.sock?.end();
    }
  }

  private onReply(v: unknown, now: number): void {
    const s = this.pending[this.head++];
    if (this.head > 4096 && this.head * 2 > this.pending.length) { this.pending.splice(0, this.head); this.head = 0; }
    if (s === undefined) { this.sink.wrong(`client ${this.id}: a reply without a command`); return; }
    this.answered++;
    this.longestPause = Math.max(this.longestPause, now - this.progressAt);
    this.progressAt = now;
    this.sink.latency(now, now - s.at);
    if (s.key < 0) return this.checkCounterRead(-1 - s.key, v);
    const kind = s.op === Op.GET ? "GET" : s.op === Op.SET ? "SET" : "INCR";
    if (v instanceof RespError) {
      this.sink.error(errorKind(v.message), v.message, this.slotOf(s.key, s.op === Op.INCR), kind);
      // A write that may have run widens what the key may hold.
      if (v.message.includes("may or may not have run")) {
        if (s.op === Op.SET) this.strings[s.key] = [...new Set([...this.strings[s.key], s.value])];
        if (s.op === Op.INCR) this.counters[s.key] = [...new Set([...this.counters[s.key], ...this.counters[s.key].map((c) => c + 1)])];
      } else if (s.op === Op.SET) {
        this.failedSets.set(s.seq, v.message);
      }
      return;
    }
    switch (s.op) {
      case Op.GET: {
        const got = v as string | null;
        if (!this.strings[s.key].includes(got)) this.sink.wrong(`client ${this.id} GET k${s.key} (#${s.seq}): ${got}, expected one of ${JSON.stringify(this.strings[s.key])}${this.why(s, got)}`);
        this.strings[s.key] = [got];
        break;
      }
      case Op.SET:
        if (v !== "OK") this.sink.wrong(`client ${this.id} SET: ${String(v)}`);
        this.strings[s.key] = [s.value];
        break;
      default: {
        const got = Number(v);
        if (!this.counters[s.key].some((c) => c + 1 === got)) this.sink.wrong(`client ${this.id} INCR n${s.key}: ${got}, expected one more than one of ${JSON.stringify(this.counters[s.key])}`);
        this.counters[s.key] = [got];
      }
    }
  }

  /** What a wrong GET's value says: set by a later command (the GET was overtaken), or by an earlier SET answered with an error. */
  private why(get: Sent, got: string | null): string {
    const m = got === null ? null : /^v\d+:(\d+)$/.exec(got);
    if (m === null) return "";
    const seq = Number(m[1]);
    if (seq > get.seq) return ` (written by #${seq}, sent after this GET: it overtook the GET)`;
    const err = this.failedSets.get(seq);
    return err === undefined ? ` (written by #${seq}, an earlier SET)` : ` (written by #${seq}, an earlier SET answered: ${err})`;
  }

  private checkCounterRead(key: number, v: unknown): void {
    if (v instanceof RespError) return this.sink.error(errorKind(v.message), v.message, this.slotOf(key, true), "GET");
    const got = v === null ? 0 : Number(v);
    if (!this.counters[key].includes(got)) this.sink.wrong(`client ${this.id} final n${key}: ${got}, expected one of ${JSON.stringify(this.counters[key])}`);
  }

  close(): void {
    this.sock?.end();
  }
}

function slot(key: string): number {
  const b = enc.encode(key);
  return slotOf(b, 0, b.length);
}
