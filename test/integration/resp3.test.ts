// RESP3 end to end: what nodes answer reaches a HELLO 3 client byte for byte; predixy's own replies too.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { DEFAULT, startFakeNode, type FakeNode } from "../helpers/fake-node.ts";
import { startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { exchange, pipeline, text } from "../helpers/resp-client.ts";
import { ownerPort } from "../helpers/slots.ts";

// Ports 8140-8142 (bus 18140-18142); the proxy on 8197; a scripted node on 8198, its proxy on 8199.
const BASE = 8140;
const PROXY_PORT = 8197;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let fake: FakeNode;
let fakeProxy: ProxyHandle;

/** Frames Redis 7.0 has no command for (DEBUG PROTOCOL aside): a scripted node sends them. */
const EXOTIC: Record<string, string> = {
  "bool:t": "#t\r\n",
  "bool:f": "#f\r\n",
  "bignum": "(3492890328409238509324850943850943825024385\r\n",
  "attrib": "|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n",
  "blob-error": "!21\r\nSYNTAX invalid syntax\r\n",
  "nested": "%1\r\n+k\r\n~2\r\n#t\r\n_\r\n",
};

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: "/tmp/predixy-test-8140" });
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]]);
  fake = startFakeNode(8198, (args) => (args[0] === "GET" && EXOTIC[args[1]] ? EXOTIC[args[1]] : DEFAULT));
  fakeProxy = await startProxy(8199, ["127.0.0.1:8198"]);
}, 60_000);

afterAll(async () => {
  await fakeProxy?.stop();
  fake?.stop();
  await proxy?.stop();
  await cluster?.stop();
});

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

test("maps, sets, doubles, big numbers, verbatim strings and nulls from a node arrive byte for byte", async () => {
  const setup = [["HSET", "{r3}h", "f", "v", "g", "w"], ["SADD", "{r3}s", "a", "b"], ["ZADD", "{r3}z", "1.5", "m"], ["SET", "{r3}k", "v"]];
  const probes = [
    ["HGETALL", "{r3}h"], ["SMEMBERS", "{r3}s"], ["ZSCORE", "{r3}z", "m"], ["ZRANGE", "{r3}z", "0", "-1", "WITHSCORES"],
    ["GET", "{r3}missing"], ["HMGET", "{r3}h", "f", "nope"], ["EVAL", "return {big_number='123456789012345678901234567890'}", "0"],
    ["EVAL", "return {verbatim_string={format='txt', string='hi'}}", "0"], ["EVAL", "return {double=3.5}", "0"],
    ["EVAL", "return {map={a={set={'x'}}}}", "1", "{r3}k"], ["OBJECT", "ENCODING", "{r3}k"],
  ];
  const node = await ownerPort(BASE, slot("{r3}"));
  const cmds = [["HELLO", "3"], ...setup, ...probes];
  const [viaProxy, viaNode] = await Promise.all([exchange(PROXY_PORT, pipeline(cmds), cmds.length), exchange(node, pipeline(cmds), cmds.length)]);
  const from = 1 + setup.length;
  expect(viaProxy.slice(from).map(text)).toEqual(viaNode.slice(from).map(text));
  expect(text(viaProxy[from])).toStartWith("%2\r\n"); // really RESP3: a map
});

test("booleans, attributes, blob errors and nested aggregates pass through unchanged", async () => {
  const keys = Object.keys(EXOTIC);
  const replies = await exchange(8199, pipeline([["HELLO", "3"], ...keys.map((k) => ["GET", k])]), keys.length + 1);
  keys.forEach((k, i) => expect(text(replies[1 + i])).toBe(EXOTIC[k]));
  // The node connection spoke RESP3: it was opened with HELLO 3.
  expect(fake.received.some((a) => a[0] === "HELLO" && a[1] === "3")).toBe(true);
});

test("predixy's own replies are encoded in the client's protocol", async () => {
  const cmds = [["HELLO", "3"], ["CLIENT", "GETNAME"], ["MGET", "a:1", "b:2", "c:3"], ["CLUSTER", "SLOTS"], ["INFO", "server"], ["ECHO", "x"], ["HELLO", "2"], ["CLIENT", "GETNAME"]];
  const r = (await exchange(PROXY_PORT, pipeline(cmds), cmds.length)).map(text);
  expect(r[0]).toMatch(/^%7\r\n\$6\r\nserver\r\n/);
  expect(r[0]).toContain("$5\r\nproto\r\n:3\r\n");
  expect(r[1]).toBe("_\r\n");
  expect(r[2]).toBe("*3\r\n_\r\n_\r\n_\r\n"); // split across slots, merged: RESP3 nulls
  expect(r[3]).toEndWith("%0\r\n"); // the node's networking metadata is a map
  expect(r[4]).toMatch(/^=\d+\r\ntxt:# Server\r\n/);
  expect(r[5]).toBe("$1\r\nx\r\n");
  expect(r[6]).toMatch(/^\*14\r\n/);
  expect(r[7]).toBe("$-1\r\n");
});

test("RESP2 clients are untouched by RESP3 ones on the same proxy", async () => {
  await exchange(PROXY_PORT, pipeline([["HSET", "{two}h", "f", "v"]]), 1);
  const [three, two] = await Promise.all([
    exchange(PROXY_PORT, pipeline([["HELLO", "3"], ["HGETALL", "{two}h"]]), 2),
    exchange(PROXY_PORT, pipeline([["HGETALL", "{two}h"]]), 1),
  ]);
  expect(text(three[1])).toBe("%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
  expect(text(two[0])).toBe("*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
});

test("HELLO with AUTH and SETNAME, and its errors, as Redis answers them", async () => {
  const r = (await exchange(PROXY_PORT, pipeline([["HELLO", "3", "SETNAME", "me"], ["CLIENT", "GETNAME"], ["HELLO", "4"], ["HELLO", "x"]]), 4)).map(text);
  expect(r[1]).toBe("$2\r\nme\r\n");
  expect(r[2]).toBe("-NOPROTO unsupported protocol version\r\n");
  expect(r[3]).toBe("-ERR Protocol version is not an integer or out of range\r\n");
});
