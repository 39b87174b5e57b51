// Commands the built-in table lacks (modules, newer Redis) are learned from the cluster's COMMAND reply.

import { afterAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { bulk, DEFAULT, startFakeNode, type SlotRange } from "../helpers/fake-node.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";

const COMMAND_REPLY = "*1\r\n*6\r\n$8\r\njson.get\r\n:-2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n";
const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

// Two nodes split the slots, so routing by the learned key position is observable.
const a = startFakeNode(7810, (args) =>
  args[0] === "COMMAND" ? COMMAND_REPLY : args[0] === "JSON.GET" ? bulk(`a:${args[1]}`) : DEFAULT);
const b = startFakeNode(7811, (args) =>
  args[0] === "COMMAND" ? COMMAND_REPLY : args[0] === "JSON.GET" ? bulk(`b:${args[1]}`) : DEFAULT);
const table: SlotRange[] = [[0, 8191, 7810], [8192, 16383, 7811]];
a.slots = table;
b.slots = table;
let proxy: ProxyHandle | null = null;

afterAll(async () => {
  await proxy?.stop();
  a.stop();
  b.stop();
});

test("a module command unknown to the built-in table is routed by the key position COMMAND reports", async () => {
  proxy = await startProxy(7892, ["127.0.0.1:7810"]);
  expect(proxy.logs()).toContain("learned 1 commands");
  const c = new Redis({ port: 7892, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  try {
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const low = keys.find((k) => slot(k) < 8192)!, high = keys.find((k) => slot(k) >= 8192)!;
    expect(await c.call("JSON.GET", low)).toBe(`a:${low}`);
    expect(await c.call("json.get", high)).toBe(`b:${high}`);
    await expect(c.call("JSON.SET", "k", "$", "1")).rejects.toThrow(/unknown command/);
  } finally {
    c.disconnect();
  }
});
