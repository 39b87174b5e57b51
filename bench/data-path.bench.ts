// The whole per-command data path in one process (mitata): client read → router → backend queue → reply → client write; no syscalls.
//
// Stub sockets stand in for the kernel, so what is timed is predixy's own work per command, for
// A/B comparisons of changes on the hot path (the benchmark that counts is `make bench`).

import { bench, do_not_optimize, group, run } from "mitata";
import type { Socket } from "bun";
import { BackendNode } from "../src/backend/backend-node.ts";
import type { BackendConn } from "../src/backend/backend-conn.ts";
import { ClientConn } from "../src/client/client-conn.ts";
import { Topology } from "../src/cluster/topology.ts";
import { COMMANDS } from "../src/commands/command-table.ts";
import { defaultConfig } from "../src/config/config.ts";
import { SLOT_COUNT, SlotTable } from "../src/cluster/slot-table.ts";
import { Stats } from "../src/metrics/stats.ts";
import { Router } from "../src/router/router.ts";
import { command } from "../test/helpers/fake-node.ts";

const enc = new TextEncoder();
/** A socket that takes everything (the kernel, with room to spare). */
const sink = {
  write: (d: Uint8Array, o = 0, n = d.length - o) => n, pause() {}, resume() {}, setNoDelay() {}, terminate() {}, end() {},
  remoteAddress: "127.0.0.1", remotePort: 1, localAddress: "127.0.0.1", localPort: 2,
} as unknown as Socket<never>;

// No real connects: the one backend connection is opened by hand with the stub socket.
(Bun as { connect: unknown }).connect = () => new Promise(() => {});
const stats = new Stats();
let router: Router;
const topology = new Topology({
  entryPoints: [], auth: null, tls: null, refreshIntervalMs: 1e9, connectTimeoutMs: 1e9,
  makeNode: (h, p) => new BackendNode(h, p, {
    poolSize: 1, bufferSize: 65536, connectTimeoutMs: 1e9, authRequests: [null], helloRequests: [], tls: null, maxIdle: 0, maxPinned: 16,
  } as ConstructorParameters<typeof BackendNode>[2], router),
  slotsMoved: () => {},
});
// Users (builds with ACLs need one for every client; imported dynamically so older builds run this too).
const aclModule = await import("../src/acl/from-config.ts").catch(() => null) as { buildAcl?: (...a: unknown[]) => unknown } | null;
const acl = aclModule?.buildAcl?.(defaultConfig([{ host: "127.0.0.1", port: 1 }]), COMMANDS, undefined, stats);
// Options as this build's Router takes them (older ones took `password`, newer ones `acl` …): only these matter here.
router = new Router(topology, {
  maxRedirects: 5, retryTimeoutMs: 1000, password: "", announceHost: "", announcePort: 0, acl, auth: null, connectTimeoutMs: 1e9,
  tls: null, clients: () => [], admin: null,
} as unknown as ConstructorParameters<typeof Router>[1], stats);
const node = topology.node("127.0.0.1", 1);
topology.table = new SlotTable([node], new Uint16Array(SLOT_COUNT), [[]]);
node.warm(1);
let conn: BackendConn | null = null;
node.forEachConn((c) => { conn = c; });
conn!.onOpen(sink as unknown as Socket<BackendConn>);

const limits = { batchSize: 256, maxInputBytes: 1 << 30, maxOutputBytes: 1 << 30, maxPubsubBytes: 0, bufferSize: 65536, password: "", idleTimeoutMs: 0, writeTimeoutMs: 0, acl };
// Dynamic, so that this file also runs on builds from before the memory budget (A/B comparisons).
const budgetModule: unknown = await import("../src/client/memory-budget.ts").catch(() => ({}));
const Budget = (budgetModule as { MemoryBudget?: new (s: Stats, c: Iterable<never>) => { configure(n: number): void } }).MemoryBudget;
const budget = Budget ? new Budget(stats, []) : undefined;
budget?.configure(1 << 30);
const Client = ClientConn as unknown as new (...args: unknown[]) => ClientConn;
const client = new Client(sink, router, limits, stats, budget);

function pipeline(depth: number): [Uint8Array, Uint8Array] {
  let cmds = "", replies = "";
  for (let i = 0; i < depth; i++) {
    cmds += command("GET", `key:${String(i * 7919).padStart(12, "0")}`);
    replies += `$64\r\n${"x".repeat(64)}\r\n`;
  }
  return [enc.encode(cmds), enc.encode(replies)];
}

/** One client read of `depth` GETs, sent to the node, answered, and written back. */
function roundTrip(cmds: Uint8Array, replies: Uint8Array): void {
  client.onData(cmds);
  conn!.flush();
  conn!.onData(replies);
  client.flush();
}

for (const depth of [1, 16, 100]) {
  const [cmds, replies] = pipeline(depth);
  group(`${depth} pipelined GET${depth > 1 ? "s" : ""}, client to node and back`, () => {
    bench("data path", () => do_not_optimize(roundTrip(cmds, replies)));
  });
}

await run();
