// Entry points given as host names are resolved again at each refresh: a node replaced at a new address is found.

import { afterEach, expect, test } from "bun:test";
import { BackendNode } from "../../src/backend/backend-node.ts";
import type { BackendEvents } from "../../src/backend/backend-conn.ts";
import { Topology } from "../../src/cluster/topology.ts";
import { bulk, DEFAULT, startFakeNode, type FakeNode } from "../helpers/fake-node.ts";

const PORT = 8609;
const nodes: FakeNode[] = [];
let topology: Topology | null = null;
afterEach(() => {
  topology?.stop();
  for (const t of topology?.allNodes() ?? []) t.closeAll("test over");
  for (const n of nodes.splice(0)) n.stop();
});

const events: BackendEvents = { onReply() {}, onLost() {}, onConnectionState() {}, onNodeAnswered() {} };

test("an entry point's host name is resolved afresh at each refresh (a pod replaced at a new address)", async () => {
  // Two loopback addresses, same port: the "pod" before and after its replacement.
  const before = startFakeNode(PORT, undefined, { host: "127.0.0.1" });
  nodes.push(before);
  let address = "127.0.0.1", lookups = 0;
  topology = new Topology({
    entryPoints: [{ host: "redis-0.redis.test", port: PORT }], auth: null, tls: null, refreshIntervalMs: 600_000, connectTimeoutMs: 500,
    makeNode: (h, p) => new BackendNode(h, p, { poolSize: 1, bufferSize: 4096, connectTimeoutMs: 500, authRequests: [null], helloRequests: [], tls: null, maxIdle: 0, maxPinned: 16 }, events),
    slotsMoved: () => {},
    resolve: async (host) => {
      expect(host).toBe("redis-0.redis.test");
      lookups++;
      return [address];
    },
  });
  expect(await topology.start()).toBe(true);
  expect(topology.table.masters.map((m) => m.addr)).toEqual([`127.0.0.1:${PORT}`]);
  // The pod is replaced: the old address is gone, the name now points at the new one.
  before.stop();
  const after = startFakeNode(PORT, (args) => (args[0] === "CLUSTER" && args[1].toUpperCase() === "SLOTS"
    ? `*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n${bulk("127.0.0.2")}:${PORT}\r\n${bulk("b".repeat(40))}`
    : DEFAULT), { host: "127.0.0.2" });
  nodes.push(after);
  address = "127.0.0.2";
  const asked = lookups;
  expect(await topology.refresh()).toBe(true);
  expect(lookups).toBeGreaterThan(asked);
  expect(topology.table.masters.map((m) => m.addr)).toEqual([`127.0.0.2:${PORT}`]);
});
