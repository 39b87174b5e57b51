// The first process' side of the worker group: gathering snapshots, silent workers, applying changes.

import { expect, test } from "bun:test";
import { Group, type GroupMessage, type GroupOp } from "../../../src/metrics/group.ts";
import type { Snapshot } from "../../../src/metrics/snapshot.ts";

const snap = (worker: number) => ({ process: { worker } }) as unknown as Snapshot;

function group(answering: Set<number>) {
  const applied: GroupOp[] = [];
  const sent: [number, GroupMessage][] = [];
  const g = new Group(() => snap(0), (op) => applied.push(op));
  g.attachWorkers({
    ids: () => [1, 2],
    send(worker, msg) {
      sent.push([worker, msg]);
      // A worker answers a snapshot request on a later turn, as over IPC.
      if (msg.t === "snap" && answering.has(worker)) setTimeout(() => g.onWorkerMessage(worker, { t: "snapped", id: msg.id, snap: snap(worker) }), 1);
    },
  });
  return { g, applied, sent };
}

test("gather returns this process' snapshot and every worker's", async () => {
  const { g } = group(new Set([1, 2]));
  expect((await g.gather(true)).map((s) => s.process.worker)).toEqual([0, 1, 2]);
});

test("a worker that does not answer is left out, not waited for forever", async () => {
  const { g } = group(new Set([2]));
  expect((await g.gather(false)).map((s) => s.process.worker)).toEqual([0, 2]);
});

test("a worker asking for the group's view gets every snapshot back", async () => {
  const { g, sent } = group(new Set([1, 2]));
  g.onWorkerMessage(2, { t: "gather", id: 7, detail: true });
  await Bun.sleep(50);
  const reply = sent.find(([w, m]) => w === 2 && m.t === "gathered");
  expect(reply).toBeDefined();
  const m = reply![1] as Extract<GroupMessage, { t: "gathered" }>;
  expect(m.id).toBe(7);
  expect(m.snaps.map((s) => s.process.worker)).toEqual([0, 1, 2]);
});

test("a change applies here and in every worker, once each, the asking worker excepted", () => {
  const { g, applied, sent } = group(new Set());
  g.apply({ op: "slowlog-reset" });
  expect(applied).toEqual([{ op: "slowlog-reset" }]);
  expect(sent.map(([w, m]) => [w, m.t])).toEqual([[1, "apply"], [2, "apply"]]);
  sent.length = 0;
  g.onWorkerMessage(2, { t: "apply", op: { op: "resetstat" } });
  expect(applied).toEqual([{ op: "slowlog-reset" }, { op: "resetstat" }]);
  expect(sent.map(([w, m]) => [w, m.t])).toEqual([[1, "apply"]]);
});
