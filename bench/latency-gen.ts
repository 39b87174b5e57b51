// One load-generator process of bench/latency.ts: its share of the clients, sending on an open-loop schedule.
//
// Protocol with the parent: argv[2] is a GenConfig as JSON. The process connects every
// connection, prints "ready", waits for "go <epoch ms>" on stdin (the schedule's start, shared by
// all generators), runs, prints "result <GenResult JSON>" and exits 0. Errors go to stderr, exit 1.

import type { Socket } from "bun";
import calculateSlot from "cluster-key-slot";
import { query } from "../src/cluster/control-client.ts";
import { toSparse } from "../src/metrics/histogram.ts";
import { NEED_MORE, ReplyScan, scanReply } from "../src/resp/reply-reader.ts";
import type { RespValue } from "../src/resp/reply-value.ts";
import type { PacerInit } from "./latency-pacer.ts";
import { clientPhases, InFlight, LatencyAccount, REPLY_ERROR, REPLY_NULL, REPLY_VALUE, rng, Schedule, tickPeriodMs } from "./open-loop.ts";

export interface GenConfig {
  host: string; port: number;
  /** host:port is a Redis Cluster node: each client holds one connection per master and sends each command to its slot's owner. */
  cluster: boolean;
  /** Clients in the whole run, and this process's share: clients first .. first + count - 1. */
  clients: number; first: number; count: number;
  /** Commands/s of the whole run; commands per client tick. */
  rate: number; pipeline: number; seed: number;
  warmupMs: number; durationMs: number;
  /** After the window: how long to wait for outstanding replies before counting them missed. */
  drainMs: number;
  keyspace: number; valueSize: number; setRatio: number; lateMs: number;
  /** Per connection; a command due while its connection has this many outstanding is dropped (counted missed). */
  maxInFlight: number;
  /** Wake on time with bench/latency-pacer.ts (else a 1 ms timer, and replies, wake the sends). */
  pacer: boolean;
}

type Sparse = { idx: number[]; n: number[] };

export interface GenResult {
  connections: number; due: number; sent: number; answered: number; errors: number; nulls: number;
  dropped: number; unsent: number; late: number; repliesInWindow: number; maxLatencyUs: number; maxLatenessUs: number;
  latency: Sparse; service: Sparse; lateness: Sparse;
  /** Connections that closed or failed during the run, with the reason. */
  connErrors: string[];
  /** First error reply seen, if any (say a MOVED when the cluster changed). */
  firstError: string | null;
}

/** The pacer posts a wake-up at most this often (ms): it costs CPU in both threads per message. */
const PACER_GAP_MS = 0.2;
/** At most this many ticks per turn of the event loop, so that replies are read in between. */
const TICKS_PER_TURN = 256;
const KEY_DIGITS = 12;
const enc = new TextEncoder();

/** State of one connection, in socket.data. */
class Conn {
  sock: Socket<Conn> | null = null;
  readonly inFlight = new InFlight();
  readonly scan = new ReplyScan();
  /** A reply's bytes so far, when it straddles chunks. */
  carry: Uint8Array | null = null;
  /** This tick's commands for this connection, written in one write. */
  stage: Uint8Array;
  staged = 0;
  /** Bytes the socket did not accept yet; sent on drain. */
  backlog: Uint8Array[] = [];
  dead = false;
  constructor(readonly addr: string, stageBytes: number) { this.stage = new Uint8Array(stageBytes); }
}

const cfg = JSON.parse(process.argv[2] ?? "null") as GenConfig;
if (!cfg) { process.stderr.write("usage: bun bench/latency-gen.ts CONFIG-JSON (started by bench/latency.ts)\n"); process.exit(2); }

// ---- commands: templates with the key's digits filled in per command ----

const value = "x".repeat(cfg.valueSize);
const keyTpl = "key:" + "0".repeat(KEY_DIGITS);
const GET = enc.encode(`*2\r\n$3\r\nGET\r\n$${keyTpl.length}\r\n${keyTpl}\r\n`);
const SET = enc.encode(`*3\r\n$3\r\nSET\r\n$${keyTpl.length}\r\n${keyTpl}\r\n$${value.length}\r\n${value}\r\n`);
const GET_DIGITS = GET.indexOf(0x3a /* ':' */) + 1, SET_DIGITS = SET.indexOf(0x3a) + 1;
const random = rng((cfg.seed ^ Math.imul(cfg.first + 1, 0x9e3779b1)) >>> 0);

function encodeCommand(c: Conn, isSet: boolean, key: number): void {
  const tpl = isSet ? SET : GET;
  let at = c.staged + (isSet ? SET_DIGITS : GET_DIGITS) + KEY_DIGITS;
  c.stage.set(tpl, c.staged);
  c.staged += tpl.length;
  for (let d = 0; d < KEY_DIGITS; d++) { c.stage[--at] = 48 + (key % 10); key = Math.floor(key / 10); }
}

// ---- connections: one per client, or per client and master ----

interface Target { addrs: string[]; slotOwner: Uint8Array | null; keySlot: Uint16Array | null }

async function discover(): Promise<Target> {
  if (!cfg.cluster) return { addrs: [`${cfg.host}:${cfg.port}`], slotOwner: null, keySlot: null };
  const [slots] = await query(cfg.host, cfg.port, [["CLUSTER", "SLOTS"]], null, 5_000);
  if (!Array.isArray(slots)) throw new Error(`CLUSTER SLOTS on ${cfg.host}:${cfg.port}: ${String(slots)}`);
  const addrs: string[] = [];
  const slotOwner = new Uint8Array(16384).fill(255);
  for (const r of slots as RespValue[][]) {
    const [lo, hi, master] = r as [number, number, RespValue[]];
    const addr = `${String(master[0]) || cfg.host}:${Number(master[1])}`;
    let i = addrs.indexOf(addr);
    if (i < 0) i = addrs.push(addr) - 1;
    slotOwner.fill(i, Number(lo), Number(hi) + 1);
  }
  if (slotOwner.includes(255)) throw new Error("CLUSTER SLOTS: some slots have no master");
  if (addrs.length > 254) throw new Error("more than 254 masters");
  const keySlot = new Uint16Array(cfg.keyspace);
  for (let k = 0; k < cfg.keyspace; k++) keySlot[k] = calculateSlot("key:" + String(k).padStart(KEY_DIGITS, "0"));
  return { addrs, slotOwner, keySlot };
}

const acc = { current: null as LatencyAccount | null };
let outstanding = 0;
let finished = false;
const connErrors: string[] = [];
let firstError: string | null = null;

function onData(sock: Socket<Conn>, chunk: Uint8Array): void {
  const c = sock.data;
  const a = acc.current;
  if (!a) return; // nothing is sent before "go"
  const now = performance.now();
  let buf = chunk;
  if (c.carry) {
    buf = new Uint8Array(c.carry.length + chunk.length);
    buf.set(c.carry);
    buf.set(chunk, c.carry.length);
    c.carry = null;
  }
  let at = 0;
  while (at < buf.length) {
    const n = scanReply(buf, at, buf.length, c.scan);
    if (n === NEED_MORE) { c.carry = buf.slice(at); break; }
    if (n < 0 || c.inFlight.size === 0) { fail(c, n < 0 ? "protocol error in a reply" : "a reply to no command"); return; }
    const t = buf[at];
    const kind = t === 45 ? REPLY_ERROR : t === 36 && buf[at + 1] === 45 ? REPLY_NULL : REPLY_VALUE;
    if (kind === REPLY_ERROR && firstError === null) firstError = new TextDecoder().decode(buf.subarray(at, at + Math.min(n, 200))).trim();
    a.onReply(c.inFlight.headScheduled(), c.inFlight.headSent(), now, kind);
    c.inFlight.shift();
    outstanding--;
    at += n;
  }
  if (sendingDone) { if (outstanding === 0) finish(); } else pump();
}

function flush(c: Conn): void {
  const sock = c.sock!;
  while (c.backlog.length > 0) {
    const b = c.backlog[0];
    const n = sock.write(b);
    if (n < b.length) { c.backlog[0] = b.subarray(Math.max(0, n)); return; }
    c.backlog.shift();
  }
}

function send(c: Conn): void {
  const bytes = c.stage.subarray(0, c.staged);
  c.staged = 0;
  if (c.backlog.length > 0) { c.backlog.push(bytes.slice()); return; }
  const n = c.sock!.write(bytes);
  if (n < bytes.length) c.backlog.push(bytes.slice(Math.max(0, n)));
}

/** A connection is gone: its commands in flight will never be answered (they count as missed). */
function fail(c: Conn, why: string): void {
  if (c.dead) return;
  c.dead = true;
  outstanding -= c.inFlight.size;
  while (c.inFlight.size > 0) c.inFlight.shift();
  if (!finished) connErrors.push(`${c.addr}: ${why}`);
  c.sock?.terminate();
  if (sendingDone && outstanding === 0) finish();
}

async function connect(addr: string, stageBytes: number): Promise<Conn> {
  const c = new Conn(addr, stageBytes);
  const i = addr.lastIndexOf(":");
  c.sock = await Bun.connect<Conn>({
    hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)), data: c,
    socket: {
      data: onData,
      drain(s) { flush(s.data); },
      close(s) { fail(s.data, "closed by the peer"); },
      error(s, e) { fail(s.data, e.message); },
    },
  });
  c.sock.setNoDelay(true);
  return c;
}

// ---- the schedule ----

let sched: Schedule;
let windowEnd = 0;
let sendingDone = false;
let conns: Conn[] = [];
let perClient = 1;
let target: Target;
const touched: Conn[] = [];
let turnQueued = false;
/** Shared with the pacer: the next due time, and "a wake-up is pending". */
const pacerShared = new SharedArrayBuffer(16);
const nextDue = new Float64Array(pacerShared, 0, 1);
const pacerCtl = new Int32Array(pacerShared, 8, 2);
let pacer: Worker | null = null;

/** Sends every tick that is due, oldest first, up to TICKS_PER_TURN a call. */
function pump(): void {
  if (sendingDone) return;
  const a = acc.current!;
  const now = performance.now();
  for (let n = 0; n < TICKS_PER_TURN; n++) {
    const at = sched.nextAt();
    if (at > now) { nextDue[0] = at; return; }
    if (at >= windowEnd) { sendingDone = true; if (outstanding === 0) finish(); return; }
    tick(a, sched.nextClient() - cfg.first, at, now);
    sched.advance();
  }
  if (!turnQueued) { turnQueued = true; setImmediate(nextTurn); }
}

function nextTurn(): void {
  turnQueued = false;
  pump();
}

/** One client's tick: `pipeline` commands, written per connection in one write each. */
function tick(a: LatencyAccount, client: number, at: number, now: number): void {
  for (let k = 0; k < cfg.pipeline; k++) {
    const key = Math.floor(random() * cfg.keyspace);
    const isSet = random() < cfg.setRatio;
    const c = conns[client * perClient + (target.keySlot ? target.slotOwner![target.keySlot[key]] : 0)];
    if (c.dead || c.inFlight.size >= cfg.maxInFlight) { a.onSend(at, -1); continue; }
    if (c.staged === 0) touched.push(c);
    encodeCommand(c, isSet, key);
    c.inFlight.push(at, now);
    outstanding++;
    a.onSend(at, now);
  }
  for (const c of touched) send(c);
  touched.length = 0;
}

function sparse(h: Float64Array): Sparse {
  const s = toSparse(h);
  return { idx: Array.from(s.idx), n: Array.from(s.n) };
}

function finish(): void {
  if (finished) return;
  finished = true;
  nextDue[0] = NaN;
  const a = acc.current!;
  // A generator still behind schedule never sent the window's last ticks: they are missed too.
  if (!sendingDone) for (let at = sched.nextAt(); at < windowEnd; at = sched.nextAt()) { a.onUnsent(at, cfg.pipeline); sched.advance(); }
  for (const c of conns) { c.dead = true; c.sock?.terminate(); }
  const r: GenResult = {
    connections: conns.length, due: a.due, sent: a.sent, answered: a.answered, errors: a.errors, nulls: a.nulls,
    dropped: a.dropped, unsent: a.unsent, late: a.late, repliesInWindow: a.repliesInWindow, maxLatencyUs: a.maxLatencyUs,
    maxLatenessUs: a.maxLatenessUs, latency: sparse(a.latency), service: sparse(a.service), lateness: sparse(a.lateness),
    connErrors, firstError,
  };
  void Bun.write(Bun.stdout, `result ${JSON.stringify(r)}\n`).then(() => process.exit(0));
}

async function main(): Promise<void> {
  target = await discover();
  perClient = target.addrs.length;
  const stageBytes = cfg.pipeline * SET.length;
  const all: Promise<Conn>[] = [];
  for (let c = 0; c < cfg.count; c++) for (const addr of target.addrs) all.push(connect(addr, stageBytes));
  conns = await Promise.all(all);
  await Bun.write(Bun.stdout, `ready ${conns.length}\n`);
  const goTimer = setTimeout(() => { process.stderr.write("no 'go' within 60 s\n"); process.exit(1); }, 60_000);
  let epoch = NaN;
  for await (const line of console) {
    const m = /^go (\d+)$/.exec(line.trim());
    if (m) { epoch = Number(m[1]); break; }
  }
  clearTimeout(goTimer);
  if (!Number.isFinite(epoch)) throw new Error("stdin closed before 'go'");
  const start = performance.now() + (epoch - Date.now());
  const period = tickPeriodMs(cfg.rate, cfg.clients, cfg.pipeline);
  const slice = Array.from({ length: cfg.count }, (_, i) => cfg.first + i);
  sched = new Schedule(clientPhases(cfg.clients, period, cfg.seed), slice, period, start);
  const windowStart = start + cfg.warmupMs;
  windowEnd = windowStart + cfg.durationMs;
  acc.current = new LatencyAccount(windowStart, windowEnd, cfg.lateMs);
  if (cfg.pacer) {
    pacer = new Worker(new URL("./latency-pacer.ts", import.meta.url).href);
    pacer.onmessage = () => { Atomics.store(pacerCtl, 0, 0); pump(); };
    nextDue[0] = start;
    pacer.postMessage({ shared: pacerShared, origin: performance.timeOrigin, gapMs: PACER_GAP_MS } satisfies PacerInit);
  }
  // Sends also go out whenever a reply wakes the loop (onData); this timer covers quiet spells.
  const timer = setInterval(pump, 1);
  setTimeout(() => { clearInterval(timer); finish(); }, windowEnd - performance.now() + cfg.drainMs);
  pump();
}

main().catch((e: Error) => {
  process.stderr.write(`latency-gen: ${e.message}\n`);
  process.exit(1);
});
