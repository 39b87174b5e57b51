// Pub/Sub: every client's subscriptions over a few shared subscriber connections, messages fanned out here.

import { getLogger } from "@logtape/logtape";
import type { BackendNode } from "../backend/backend-node.ts";
import { slotOf } from "../cluster/key-slot.ts";
import type { CommandSpec } from "../commands/command-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import type { Proto } from "../resp/reply-writer.ts";
import { acquire, Kind, release, setReply } from "../router/request.ts";
import type { ClientSession } from "../router/router.ts";
import { globMatch } from "../util/glob.ts";
import { bytesOf, nameOf } from "./channel-name.ts";
import type { BackendTls } from "../tls/backend-tls.ts";
import { MessageKind, SubscriberConn, type SubscriberEvents } from "./subscriber-conn.ts";
import type { SessionHost } from "./session.ts";

const log = getLogger(["predixy", "pubsub"]);
const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** A client's subscriptions: predixy's own, the nodes see one subscriber per channel. */
export class ClientSubs {
  readonly channels = new Set<string>();
  readonly patterns = new Set<string>();
  readonly shard = new Set<string>();
  /** It published since its subscriptions last changed: messages of its own may be on their way. */
  published = false;
  /** Its subscribe commands whose confirmation waits for the node: its later commands wait too. */
  confirming = 0;

  get count(): number {
    return this.channels.size + this.patterns.size;
  }
}

type Subscriber = ClientSession;

export interface PubSubOptions {
  auth: { username: string; password: string } | null;
  connectTimeoutMs: number;
  tls: BackendTls | null;
}

type Table = Map<string, Set<Subscriber>>;

const NAMES = ["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"] as const;
/** The commands a RESP2 client in subscribed mode may send, as Redis allows them. */
const ALLOWED_SUBSCRIBED = new Set([...NAMES, "ping", "quit", "reset"]);

/**
 * Classic channels and patterns go over one connection to one master (Redis Cluster delivers
 * every message to every node); shard channels over one connection per node that owns them.
 * Each is subscribed there once, while some client wants it. A lost connection is replaced and
 * everything subscribed again; a shard channel whose slot moves is subscribed at its new owner.
 * Clients stay connected meanwhile (messages published during the gap are missed, as pub/sub's
 * at-most-once delivery allows).
 */
export class PubSub implements SubscriberEvents {
  private classic: SubscriberConn | null = null;
  private readonly channels: Table = new Map();
  private readonly patterns: Table = new Map();
  /** Each subscribed pattern as bytes, for matching channels PUBLISH counts. */
  private readonly patternCache = new Map<string, Uint8Array>();
  private readonly shard: Table = new Map();
  /** Shard channel → the connection (and node) it is subscribed on. */
  private readonly shardOn = new Map<string, SubscriberConn>();
  private readonly shardConns = new Map<BackendNode, SubscriberConn>();
  private readonly connNode = new Map<SubscriberConn, BackendNode>();
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly host: SessionHost, private readonly opts: PubSubOptions) {}

  /** SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, answered as Redis answers them. */
  command(c: Subscriber, f: Frame, spec: CommandSpec): void {
    const names: string[] = [];
    for (let i = 1; i < f.argc; i++) names.push(nameOf(f.arg(i)));
    const subs = c.subs ?? new ClientSubs();
    const frames: Uint8Array[] = [];
    /** Subscriber connections this command subscribed on, or that still subscribe for someone. */
    const confirming = new Set<SubscriberConn>();
    const wait = (conn: SubscriberConn | null, sent: boolean) => {
      if (conn !== null && (sent || conn.pingsPending > 0)) confirming.add(conn);
    };
    switch (spec.name) {
      case "subscribe":
        for (const ch of names) {
          const sent = this.add(this.channels, subs.channels, ch, c);
          wait(sent ? this.toClassic(["SUBSCRIBE", ch]) : this.classic, sent);
          frames.push(confirm("subscribe", ch, subs.count, c.proto));
        }
        break;
      case "psubscribe":
        for (const p of names) {
          const sent = this.add(this.patterns, subs.patterns, p, c);
          wait(sent ? this.toClassic(["PSUBSCRIBE", p]) : this.classic, sent);
          frames.push(confirm("psubscribe", p, subs.count, c.proto));
        }
        break;
      case "ssubscribe":
        if (new Set(names.map(slotOfName)).size > 1) return this.host.answer(c, R.errorReply("CROSSSLOT Keys in request don't hash to the same slot"));
        for (const ch of names) {
          const sent = this.add(this.shard, subs.shard, ch, c);
          if (sent) this.subscribeShard(ch);
          wait(this.shardOn.get(ch) ?? null, sent);
          frames.push(confirm("ssubscribe", ch, subs.shard.size, c.proto));
        }
        break;
      case "unsubscribe":
        this.drop(this.channels, subs.channels, names, c, "unsubscribe", subs, frames, (ch) => this.toClassic(["UNSUBSCRIBE", ch]));
        break;
      case "punsubscribe":
        this.drop(this.patterns, subs.patterns, names, c, "punsubscribe", subs, frames, (p) => this.patternGone(p));
        break;
      default: // sunsubscribe
        this.drop(this.shard, subs.shard, names, c, "sunsubscribe", subs, frames, (ch) => this.unsubscribeShard(ch));
    }
    c.subs = subs.count > 0 || subs.shard.size > 0 ? subs : null;
    if (confirming.size === 0) return this.host.answer(c, Buffer.concat(frames));
    // As on Redis, the confirmation comes once the node has subscribed (a PING behind the
    // SUBSCRIBE comes back): a PUBLISH after it, by anyone, reaches the client. The client's
    // later commands wait for it (see confirming).
    const req = this.host.track(c, f, spec, -1);
    const reply = Buffer.concat(frames);
    subs.confirming++;
    let left = confirming.size;
    const done = () => {
      if (--left > 0) return;
      subs.confirming--;
      this.host.finish(req, reply);
    };
    for (const conn of confirming) conn.ping(done);
  }

  /**
   * In RESP2, a subscribed client may only (un)subscribe, PING, QUIT and RESET, as on Redis:
   * the error for anything else, or null when the command may go on.
   */
  restricted(c: Subscriber, f: Frame, spec: CommandSpec): Uint8Array | null {
    if (c.proto === 3 || c.subs === null) return null;
    if (spec.local === "ping") return encodePong(f.argc > 1 ? f.arg(1) : new Uint8Array(0));
    if (ALLOWED_SUBSCRIBED.has(spec.name)) return null;
    return R.errorReply(`ERR Can't execute '${spec.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`);
  }

  /**
   * Before a subscriber that published (un)subscribes: its PUBLISH was answered on another
   * connection than the one its messages come on, so some may not have been read yet. A PING on
   * each subscriber connection it uses comes back after them; meanwhile a placeholder in its
   * reply order makes its later commands wait. False when there is nothing to wait for.
   */
  awaitOwnMessages(c: Subscriber): boolean {
    const subs = c.subs;
    if (subs === null || !subs.published) return false;
    subs.published = false;
    const conns = new Set<SubscriberConn>();
    if (subs.count > 0 && this.classic !== null) conns.add(this.classic);
    for (const ch of subs.shard) {
      const conn = this.shardOn.get(ch);
      if (conn !== undefined) conns.add(conn);
    }
    if (conns.size === 0) return false;
    const wait = acquire();
    wait.kind = Kind.PUSH;
    wait.sink = c;
    c.track(wait);
    let left = conns.size;
    const done = () => {
      if (--left > 0) return;
      if (c.closed) return release(wait);
      setReply(wait, EMPTY, 0, 0);
      c.complete(wait);
    };
    for (const conn of conns) conn.ping(done);
    return true;
  }

  /** The client has gone, or sent RESET: all its subscriptions end. */
  clientGone(c: Subscriber): void {
    const subs = c.subs;
    if (subs === null) return;
    c.subs = null;
    for (const ch of subs.channels) if (this.remove(this.channels, ch, c)) this.toClassic(["UNSUBSCRIBE", ch]);
    for (const p of subs.patterns) if (this.remove(this.patterns, p, c)) this.patternGone(p);
    for (const ch of subs.shard) if (this.remove(this.shard, ch, c)) this.unsubscribeShard(ch);
  }

  // ---- counts for PUBLISH and PUBSUB: predixy's clients, not its one connection per channel ----

  /** Deliveries a PUBLISH of `channel` makes to predixy's clients (one per channel and matching pattern). */
  localReceivers(channel: string): number {
    let n = this.channels.get(channel)?.size ?? 0;
    if (this.patterns.size === 0) return n;
    const b = bytesOf(channel);
    for (const [p, set] of this.patterns) if (globMatch(this.patternBytes(p), b, 0, b.length)) n += set.size;
    return n;
  }

  /** Deliveries the node counts for predixy's classic connection (on `node`) for `channel`. */
  ownReceivers(channel: string, node: BackendNode | null): number {
    if (this.classic === null || node === null || this.connNode.get(this.classic) !== node) return 0;
    let n = this.channels.has(channel) ? 1 : 0;
    if (this.patterns.size === 0) return n;
    const b = bytesOf(channel);
    for (const p of this.patterns.keys()) if (globMatch(this.patternBytes(p), b, 0, b.length)) n++;
    return n;
  }

  /** The node the classic subscriber connection is on (PUBLISH goes there, so counts can be mended). */
  get classicNode(): BackendNode | null {
    return this.classic === null ? null : this.connNode.get(this.classic) ?? null;
  }

  /** Clients of predixy subscribed to `channel` itself (PUBSUB NUMSUB counts no patterns). */
  localChannelSubscribers(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  /** 1 if predixy's classic connection, on `node`, is subscribed to `channel`. */
  ownChannel(channel: string, node: BackendNode | null): number {
    return this.classic !== null && node !== null && this.connNode.get(this.classic) === node && this.channels.has(channel) ? 1 : 0;
  }

  localShard(channel: string): number {
    return this.shard.get(channel)?.size ?? 0;
  }

  ownShard(channel: string, node: BackendNode | null): number {
    const conn = this.shardOn.get(channel);
    return conn !== undefined && node !== null && this.connNode.get(conn) === node ? 1 : 0;
  }

  localChannels(): string[] {
    return [...this.channels.keys()];
  }

  localPatterns(): number {
    return this.patterns.size;
  }

  ownPatterns(node: BackendNode): number {
    return this.classic !== null && this.connNode.get(this.classic) === node ? this.patterns.size : 0;
  }

  // ---- messages ----

  onMessage(_conn: SubscriberConn, kind: MessageKind, key: string, buf: Uint8Array, start: number, end: number): void {
    const table = kind === MessageKind.CHANNEL ? this.channels : kind === MessageKind.PATTERN ? this.patterns : this.shard;
    const set = table.get(key);
    if (set === undefined) return;
    let push: Uint8Array | null = null;
    for (const c of set) {
      if (c.proto === 3 && push === null) {
        // RESP3 clients get the same frame as a push: '>' for '*'.
        push = buf.slice(start, end);
        push[0] = 62;
      }
      c.deliver(buf, start, end, push);
    }
  }

  onShardDropped(conn: SubscriberConn, channel: string): void {
    if (this.shardOn.get(channel) !== conn) return;
    this.shardOn.delete(channel);
    // Its slot moved: subscribe at the new owner once the table knows it.
    this.host.topology.requestRefresh();
    this.later();
  }

  onClosed(conn: SubscriberConn, reason: string): void {
    this.connNode.delete(conn);
    if (conn === this.classic) {
      this.classic = null;
      if (this.channels.size + this.patterns.size > 0) log.warn("subscriber connection lost ({reason}); subscribing again", { reason });
    } else {
      for (const [node, c] of this.shardConns) if (c === conn) this.shardConns.delete(node);
      for (const [ch, c] of this.shardOn) if (c === conn) this.shardOn.delete(ch);
    }
    this.host.topology.requestRefresh();
    this.later();
  }

  /** The slot table changed: shard channels whose slot moved are subscribed at the new owner. */
  tableChanged(): void {
    for (const [ch, conn] of this.shardOn) {
      if (this.connNode.get(conn) !== this.ownerOf(ch)) {
        conn.send(["SUNSUBSCRIBE", ch]);
        this.shardOn.delete(ch);
      }
    }
    this.heal();
  }

  /** Soon: subscribe again what has no live connection (after a loss, a moved slot). */
  private later(): void {
    if (this.retry !== null) return;
    this.retry = setTimeout(() => { this.retry = null; this.heal(); }, 100);
  }

  /** Every wanted channel and pattern subscribed somewhere live. */
  private heal(): void {
    if (this.classic === null && this.channels.size + this.patterns.size > 0) {
      const conn = this.connectClassic();
      if (conn !== null) {
        for (const ch of this.channels.keys()) conn.send(["SUBSCRIBE", ch]);
        for (const p of this.patterns.keys()) conn.send(["PSUBSCRIBE", p]);
      }
    }
    for (const ch of this.shard.keys()) if (!this.shardOn.has(ch)) this.subscribeShard(ch);
  }

  // ---- bookkeeping ----

  /** Adds `c` to `name`'s subscribers; true if it is the first (the node must be told). */
  private add(table: Table, mine: Set<string>, name: string, c: Subscriber): boolean {
    mine.add(name);
    let set = table.get(name);
    if (set === undefined) {
      set = new Set();
      table.set(name, set);
    }
    set.add(c);
    return set.size === 1;
  }

  /** Removes `c` from `name`'s subscribers; true if it was the last (the node must be told). */
  private remove(table: Table, name: string, c: Subscriber): boolean {
    const set = table.get(name);
    if (set === undefined || !set.delete(c)) return false;
    if (set.size > 0) return false;
    table.delete(name);
    return true;
  }

  /** UNSUBSCRIBE [names]: the named ones, or all the client has; one confirmation each. */
  private drop(table: Table, mine: Set<string>, names: string[], c: Subscriber, kind: string, subs: ClientSubs,
    frames: Uint8Array[], last: (name: string) => void): void {
    const shard = kind === "sunsubscribe";
    const list = names.length > 0 ? names : [...mine];
    if (list.length === 0) frames.push(confirm(kind, null, shard ? subs.shard.size : subs.count, c.proto));
    for (const name of list) {
      mine.delete(name);
      if (this.remove(table, name, c)) last(name);
      frames.push(confirm(kind, name, shard ? subs.shard.size : subs.count, c.proto));
    }
  }

  private patternBytes(p: string): Uint8Array {
    let b = this.patternCache.get(p);
    if (b === undefined) this.patternCache.set(p, (b = bytesOf(p)));
    return b;
  }

  /** The last client of pattern `p` has gone. */
  private patternGone(p: string): void {
    this.patternCache.delete(p);
    this.toClassic(["PUNSUBSCRIBE", p]);
  }

  /** Sends `args` on the classic subscriber connection (connected first if need be); that connection, or null. */
  private toClassic(args: string[]): SubscriberConn | null {
    const conn = this.classic ?? this.connectClassic();
    conn?.send(args);
    return conn;
  }

  /** The classic subscriber connection, to a reachable master; everything is subscribed on it. */
  private connectClassic(): SubscriberConn | null {
    const node = this.host.anyMaster();
    if (node === null) {
      this.later();
      return null;
    }
    const conn = new SubscriberConn(node.host, node.port, this.opts.auth, this.opts.connectTimeoutMs, this.opts.tls, this);
    this.classic = conn;
    this.connNode.set(conn, node);
    return conn;
  }

  ownerNode(channel: string): BackendNode | null {
    return this.ownerOf(channel);
  }

  private ownerOf(channel: string): BackendNode | null {
    return this.host.topology.table.nodeFor(slotOfName(channel));
  }

  private subscribeShard(channel: string): void {
    const node = this.ownerOf(channel);
    if (node === null) return this.later();
    let conn = this.shardConns.get(node);
    if (conn === undefined || conn.isClosed) {
      conn = new SubscriberConn(node.host, node.port, this.opts.auth, this.opts.connectTimeoutMs, this.opts.tls, this);
      this.shardConns.set(node, conn);
      this.connNode.set(conn, node);
    }
    this.shardOn.set(channel, conn);
    conn.send(["SSUBSCRIBE", channel]);
  }

  private unsubscribeShard(channel: string): void {
    const conn = this.shardOn.get(channel);
    this.shardOn.delete(channel);
    conn?.send(["SUNSUBSCRIBE", channel]);
  }

  /** Closes every subscriber connection (shutdown). */
  stop(): void {
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    const all = [this.classic, ...this.shardConns.values()];
    this.classic = null;
    this.shardConns.clear();
    for (const c of all) c?.close("shutting down");
  }
}

function slotOfName(name: string): number {
  const b = bytesOf(name);
  return slotOf(b, 0, b.length);
}

/** `[kind, name, count]`: a push in RESP3, an array in RESP2; no name: null. */
function confirm(kind: string, name: string | null, count: number, proto: Proto): Uint8Array {
  const head = proto === 3 ? ">3" : "*3";
  const n = name === null ? (proto === 3 ? "_\r\n" : "$-1\r\n") : `$${name.length}\r\n${name}\r\n`;
  return bytesOf(`${head}\r\n$${kind.length}\r\n${kind}\r\n${n}:${count}\r\n`);
}

/** PING in RESP2 subscribed mode: `["pong", message]`. */
function encodePong(msg: Uint8Array): Uint8Array {
  return Buffer.concat([enc.encode(`*2\r\n$4\r\npong\r\n$${msg.length}\r\n`), msg, enc.encode("\r\n")]);
}

export { NAMES as PUBSUB_COMMANDS };
