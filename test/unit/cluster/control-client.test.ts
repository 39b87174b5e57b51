import { afterEach, expect, test } from "bun:test";
import { query } from "../../../src/cluster/control-client.ts";

const realConnect = Bun.connect;
afterEach(() => { (Bun as { connect: unknown }).connect = realConnect; });

// A host that drops SYNs leaves connect() pending for minutes; the query must not wait for it.
test("a connect that never completes ends in the query's timeout", async () => {
  (Bun as { connect: unknown }).connect = () => new Promise(() => {});
  await expect(query("127.0.0.1", 1, [["CLUSTER", "SLOTS"]], null, 50)).rejects.toThrow("timeout after 50 ms");
});

test("a connect that completes after the timeout is closed at once, not used", async () => {
  let terminated = 0, written = 0;
  const late = { terminate: () => { terminated++; }, write: () => { written++; }, end: () => {} };
  let finish!: (s: unknown) => void;
  (Bun as { connect: unknown }).connect = () => new Promise((resolve) => { finish = resolve; });
  await expect(query("127.0.0.1", 1, [["CLUSTER", "SLOTS"]], null, 50)).rejects.toThrow("timeout after 50 ms");
  finish(late);
  await Bun.sleep(0);
  expect(terminated).toBe(1);
  expect(written).toBe(0);
});
