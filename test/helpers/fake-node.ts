// A scripted Redis Cluster node for deterministic failure tests (after ioredis' mock_server.ts).

import type { Socket, TCPSocketListener } from "bun";
import { Frame, NEED_MORE, readCommand } from "../../src/resp/request-reader.ts";
import { InputBuffer } from "../../src/util/input-buffer.ts";

/** Handler result: do not answer this command, nor any later one on the connection (a stuck node). */
export const NO_REPLY = Symbol("no reply");
/** Handler result: close the connection now, without answering. */
export const CLOSE = Symbol("close");
/** Handler result: answer as the built-in fake would (CLUSTER SLOTS, PING, AUTH, ASKING …). */
export const DEFAULT = undefined;

/** A raw RESP string to write, or one of the markers above. */
export type FakeReply = string | typeof NO_REPLY | typeof CLOSE | undefined;

/** [first slot, last slot, port of the master serving them] (host is always 127.0.0.1). */
export type SlotRange = [number, number, number];

export interface FakeConn {
  /** 1-based, in accept order. */
  readonly id: number;
  /** Commands received on this connection, in order (command names upper-cased, like Redis reads them). */
  readonly received: string[][];
  authed: boolean;
  /** Set after NO_REPLY: the connection reads but never answers again. */
  stalled: boolean;
  /** Writes raw RESP now (for handlers that answer out of band). */
  write(raw: string): void;
  close(): void;
}

/** Called for every command (`args[0]` upper-cased); DEFAULT falls back to the built-in answers. */
export type FakeHandler = (args: string[], conn: FakeConn, node: FakeNode) => FakeReply;

export interface FakeNodeOptions {
  /** CLUSTER SLOTS table; default: every slot served by this node. Mutable via `node.slots`. */
  slots?: SlotRange[];
  /** When set, commands other than AUTH/HELLO/QUIT before a matching AUTH get -NOAUTH. */
  password?: string;
  /** Address to listen on (default 127.0.0.1; any 127.x.y.z is loopback too). */
  host?: string;
}

export interface FakeNode {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections currently open. */
  readonly open: number;
  /** Every command received, over all connections, in arrival order (names upper-cased). */
  readonly received: string[][];
  /** Bytes received, over all connections (a command arriving in pieces counts as it arrives). */
  readonly bytesIn: number;
  /** Every connection accepted so far (open or closed), in accept order. */
  readonly conns: FakeConn[];
  /** The table CLUSTER SLOTS answers with; replace it to simulate a topology change. */
  slots: SlotRange[];
  password: string;
  /** How many times `name` (case-insensitive, e.g. "GET" or "CLUSTER SLOTS") was received. */
  count(name: string): number;
  /** Closes every open connection from the node's side. */
  dropAll(): void;
  /** Like SIGSTOP: connections are accepted and read, but every reply is held back until thaw(). */
  freeze(): void;
  /** Like SIGCONT: the held replies go out, in order, and the node answers again. */
  thaw(): void;
  stop(): void;
}

// RESP builders for handler replies.
export const ok = "+OK\r\n";
export const nil = "$-1\r\n";
export const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
export const int = (n: number) => `:${n}\r\n`;
export const err = (msg: string) => `-${msg}\r\n`;
/** A command as a client sends it (a multibulk of bulk strings). */
export const command = (...args: string[]) => `*${args.length}\r\n${args.map(bulk).join("")}`;

interface ConnState extends FakeConn {
  sock: Socket<ConnState>;
  input: InputBuffer;
  frame: Frame;
  /** Bytes the socket did not take yet (Bun's write does not buffer). */
  pending: Uint8Array[];
  /** Replies held back while the node is frozen. */
  held: (string | Uint8Array)[];
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Starts a fake node on 127.0.0.1:`port`; `handler` answers everything the defaults don't. */
export function startFakeNode(port: number, handler: FakeHandler = () => DEFAULT, opts: FakeNodeOptions = {}): FakeNode {
  const conns: ConnState[] = [];
  const received: string[][] = [];
  const closed = new Set<ConnState>();
  let bytesIn = 0;
  let listener: TCPSocketListener<ConnState> | null = null;
  let frozen = false;

  const node: FakeNode = {
    port,
    get connections() { return conns.length; },
    get open() { return conns.length - closed.size; },
    received,
    get bytesIn() { return bytesIn; },
    conns,
    slots: opts.slots ?? [[0, 16383, port]],
    password: opts.password ?? "",
    count(name) {
      const words = name.toLowerCase().split(" ");
      return received.filter((a) => words.every((w, i) => a[i]?.toLowerCase() === w)).length;
    },
    dropAll() {
      for (const c of conns) if (!closed.has(c)) c.close();
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const c of conns) for (const raw of c.held.splice(0)) send(c, raw);
    },
    stop() {
      node.dropAll();
      listener?.stop(true);
      listener = null;
    },
  };

  const send = (c: ConnState, raw: string | Uint8Array) => {
    if (closed.has(c)) return;
    if (frozen) { c.held.push(raw); return; }
    const bytes = typeof raw === "string" ? encoder.encode(raw) : raw;
    if (c.pending.length > 0) { c.pending.push(bytes); return; }
    const n = c.sock.write(bytes);
    if (n < bytes.length) c.pending.push(bytes.subarray(Math.max(n, 0)));
  };

  const builtIn = (args: string[], c: ConnState): string => {
    const cmd = args[0].toLowerCase();
    if (cmd === "auth") {
      const pass = args[args.length - 1];
      const user = args.length > 2 ? args[1] : "default";
      if (node.password === "") return err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
      if (user !== "default" || pass !== node.password) return err("WRONGPASS invalid username-password pair or user is disabled.");
      c.authed = true;
      return ok;
    }
    if (cmd === "hello") {
      // HELLO protover [AUTH user pass]: what predixy opens its RESP3 connections with (ioredis 6
      // speaks RESP3). Answered as a flat array, which RESP2 and RESP3 readers both take.
      const at = args.findIndex((a, j) => j >= 2 && a.toLowerCase() === "auth");
      if (at > 0) {
        if (args[at + 1] !== "default" || args[at + 2] !== node.password) return err("WRONGPASS invalid username-password pair or user is disabled.");
        c.authed = true;
      } else if (node.password !== "" && !c.authed) {
        return err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
      }
      return `*4\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:${args[1] === "3" ? 3 : 2}\r\n`;
    }
    if (node.password !== "" && !c.authed && cmd !== "quit") return err("NOAUTH Authentication required.");
    if (cmd === "cluster" && args[1]?.toLowerCase() === "slots") return clusterSlots(node.slots);
    if (cmd === "ping") return args.length > 1 ? bulk(args[1]) : "+PONG\r\n";
    if (cmd === "asking" || cmd === "readonly" || cmd === "readwrite") return ok;
    return err(`ERR unknown command '${args[0]}', with args beginning with: ${args.slice(1).map((a) => `'${a}' `).join("")}`);
  };

  const onCommand = (c: ConnState, args: string[]) => {
    c.received.push(args);
    received.push(args);
    if (c.stalled) return;
    // AUTH and CLUSTER SLOTS reach the handler too, so a test can refuse or delay them.
    let reply = handler(args, c, node);
    if (reply === DEFAULT) reply = builtIn(args, c);
    if (reply === NO_REPLY) { c.stalled = true; return; }
    if (reply === CLOSE) { c.close(); return; }
    send(c, reply);
  };

  let nextId = 1;
  listener = Bun.listen<ConnState>({
    hostname: opts.host ?? "127.0.0.1",
    port,
    socket: {
      open(sock) {
        const c: ConnState = {
          id: nextId++, received: [], authed: false, stalled: false,
          sock, input: new InputBuffer(4096), frame: new Frame(), pending: [], held: [],
          write: (raw) => send(c, raw),
          close: () => {
            if (closed.has(c)) return;
            closed.add(c);
            sock.terminate();
          },
        };
        sock.data = c;
        conns.push(c);
      },
      data(sock, chunk) {
        const c = sock.data;
        if (closed.has(c)) return;
        bytesIn += chunk.length;
        const buf = c.input.feed(chunk);
        let at = 0;
        while (at < buf.length) {
          const n = readCommand(buf, at, buf.length, c.frame);
          if (n === NEED_MORE) break;
          if (n < 0) { c.close(); return; }
          at += n;
          const f = c.frame;
          if (f.argc === 0) continue;
          const args: string[] = [];
          for (let i = 0; i < f.argc; i++) args.push(decoder.decode(f.arg(i)));
          args[0] = args[0].toUpperCase();
          onCommand(c, args);
          if (closed.has(c)) return;
        }
        c.input.keep(buf, at, c.frame.needBytes);
      },
      drain(sock) {
        const c = sock.data;
        while (c.pending.length > 0 && !closed.has(c)) {
          const bytes = c.pending[0];
          const n = sock.write(bytes);
          if (n < bytes.length) { c.pending[0] = bytes.subarray(Math.max(n, 0)); return; }
          c.pending.shift();
        }
      },
      close(sock) { closed.add(sock.data); },
      error(sock) { sock.data.close(); },
    },
  });
  return node;
}

/** The CLUSTER SLOTS reply for `ranges`, as Redis 7 formats it (host, port, node id). */
export function clusterSlots(ranges: SlotRange[]): string {
  let out = `*${ranges.length}\r\n`;
  for (const [from, to, port] of ranges) {
    const id = `fake${port}`.padEnd(40, "0");
    out += `*3\r\n:${from}\r\n:${to}\r\n*3\r\n${bulk("127.0.0.1")}:${port}\r\n${bulk(id)}`;
  }
  return out;
}
