import { expect, test } from "bun:test";
import { BackendNode } from "../../../src/backend/backend-node.ts";
import type { BackendEvents } from "../../../src/backend/backend-conn.ts";
import { NO_NODE, SLOT_COUNT, SlotTable } from "../../../src/cluster/slot-table.ts";
import { parseClusterNodes, slotEpochs, staleness, type View } from "../../../src/cluster/table-check.ts";

const events = {} as BackendEvents;
const node = (port: number) => new BackendNode("127.0.0.1", port, { poolSize: 1, bufferSize: 4096, connectTimeoutMs: 500, authRequests: [null], helloRequests: [], tls: null, maxIdle: 0, maxPinned: 16 }, events);
const [a, b, c] = [node(1), node(2), node(3)];

/** A view whose masters serve [from, to] each, with the given config epochs. */
function view(masters: [BackendNode, number, number, number][]): View {
  const owner = new Uint16Array(SLOT_COUNT).fill(NO_NODE);
  const epochs = new Float64Array(SLOT_COUNT).fill(-1);
  masters.forEach(([, from, to, epoch], i) => {
    owner.fill(i, from, to + 1);
    epochs.fill(epoch, from, to + 1);
  });
  const table = new SlotTable(masters.map((m) => m[0]), owner, masters.map(() => []));
  return { table, slotEpochs: epochs, maxEpoch: Math.max(...masters.map((m) => m[3])) };
}

test("CLUSTER NODES: ids, addresses without bus port or hostname, fail (not fail?), config epochs", () => {
  const lines = parseClusterNodes([
    "aaa 10.0.0.1:7000@17000,redis-0.svc myself,master - 0 0 5 connected 0-5460",
    "bbb 10.0.0.2:7001@17001 master,fail - 1 2 3 disconnected 5461-10922",
    "ccc 10.0.0.3:7002@17002 slave,fail? aaa 1 2 5 connected",
    "garbage",
  ].join("\n"));
  expect([...lines.keys()]).toEqual(["aaa", "bbb", "ccc"]);
  expect(lines.get("aaa")).toEqual({ id: "aaa", addr: "10.0.0.1:7000", master: true, failed: false, configEpoch: 5 });
  expect(lines.get("bbb")!.failed).toBe(true);
  expect(lines.get("ccc")!.failed).toBe(false);
  expect(lines.get("ccc")!.master).toBe(false);
});

test("per-slot epochs come from each master's line; an unknown master means no epochs", () => {
  const v = view([[a, 0, 99, 0], [b, 100, 16383, 0]]);
  const lines = parseClusterNodes("x 1.1.1.1:1@2 master - 0 0 4 connected\ny 1.1.1.1:2@3 master - 0 0 7 connected");
  const e = slotEpochs(v.table, ["x", "y"], lines)!;
  expect([e[0], e[99], e[100], e[16383]]).toEqual([4, 4, 7, 7]);
  expect(slotEpochs(v.table, ["x", "z"], lines)).toBeNull();
});

test("a newer view replaces ours: a failover (new owner, higher epoch), a reshard, the same view", () => {
  const now = view([[a, 0, 8191, 1], [b, 8192, 16383, 2]]);
  expect(staleness(now, view([[a, 0, 8191, 1], [c, 8192, 16383, 3]]))).toBeNull();
  expect(staleness(now, view([[a, 0, 8291, 3], [b, 8292, 16383, 2]]))).toBeNull();
  expect(staleness(now, now)).toBeNull();
});

test("an older view does not: a lower newest epoch, a slot given away under an older epoch, fewer slots", () => {
  const now = view([[a, 0, 8191, 1], [c, 8192, 16383, 3]]);
  // b, in a minority partition, still claims what c took over.
  expect(staleness(now, view([[a, 0, 8191, 1], [b, 8192, 16383, 2]]))).toBe("its newest config epoch is 2, older than the 3 already seen");
  // Same newest epoch known, but slot 8192 given back to b under epoch 2 < c's 3.
  expect(staleness(now, view([[a, 0, 8191, 3], [b, 8192, 16383, 2]]))).toContain("gives slot 8192 to 127.0.0.1:2 (config epoch 2), which 127.0.0.1:3 holds with epoch 3");
  expect(staleness(now, view([[a, 0, 8191, 1], [c, 8192, 9999, 3]]))).toContain("serves 10000 slots, fewer than the 16384 served now");
});

test("without epochs on either side only a view serving nothing is refused; with no table yet anything goes", () => {
  const now = { ...view([[a, 0, 16383, 1]]), slotEpochs: null };
  expect(staleness(now, view([[b, 0, 100, 0]]))).toBeNull();
  expect(staleness(now, { table: SlotTable.EMPTY, slotEpochs: null, maxEpoch: -1 })).toBe("it serves no slots");
  expect(staleness({ table: SlotTable.EMPTY, slotEpochs: null, maxEpoch: -1 }, view([[b, 0, 100, 0]]))).toBeNull();
});
