// Routing: a framed command → its node (by slot), a local answer, or an error; redirects and retries.

import { getLogger } from "@logtape/logtape";
import type { Acl } from "../acl/acl.ts";
import type { BackendTls } from "../tls/backend-tls.ts";
import { ConnEvent, type BackendConn, type BackendEvents } from "../backend/backend-conn.ts";
import type { BackendNode } from "../backend/backend-node.ts";
import { arityOk, COMMANDS, Merge, Route, type CommandSpec } from "../commands/command-table.ts";
import { slotOf } from "../cluster/key-slot.ts";
import type { Topology } from "../cluster/topology.ts";
import { Frame, readCommand } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { RespError, type RespValue } from "../resp/reply-value.ts";
import { encodeReply, Verbatim } from "../resp/reply-writer.ts";
import { clientCommand, type ListedClient } from "./client-commands.ts";
import { facadeReply } from "./cluster-facade.ts";
import { FanOutGather, InfoGather } from "./fan-out.ts";
import { keysSlot, MIXED, split } from "./multi-key.ts";
import { ErrorKind, metrics } from "../metrics/recorder.ts";
import type { AdminContext } from "./admin-commands.ts";
import { answerLocally, resetSession, type LocalContext, type LocalSession } from "./local-commands.ts";
import { acquire, ASKING_REQUEST, Kind, release, setReply, type ReplySink, type Request } from "./request.ts";
import { ReplicaReads } from "./replica-reads.ts";
import { Retry } from "./retry.ts";
import { startScan } from "./scan.ts";
import { ScriptMemory } from "./scripts.ts";
import type { Session, SessionHost } from "../session/session.ts";
import { Sessions } from "../session/sessions.ts";
import { PubSub, type ClientSubs } from "../session/pubsub.ts";
import { argStrings, PublishGather, PubsubGather } from "../session/pubsub-counts.ts";
import type { Stats } from "../metrics/stats.ts";
import { Upload } from "../stream/upload.ts";

const log = getLogger(["predixy", "router"]);

/** A client as the router needs it: where replies go, in order, plus session state. */
export interface ClientSession extends ReplySink, LocalSession, ListedClient {
  /** Its pub/sub subscriptions (session/pubsub.ts); null: not subscribed. */
  subs: ClientSubs | null;
  /** Queues a message frame behind the client's earlier replies (RESP3 clients get the push form). */
  deliver(resp2: Uint8Array, start: number, end: number, resp3: Uint8Array | null): void;
  /** Appends `req` to the client's reply-order FIFO. */
  track(req: Request): void;
  /** The client's transaction, blocking call, WAIT or subscriptions; null: the shared path. */
  session: Session | null;
  /**
   * The command being dispatched is not taken now: it and what follows are read again once
   * every command before it is answered (a session's start, or a command after a blocking call).
   */
  deferUntilIdle(): void;
}

export interface RouterOptions {
  /** The live clients of this process (CLIENT LIST, CLIENT KILL). */
  clients: () => Iterable<ClientSession>;
  /** The cluster's credentials, for predixy's subscriber connections. */
  auth: { username: string; password: string } | null;
  connectTimeoutMs: number;
  tls: BackendTls | null;
  maxRedirects: number;
  retryTimeoutMs: number;
  /** Users: authentication, and the permission check of restricted ones. */
  acl: Acl;
  /** What the cluster façade advertises; "" / 0: the address and port the client connected to. */
  announceHost: string;
  announcePort: number;
  admin: AdminContext;
}

const MINUS = 45;
const enc = (s: string) => new TextEncoder().encode(s);
const MOVED = enc("MOVED "), ASK = enc("ASK "), TRYAGAIN = enc("TRYAGAIN"), CLUSTERDOWN = enc("CLUSTERDOWN");
const LOADING = enc("LOADING"), MASTERDOWN = enc("MASTERDOWN"), READONLY = enc("READONLY");
const NOSCRIPT = enc("NOSCRIPT"), NO_FUNCTION = enc("ERR Function not found");
const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder();

export class Router implements BackendEvents, SessionHost {
  private anyCursor = 0;
  private lostKey = "";
  private lostBytes: Uint8Array = R.ERR_NO_NODE;
  private stopping = false;
  /** Script bodies and function libraries, for nodes that answer NOSCRIPT. */
  readonly scripts = new ScriptMemory();
  /** For re-reading a command that is not the client's current frame (NOSCRIPT healing). */
  private readonly scratch = new Frame();
  private readonly sessions = new Sessions(this);
  private readonly pubsub: PubSub;
  /** What predixy's subscriber connections are opened with; updated in place by a reload. */
  private readonly pubsubOpts: { auth: RouterOptions["auth"]; connectTimeoutMs: number; tls: BackendTls | null };
  private readonly local: LocalContext;
  /** Commands waiting to be sent again: parked, backing off, or held (router/retry.ts). */
  readonly retry: Retry;
  /** Where read-only commands go (`read_from`). */
  readonly reads = new ReplicaReads();

  constructor(
    readonly topology: Topology,
    private readonly opts: RouterOptions,
    readonly stats: Stats,
  ) {
    this.local = { acl: opts.acl, admin: opts.admin };
    this.pubsubOpts = { auth: opts.auth, connectTimeoutMs: opts.connectTimeoutMs, tls: opts.tls };
    this.pubsub = new PubSub(this, this.pubsubOpts);
    this.retry = new Retry({
      send: (req) => this.send(req),
      finish: (req, buf, start, end) => this.finish(req, buf, start, end),
      drop: (req) => this.drop(req),
    }, topology, stats, opts);
  }

  /** How long commands (and sessions' blocking calls) may wait for a node; a reload changes it. */
  get retryTimeoutMs(): number {
    return this.opts.retryTimeoutMs;
  }

  /** Applies reloaded options (SIGHUP); commands already waiting keep their deadlines. */
  configure(opts: Partial<RouterOptions>): void {
    Object.assign(this.opts, opts);
    if (opts.acl !== undefined) this.local.acl = opts.acl;
    if (opts.auth !== undefined) this.pubsubOpts.auth = opts.auth;
    if (opts.connectTimeoutMs !== undefined) this.pubsubOpts.connectTimeoutMs = opts.connectTimeoutMs;
  }

  /** Handles one complete command from `c`. Its reply will reach `c` in request order. */
  dispatch(c: ClientSession, f: Frame): void {
    this.stats.commands++;
    let spec = COMMANDS.lookup(f.src, f.base + f.argStart[0], f.base + f.argEnd[0]);
    if (spec === null) return this.refuse(c, unknownCommand(f), null, f);
    if (spec.route === Route.SUBCOMMAND) {
      const sub = f.argc > 1 ? spec.subcommands?.get(argText(f, 1).toLowerCase()) : undefined;
      if (sub === undefined) {
        return this.refuse(c, f.argc > 1
          ? R.errorReply(`ERR unknown subcommand '${argText(f, 1)}'. Try ${spec.name.toUpperCase()} HELP.`)
          : wrongArity(spec), spec, f);
      }
      spec = sub;
    }
    // Arity first, as Redis checks it.
    if (!arityOk(spec.arity, f.argc)) return this.refuse(c, wrongArity(spec), spec, f);
    if (!c.authed && spec.local !== "auth" && spec.local !== "hello" && spec.local !== "quit") {
      return this.answer(c, R.ERR_NOAUTH, spec, ErrorKind.REFUSED);
    }
    // Only users with restrictions are checked (every key, before any split): for the others this is the whole cost.
    if (c.acl !== null) {
      const denied = this.opts.acl.deny(c, spec, f);
      if (denied !== null) return this.refuse(c, denied, spec, f);
    }
    // Subscribed mode's rules hold whatever session the client has (WATCH, then SUBSCRIBE); while
    // a session's reply is pending (RESET …), the command waits for it in the session first.
    const session = c.session;
    // A subscription the node has not confirmed yet comes first (a PUBLISH must find it there).
    if (c.subs !== null && c.subs.confirming > 0) return c.deferUntilIdle();
    if (c.subs !== null && (session === null || c.oldestPending() === null)) {
      const refused = this.pubsub.restricted(c, f, spec);
      if (refused !== null) return refused[0] === MINUS ? this.refuse(c, refused, spec, f) : this.answer(c, refused, spec);
    }
    if (session !== null) return session.dispatch(f, spec);
    this.route(c, f, spec);
  }

  /**
   * An error reply for a command Redis would refuse before running it; a transaction notes it.
   * A refused EXEC is answered as Redis answers it, EXECABORT naming the reason, and ends the
   * client's transaction (its WATCH too).
   */
  private refuse(c: ClientSession, reply: Uint8Array, spec: CommandSpec | null = null, f: Frame | null = null): void {
    if (spec !== null && spec.name === "exec") reply = execAbort(reply);
    if (c.session !== null && f !== null && c.session.refused(f, spec, reply)) return;
    this.answer(c, reply, spec, ErrorKind.REFUSED);
  }

  resetClient(c: ClientSession): void {
    this.pubsub.clientGone(c);
    resetSession(c, this.opts.acl);
  }

  /** The client's connection is gone: its subscriptions end. */
  clientClosed(c: ClientSession): void {
    if (c.subs !== null) this.pubsub.clientGone(c);
  }

  /** The slot table changed: shard channels follow their slots. */
  tableChanged(): void {
    this.pubsub.tableChanged();
  }

  /** Routes a command of a client without a session (or that its session passes on). */
  route(c: ClientSession, f: Frame, spec: CommandSpec): void {
    let slot = -1;
    switch (spec.route) {
      case Route.KEY:
        slot = keySlot(f, spec.keyAt);
        break;
      case Route.MULTI_KEY:
        if (spec.keyStep === 2 && (f.argc - 1) % 2 !== 0) return this.answer(c, wrongArity(spec), spec, ErrorKind.REFUSED);
        slot = keysSlot(f, spec.keyStep);
        if (slot === MIXED) {
          const req = this.track(c, f, spec, -1);
          split(req, f, spec);
          return this.go(req);
        }
        break;
      case Route.NUMKEYS: {
        // Zero or malformed key counts go to any node, which answers them as Redis would.
        const n = argInt(f, spec.keyAt);
        if (n > 0 && spec.keyAt + 1 < f.argc) slot = keySlot(f, spec.keyAt + 1);
        if (spec.name === "eval" || spec.name === "eval_ro") this.scripts.rememberScript(f.arg(1));
        break;
      }
      case Route.STREAMS: {
        const streams = findStreams(f);
        if (streams < 0) return this.sessions.start(c, f, spec);
        if (streams > 0 && streams + 1 < f.argc) slot = keySlot(f, streams + 1);
        break;
      }
      case Route.SLOT_ARG:
        slot = argInt(f, 2);
        if (slot < 0 || slot >= 16384) {
          return this.answer(c, R.errorReply(spec.name === "cluster|countkeysinslot" ? "ERR Invalid slot" : "ERR Invalid slot or number of keys"), spec, ErrorKind.REFUSED);
        }
        break;
      case Route.ANY:
        break;
      case Route.LOCAL: {
        if (spec.local === "reset" && c.subs !== null) {
          if (c.oldestPending() !== null || this.pubsub.awaitOwnMessages(c)) return c.deferUntilIdle();
          this.pubsub.clientGone(c);
        }
        if (spec.local === "client|list" || spec.local === "client|kill") {
          return this.answer(c, clientCommand(spec.local, f, c, this.opts.clients()), spec);
        }
        const reply = answerLocally(spec.local, f, c, this.local);
        return reply instanceof Uint8Array ? this.answer(c, reply, spec) : this.answerLater(c, reply, spec);
      }
      case Route.FACADE:
        return this.answer(c, facadeReply(spec.local, f, {
          host: this.opts.announceHost || c.localAddress, port: this.opts.announcePort || c.localPort,
        }, this.topology.table, c.proto));
      case Route.FAN_OUT:
        return this.fanOut(c, f, spec);
      case Route.SESSION:
        return this.sessions.start(c, f, spec);
      case Route.PUBSUB:
        return this.pubsubCommand(c, f, spec);
      default:
        return this.answer(c, unsupported(spec, spec.reason), spec, ErrorKind.REFUSED);
    }
    this.go(this.track(c, f, spec, slot));
  }

  /** The slot of `f`'s first key as `spec` places it, -1 if it has none (sessions route by it). */
  slotOf(f: Frame, spec: CommandSpec): number {
    switch (spec.route) {
      case Route.KEY:
      case Route.MULTI_KEY:
        return keySlot(f, spec.route === Route.KEY ? spec.keyAt : 1);
      case Route.SESSION:
        return spec.keyAt > 0 && spec.keyAt < f.argc ? keySlot(f, spec.keyAt) : -1;
      case Route.NUMKEYS: {
        const n = argInt(f, spec.keyAt);
        return n > 0 && spec.keyAt + 1 < f.argc ? keySlot(f, spec.keyAt + 1) : -1;
      }
      case Route.STREAMS: {
        const streams = streamsIndex(f);
        return streams > 0 && streams + 1 < f.argc ? keySlot(f, streams + 1) : -1;
      }
      case Route.SLOT_ARG: {
        const slot = argInt(f, 2);
        return slot < 16384 ? slot : -1;
      }
      default:
        return -1;
    }
  }

  /**
   * A command whose argument number `f.argc` is large and still arriving (`f` holds the ones
   * before it): an Upload that streams it to its node from here on, or null to assemble it
   * first, as any command — when routing it needs more than its first arguments (only
   * single-key commands whose key came already stream), or when the client or the node is in a
   * state the plain path handles (a session, retries, a user with rules, no open connection).
   * While another client's upload holds the connection, or the node is far behind, the client is
   * paused instead (null), and tries again then (BackendConn.mayUpload).
   */
  startUpload(c: ClientSession, f: Frame): Upload | null {
    if (f.argc === 0 || !c.authed || c.acl !== null || c.session !== null || c.subs !== null || c.retrying > 0 || c.held > 0) return null;
    const spec = COMMANDS.lookup(f.src, f.base + f.argStart[0], f.base + f.argEnd[0]);
    if (spec === null || spec.route !== Route.KEY || spec.keyAt >= f.argc || !arityOk(spec.arity, f.expected)) return null;
    const slot = keySlot(f, spec.keyAt);
    const node = this.topology.table.nodeFor(slot);
    if (node === null || !node.reachable) return null;
    const req = acquire();
    req.sink = c;
    req.spec = spec;
    req.slot = slot;
    req.affinity = c.id;
    req.cred = c.cred;
    req.proto = c.proto;
    const conn = node.uploadConn(req);
    if (!conn.mayUpload(c)) {
      release(req);
      return null;
    }
    this.stats.commands++;
    this.stats.streamedUploads++;
    c.track(req);
    req.upload = new Upload(req, conn);
    return req.upload;
  }

  /**
   * A streamed command about to be sent again (a redirect, a retry): its kept bytes become its
   * source. False when they were not kept (or not all arrived): it must be answered instead.
   */
  private unstream(req: Request): boolean {
    const bytes = req.upload!.bytes();
    if (bytes === null) return false;
    req.upload = null;
    req.src = bytes;
    req.start = 0;
    req.end = bytes.length;
    return true;
  }

  private streamLost(req: Request): Uint8Array {
    return R.errorReply(`TRYAGAIN the command's ${req.upload!.size} bytes were streamed to a node that could not run it, ` +
      "and were not kept to send elsewhere (performance.stream_retain_bytes): send the command again");
  }

  /** A request for the command in `f`, queued in `c`'s reply order. */
  track(c: ClientSession, f: Frame, spec: CommandSpec, slot: number): Request {
    const req = acquire();
    req.sink = c;
    req.spec = spec;
    req.src = f.src;
    req.start = f.base;
    req.end = f.base + f.size;
    req.slot = slot;
    req.affinity = c.id;
    req.cred = c.cred;
    req.proto = c.proto;
    c.track(req);
    return req;
  }

  /** Sends a new request, or holds it while its client has an older command for its slot waiting to be resent. */
  go(req: Request): void {
    if (req.gather !== null) this.retry.sendParts(req);
    else if (this.retry.mustWait(req)) this.retry.hold(req);
    else this.send(req);
  }

  /** A cluster-wide command: every master's answer merged, or SCAN on the master its cursor names. */
  private fanOut(c: ClientSession, f: Frame, spec: CommandSpec): void {
    const table = this.topology.table;
    if (spec.merge === Merge.INFO) {
      const sections = [];
      for (let i = 1; i < f.argc; i++) sections.push(argText(f, i).toLowerCase());
      const keyspace = sections.length === 0 || sections.some((s) => KEYSPACE_SECTIONS.has(s));
      const req = this.track(c, f, spec, -1);
      // The proxy's own sections cover every worker process: with workers they are gathered first.
      const own = this.opts.admin.infoText(sections);
      if (typeof own === "string") return this.info(req, own, keyspace);
      void own.then((text) => { metrics.tick(); this.info(req, text, keyspace); });
      return;
    }
    if (table.masters.length === 0) return this.answer(c, R.ERR_NO_NODE);
    const req = this.track(c, f, spec, -1);
    switch (spec.merge) {
      case Merge.SCAN: {
        const started = startScan(req, f, table);
        return started instanceof Uint8Array ? this.finish(req, started) : this.go(req);
      }
      case Merge.KILL:
        return this.kill(req, [argText(f, 0), argText(f, 1)]);
      default:
        this.noteScripts(spec, f);
        new FanOutGather(req, spec, table.masters);
        return this.go(req);
    }
  }

  /** INFO's reply: the proxy's sections, then (when asked for) the masters' keyspace, summed. */
  private info(req: Request, own: string, keyspace: boolean): void {
    if (req.sink === null || req.sink.closed) return release(req);
    const masters = this.topology.table.masters;
    if (!keyspace || masters.length === 0) return this.finish(req, encodeReply(new Verbatim(own), req.proto === 3 ? 3 : 2));
    this.go(new InfoGather(req, own, masters).parent);
  }

  /** Pub/sub: subscriptions are predixy's; PUBLISH, SPUBLISH and PUBSUB … go to the nodes, counts mended. */
  private pubsubCommand(c: ClientSession, f: Frame, spec: CommandSpec): void {
    switch (spec.name) {
      case "publish":
      case "spublish": {
        if (c.subs !== null) c.subs.published = true;
        const shard = spec.name === "spublish";
        const channel = argText(f, 1);
        const req = this.track(c, f, spec, shard ? keySlot(f, 1) : -1);
        // PUBLISH where predixy's subscriber connection is, so that its count can be mended.
        new PublishGather(req, this.pubsub, channel, shard, shard ? null : this.pubsub.classicNode ?? this.anyMaster());
        return this.go(req);
      }
      case "pubsub|channels":
      case "pubsub|numsub":
      case "pubsub|numpat":
      case "pubsub|shardchannels":
      case "pubsub|shardnumsub": {
        const masters = this.topology.table.masters;
        if (masters.length === 0) return this.answer(c, R.ERR_NO_NODE, spec);
        const req = this.track(c, f, spec, -1);
        new PubsubGather(req, this.pubsub, spec.name.slice(7), argStrings(f, 2), c.proto, masters);
        return this.go(req);
      }
      default:
        // (Un)subscribing takes effect at once: it waits for the client's earlier commands, as
        // Redis runs them first (a PUBLISH to its own channel, then UNSUBSCRIBE, delivers).
        if (c.oldestPending() !== null || this.pubsub.awaitOwnMessages(c)) return c.deferUntilIdle();
        return this.pubsub.command(c, f, spec);
    }
  }

  /** Keeps what the nodes are told about scripts and libraries, for those that will not have them. */
  private noteScripts(spec: CommandSpec, f: Frame): void {
    switch (spec.name) {
      case "script|load": return this.scripts.rememberScript(f.arg(2));
      case "script|flush": return this.scripts.forgetScripts();
      case "function|load": return this.scripts.rememberLibrary(f.arg(f.argc - 1));
      case "function|delete": return this.scripts.forgetLibrary(argText(f, 2));
      case "function|flush": return this.scripts.forgetLibraries();
      case "function|restore":
        // The dump's libraries are unknown here; with FLUSH they replace all the ones known.
        if (f.argc > 3 && argText(f, 3).toLowerCase() === "flush") this.scripts.forgetLibraries();
    }
  }

  /**
   * SCRIPT KILL / FUNCTION KILL: on fresh connections, since a shared one carries the running
   * script and nothing behind it is read until the script ends. OK if any master killed one.
   */
  private kill(req: Request, command: string[]): void {
    const masters = [...this.topology.table.masters];
    void Promise.all(masters.map((m) => this.topology.queryNode(m, [command]).then(([r]) => r, (e: Error) => new RespError(`ERR ${m.addr}: ${e.message}`))))
      .then((replies) => { metrics.tick(); this.finish(req, killReply(replies)); });
  }
  /**
   * The table moved these requests' slots away from the node they went to. Those `inFlight`
   * hold their client's later commands for those slots until they have their final reply
   * (after the MOVED, or from the old node itself), so nothing of the client's overtakes them
   * on the new owner. Those `unsent` are sent again now, in order, by the new table.
   */
  slotsMoved(inFlight: Request[], unsent: Request[]): void {
    for (const req of inFlight) this.retry.enter(req);
    for (const req of unsent) this.send(req);
  }

  /** The table, or the cluster's verdict on a node, changed: parked commands may have a node now. */
  wakeParked(): void {
    this.retry.wake();
  }

  /**
   * Sends `req` to its target, else the node serving its slot (any master when keyless); a
   * gathered command's parts. Parks it while that node is not available.
   */
  private send(req: Request): void {
    if (req.gather !== null) return this.retry.sendParts(req);
    if (req.upload !== null && !this.unstream(req)) return this.finish(req, this.streamLost(req));
    let node = req.target;
    if (node === null) {
      const table = this.topology.table;
      if (req.slot < 0) node = this.anyMaster();
      else if (this.reads.enabled && req.spec!.readonly) node = this.reads.pick(table, req.slot, req.affinity);
      else node = table.nodeFor(req.slot);
    }
    if (node === null || !node.available) {
      const other = node === null ? null : this.standIn(req, node);
      if (other === null) {
        // A failover leaves a slot unserved, or its master silent, for a while: wait for the new owner.
        if (!this.retry.park(req, node)) this.finish(req, Retry.parkedError(node));
        return;
      }
      node = req.target = other;
    }
    node.send(req);
  }

  /**
   * An available node to take a part its gather sent to `node`, which is not available; null:
   * wait for `node`. A dead master's replacement has another address, so waiting for it could
   * last the whole retry budget: a part that any master can run (a PUBLISH) goes to another
   * master; one for a chosen master (a cluster-wide command's) follows that master's slots to
   * whoever serves them now (its replica, after a failover). Commands routed by their slot wait.
   */
  private standIn(req: Request, node: BackendNode): BackendNode | null {
    if (req.parent === null || req.target === null) return null;
    const slot = req.slot >= 0 ? req.slot : node.firstSlot;
    const other = req.parent.gather!.anyMasterWillDo ? this.anyMaster() : slot >= 0 ? this.topology.table.nodeFor(slot) : null;
    return other !== null && other !== node && other.available ? other : null;
  }

  anyMaster(): BackendNode | null {
    const masters = this.topology.table.masters;
    for (let i = 0; i < masters.length; i++) {
      const n = masters[this.anyCursor++ % masters.length];
      if (n.available) return n;
    }
    return masters.length ? masters[0] : null;
  }

  /** A request's reply, `buf[start, end)`, is ready: give it to its client, which keeps request order. */
  finish(req: Request, buf: Uint8Array, start = 0, end = buf.length): void {
    if (req.parent !== null) return this.partDone(req, buf, start, end);
    const sink = req.sink;
    if (sink === null || sink.closed) {
      release(req);
      return;
    }
    if (req.inRetry) this.retry.leave(req);
    setReply(req, buf, start, end);
    sink.complete(req);
  }

  /** A part's final reply; the last one makes its parent's reply (or releases all if the client went). */
  private partDone(part: Request, buf: Uint8Array, start: number, end: number): void {
    const parent = part.parent!, sink = parent.sink!, g = parent.gather!;
    if (part.inRetry && !sink.closed) this.retry.leave(part);
    setReply(part, buf, start, end);
    part.done = true;
    if (--g.waiting > 0) return;
    if (sink.closed) return g.releaseAll();
    const reply = g.merge();
    g.releaseParts();
    this.finish(parent, reply);
  }

  /** Lets go of a request whose client has gone. */
  private drop(req: Request): void {
    if (req.parent !== null) this.partDone(req, EMPTY, 0, 0);
    else release(req);
  }

  /**
   * A reply the proxy makes itself, queued behind the client's earlier commands. `kind`: what
   * an error reply counts as (REFUSED: rejected without running, as Redis' rejected_calls).
   */
  answer(c: ClientSession, reply: Uint8Array, spec: CommandSpec | null = null, kind = ErrorKind.NONE): void {
    const req = acquire();
    req.sink = c;
    req.spec = spec;
    req.errKind = kind;
    c.track(req);
    setReply(req, reply, 0, reply.length);
    c.complete(req);
  }

  /** A local reply that needs the other worker processes (INFO, SLOWLOG …): its place is kept meanwhile. */
  private answerLater(c: ClientSession, reply: Promise<Uint8Array>, spec: CommandSpec): void {
    const req = acquire();
    req.sink = c;
    req.spec = spec;
    c.track(req);
    reply.catch((err: Error) => R.errorReply(`ERR ${err.message}`)).then((bytes) => {
      metrics.tick();
      this.finish(req, bytes);
    });
  }

  onReply(req: Request, buf: Uint8Array, start: number, end: number, conn: BackendConn): void {
    if (req.session !== null) return req.session.onReply(req, buf, start, end, conn);
    if (req.kind !== Kind.CLIENT) {
      if (req.kind === Kind.AUTH) {
        if (buf[start] === MINUS) conn.close(`refused AUTH: ${decoder.decode(buf.subarray(start + 1, end - 2))}`, true);
        else if (conn.node.noteConnect(true)) this.retry.wake();
      } else if (req.kind === Kind.INFO) {
        this.reads.onInfo(conn.node, buf, start, end);
      }
      return;
    }
    if (buf[start] === MINUS) {
      if (this.redirect(req, buf, start, end, conn)) return;
    } else if (conn.clusterDownSince !== 0) {
      conn.clusterDownSince = 0;
    }
    this.finish(req, buf, start, end);
  }

  /** Follows MOVED/ASK and retries transient cluster errors. False: pass the error on. */
  private redirect(req: Request, buf: Uint8Array, start: number, end: number, conn: BackendConn): boolean {
    const s = start + 1, sink = req.sink;
    if (sink === null || sink.closed) return false;
    const moved = startsWith(buf, s, end, MOVED);
    if (moved || startsWith(buf, s, end, ASK)) {
      this.stats.redirects++;
      metrics.redirected(req.spec === null ? 0 : req.spec.id);
      if (++req.redirects > this.opts.maxRedirects) return false;
      // An older command of the client, sent before this one, is being retried (a multi-key
      // part met TRYAGAIN) or waits: going now would overtake it. Held in the client's order
      // (then out of retry itself, so that the last retry to end releases them all in order).
      if (this.retry.behindOlder(req)) {
        this.retry.hold(req);
        if (req.inRetry) this.retry.leave(req);
        return true;
      }
      const target = parseRedirect(buf, s + (moved ? MOVED.length : ASK.length), end - 2, conn.opts.host);
      if (target === null) return false;
      if (req.upload !== null && !this.unstream(req)) {
        if (moved) this.topology.requestRefresh();
        this.finish(req, this.streamLost(req));
        return true;
      }
      const node = this.topology.node(target.host, target.port);
      if (!node.available) {
        if (!this.retry.park(req, node)) this.finish(req, Retry.parkedError(node));
        return true;
      }
      if (moved) {
        this.topology.requestRefresh();
        // A second MOVED for one command: the nodes disagree for a moment (the last step of a
        // slot's move, target and source told in turn); back off and ask the table again.
        if (req.redirects > 1 && this.retry.later(req)) {
          setReply(req, buf, start, end);
          return true;
        }
        node.send(req);
      } else {
        node.sendAfter(ASKING, req);
      }
      return true;
    }
    // A node without the script or library (a promoted replica, a new master): give it, once.
    if (!req.preloaded && (startsWith(buf, s, end, NOSCRIPT) || startsWith(buf, s, end, NO_FUNCTION))) {
      const preload = this.preloadFor(req, buf[s] === NOSCRIPT[0]);
      if (preload !== null) {
        req.preloaded = true;
        this.topology.node(conn.opts.host, conn.opts.port).sendAfter(preload, req);
        return true;
      }
    }
    const down = startsWith(buf, s, end, CLUSTERDOWN) || startsWith(buf, s, end, LOADING) || startsWith(buf, s, end, MASTERDOWN);
    if (down || startsWith(buf, s, end, TRYAGAIN) || startsWith(buf, s, end, READONLY)) {
      // READONLY: we wrote to a node demoted by a failover; the next table knows the new master.
      this.topology.requestRefresh();
      // A node that has answered nothing but "down" for longer than the budget is down for good
      // as far as waiting goes: its errors are passed on at once until it answers otherwise.
      if (down) {
        const now = performance.now();
        if (conn.clusterDownSince === 0) conn.clusterDownSince = now;
        else if (now - conn.clusterDownSince > this.opts.retryTimeoutMs) return false;
      }
      if (this.retry.later(req)) {
        setReply(req, buf, start, end);
        return true;
      }
    }
    return false;
  }

  /** SCRIPT LOAD of an EVALSHA's script, or FUNCTION LOADs before an FCALL; null if unknown. */
  private preloadFor(req: Request, noscript: boolean): Request[] | null {
    const name = req.spec!.name;
    if (!noscript) return name === "fcall" || name === "fcall_ro" ? this.scripts.preloadLibraries() : null;
    if (name !== "evalsha" && name !== "evalsha_ro") return null;
    const f = this.scratch;
    if (readCommand(req.src, req.start, req.end, f) !== req.end - req.start || f.argc < 2) return null;
    return this.scripts.preloadScript(argText(f, 1));
  }

  onLost(req: Request, written: boolean, reason: string, writeFollows = false): void {
    if (req.session !== null) return req.session.onLost(req, written, reason);
    if (req.kind !== Kind.CLIENT) return;
    // A command that never left, or a read, can safely run elsewhere; a write that may have run
    // cannot, nor a read its client's later write may have followed (it could see that write).
    if ((!written || (req.spec?.readonly && !writeFollows)) && this.retry.later(req)) return;
    this.finish(req, this.lostReply(!written ? Lost.UNSENT : writeFollows ? Lost.READ_BEFORE_WRITE : Lost.WRITTEN, reason));
  }

  /** Error replies for one connection loss are shared by all its requests. */
  private lostReply(how: Lost, reason: string): Uint8Array {
    const key = `${how}${reason}`;
    if (key !== this.lostKey) {
      this.lostKey = key;
      this.lostBytes = R.errorReply(how === Lost.WRITTEN
        ? `ERR connection to the cluster node was lost (${reason}); the command may or may not have run`
        : how === Lost.READ_BEFORE_WRITE
          ? `ERR connection to the cluster node was lost (${reason}); the read was not repeated, as a later write of this client to the same slot may have run`
          : `CLUSTERDOWN ${reason}`);
    }
    return this.lostBytes;
  }

  /** From now on connections close on purpose: no warnings, no refreshes. */
  stop(): void {
    this.stopping = true;
    this.pubsub.stop();
  }

  onConnectionState(conn: BackendConn, state: ConnEvent, reason: string): void {
    if (this.stopping) return;
    const node = conn.node;
    // Only failures to connect back off new connects: a dropped idle connection says nothing of the node.
    // With AUTH, a connection is good only once AUTH is accepted (onReply), else a node refusing
    // it would be retried every 100 ms for good.
    if (state === ConnEvent.FAILED) node.noteConnect(false);
    else if (state === ConnEvent.UP && conn.opts.authRequest === null && node.noteConnect(true)) this.retry.wake();
    if (state === ConnEvent.UP || state === ConnEvent.CLOSED) {
      log.debug("{event} {addr}: {reason}", { event: state === ConnEvent.UP ? "connected to" : "closed", addr: node.addr, reason });
      return;
    }
    if (state === ConnEvent.LOST) log.warn("connection to {addr} lost: {reason}", { addr: node.addr, reason });
    else log.warn("connection to {addr} failed: {reason}", { addr: node.addr, reason });
    this.topology.requestRefresh();
  }

  /** The health check found `node` silent: new commands for it wait instead of piling onto it. */
  nodeStalled(node: BackendNode): void {
    log.warn("node {addr} has left a command unanswered for health_check_timeout_ms: commands for it wait (up to retry_timeout_ms) until it answers or its slots move", { addr: node.addr });
    this.topology.requestRefresh();
    // A replica carries only reads: they can be answered elsewhere now rather than at command_timeout_ms.
    if (node.readonly) node.closeBusy("not answering; its reads go to another node");
  }

  onNodeAnswered(node: BackendNode): void {
    if (!node.noteStalled(false)) return;
    log.info("node {addr} answers again", { addr: node.addr });
    this.retry.wake();
  }
}

/** What became of a command whose connection was lost, for its error reply. */
const enum Lost { UNSENT, WRITTEN, READ_BEFORE_WRITE }

const KEYSPACE_SECTIONS = new Set(["keyspace", "default", "all", "everything"]);
const ASKING = [ASKING_REQUEST];

/** OK if some master killed a script; NOTBUSY if none was running anywhere; else the first other error. */
function killReply(replies: RespValue[]): Uint8Array {
  if (replies.some((r) => r === "OK")) return R.OK;
  const errors = replies.filter((r): r is RespError => r instanceof RespError);
  const other = errors.find((e) => !e.message.startsWith("NOTBUSY"));
  return R.errorReply((other ?? errors[0])?.message ?? "ERR unexpected reply");
}

function keySlot(f: Frame, i: number): number {
  return slotOf(f.src, f.base + f.argStart[i], f.base + f.argEnd[i]);
}

function argText(f: Frame, i: number): string {
  return decoder.decode(f.arg(i));
}

/** Parses a small non-negative decimal argument; -1 if it is not one. */
function argInt(f: Frame, i: number): number {
  if (i >= f.argc) return -1;
  let n = 0;
  const s = f.base + f.argStart[i], e = f.base + f.argEnd[i];
  if (s === e || e - s > 9) return -1;
  for (let p = s; p < e; p++) {
    const d = f.src[p] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Index of the STREAMS token, 0 when absent, -1 when a BLOCK option comes first. */
function findStreams(f: Frame): number {
  const i = streamsIndex(f);
  return blockSeen ? -1 : i;
}

let blockSeen = false;

/** Index of XREAD/XREADGROUP's STREAMS token, 0 when absent; `blockSeen` says if BLOCK came first. */
function streamsIndex(f: Frame): number {
  // Options are walked word by word, so a group, consumer or count named "block" is not BLOCK.
  blockSeen = false;
  let i = 1;
  if (argText(f, 0).toLowerCase() === "xreadgroup") {
    if (f.argc < 4 || argText(f, 1).toLowerCase() !== "group") return 0;
    i = 4;
  }
  while (i < f.argc) {
    const word = argText(f, i).toLowerCase();
    if (word === "streams") return i;
    if (word === "block") blockSeen = true;
    i += word === "count" || word === "block" ? 2 : 1;
  }
  return 0;
}

function startsWith(buf: Uint8Array, at: number, end: number, prefix: Uint8Array): boolean {
  if (end - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}

/** "<slot> <host>:<port>" → target; an empty host means the node that answered. */
export function parseRedirect(buf: Uint8Array, at: number, end: number, fallbackHost: string): { host: string; port: number } | null {
  const text = decoder.decode(buf.subarray(at, end));
  const m = /^(\d+) (.*):(\d+)$/.exec(text);
  if (m === null) return null;
  const slot = Number(m[1]), port = Number(m[3]);
  if (slot >= 16384 || port < 1 || port > 65535) return null;
  let host = m[2];
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host: host === "" || host === "?" ? fallbackHost : host, port };
}

/**
 * Redis' reply byte for byte: the name and the arguments as raw bytes (C strings: cut at a NUL),
 * arguments while the list is under 128 bytes, each cut to what is left, CR and LF as spaces.
 */
function unknownCommand(f: Frame): Uint8Array {
  const parts: number[] = [...UNKNOWN_HEAD];
  const cString = (i: number, max: number) => {
    const a = f.arg(i);
    for (let j = 0; j < a.length && j < max && a[j] !== 0; j++) parts.push(a[j]);
  };
  cString(0, 128);
  parts.push(...UNKNOWN_MID);
  const listStart = parts.length;
  for (let i = 1; i < f.argc && parts.length - listStart < 128; i++) {
    parts.push(QUOTE);
    cString(i, 128 - (parts.length - 1 - listStart));
    parts.push(QUOTE, SPACE);
  }
  for (let j = 1; j < parts.length; j++) if (parts[j] === 13 || parts[j] === 10) parts[j] = SPACE;
  parts.push(13, 10);
  return Uint8Array.from(parts);
}

const UNKNOWN_HEAD = enc("-ERR unknown command '");
const UNKNOWN_MID = enc("', with args beginning with: ");
const QUOTE = 39, SPACE = 32;

/** Redis' reply to a refused EXEC: `-EXECABORT Transaction discarded because of: <why>` (its own errors without "ERR "). */
function execAbort(reply: Uint8Array): Uint8Array {
  const why = decoder.decode(reply.subarray(1, reply.length - 2));
  return R.errorReply(`EXECABORT Transaction discarded because of: ${why.startsWith("ERR ") ? why.slice(4) : why}`);
}

function wrongArity(spec: CommandSpec): Uint8Array {
  return R.errorReply(`ERR wrong number of arguments for '${spec.name}' command`);
}

function unsupported(spec: CommandSpec, why: string): Uint8Array {
  if (spec.route === Route.DENIED) return R.errorReply(`NOPERM command '${spec.name}' is denied by the proxy's command policy`);
  return R.errorReply(`ERR command '${spec.name.replace("|", " ").toUpperCase()}' is not supported by proxy${why ? ` (${why})` : ""}`);
}
