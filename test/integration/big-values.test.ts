// Large values streamed through predixy both ways, and every way a stream can be cut short.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { CLOSE, DEFAULT, ok, startFakeNode, type FakeNode } from "../helpers/fake-node.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { pipeline, RespConn, text } from "../helpers/resp-client.ts";
import { waitFor } from "../helpers/scripted.ts";
import { moveSlot, ownerPort } from "../helpers/slots.ts";

// Cluster 8150-8152 (bus 18150-18152); fake nodes 8156-8157; proxies 8186-8189.
const BASE = 8150;
const PORTS = [BASE, BASE + 1, BASE + 2];
let cluster: ClusterHandle;
let proxy: ProxyHandle;
/** Keeps nothing of streamed commands, and closes a client that stalls mid-command after 500 ms. */
let strict: ProxyHandle;
const opened: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: "/tmp/predixy-test-8150" });
  // A slow refresh: a moved slot is learnt from MOVED, not from the table.
  const cfg = { cluster: "refresh_interval_ms = 600000" };
  proxy = await startProxy(8186, [cluster.entryPoints[0]], cfg);
  strict = await startProxy(8187, [cluster.entryPoints[0]], {
    cluster: "refresh_interval_ms = 600000\ncommand_timeout_ms = 500", rest: "[performance]\nstream_retain_bytes = 0",
  });
}, 60_000);

afterAll(async () => {
  for (const c of opened) c.disconnect();
  await proxy?.stop();
  await strict?.stop();
  await cluster?.stop();
});

function client(port = 8186): Redis {
  const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  opened.push(c);
  return c;
}

/** Random bytes: a corrupted or misplaced byte cannot go unnoticed. */
function randomValue(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

async function streamed(port: number): Promise<{ uploads: number; replies: number }> {
  const info = await redisCli(port, ["info", "stats"]);
  return { uploads: Number(/streamed_uploads:(\d+)/.exec(info)![1]), replies: Number(/streamed_replies:(\d+)/.exec(info)![1]) };
}

/** Sends `bytes` in pieces of `piece` bytes, each once the last has gone. */
async function trickle(c: RespConn, bytes: Uint8Array, piece: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += piece) {
    c.send(bytes.subarray(i, i + piece));
    await waitFor(() => c.sent, "the piece to go");
  }
}

describe("values of 64 KiB and more go through as they arrive", () => {
  test("100 KB, 1 MB and 8 MB values, set and read back byte for byte, streamed both ways", async () => {
    const c = client();
    const values = [100_000, 1_000_000, 8_000_000].map(randomValue);
    // (100 KB may arrive in one read, and then there is nothing left to stream.)
    await c.set("big:0", values[0]);
    expect(Buffer.compare(await c.getBuffer("big:0") as Buffer, values[0])).toBe(0);
    // Bun reads at most 512 KiB at a time: these two always arrive in pieces.
    const before = await streamed(8186);
    for (const i of [1, 2]) await c.set(`big:${i}`, values[i]);
    for (const i of [1, 2]) expect(Buffer.compare(await c.getBuffer(`big:${i}`) as Buffer, values[i])).toBe(0);
    const after = await streamed(8186);
    expect(after.uploads - before.uploads).toBe(2);
    expect(after.replies - before.replies).toBe(2);
    // Below 64 KiB, the plain path: nothing streamed.
    await c.set("small", randomValue(60_000));
    await c.get("small");
    expect(await streamed(8186)).toEqual(after);
  });

  test("a pipeline mixing large and small commands keeps its order; an argument after the large one counts", async () => {
    const v = randomValue(300_000);
    const c = await RespConn.open(8186);
    c.send(pipeline([["SET", "mix:{a}", v, "PX", "600000"], ["GET", "mix:{a}"], ["SET", "mix:x", "1"], ["PTTL", "mix:{a}"], ["STRLEN", "mix:{a}"], ["GET", "mix:x"]]));
    const r = await c.waitReplies(6);
    expect(text(r[0])).toBe("+OK\r\n");
    expect(Buffer.compare(Buffer.from(r[1].subarray(r[1].indexOf(10) + 1, r[1].length - 2)), v)).toBe(0);
    expect(text(r[2])).toBe("+OK\r\n");
    expect(Number(text(r[3]).slice(1))).toBeGreaterThan(500_000);
    expect(text(r[4])).toBe(":300000\r\n");
    expect(text(r[5])).toBe("$1\r\n1\r\n");
    c.destroy();
  });

  test("ten clients uploading to one node take turns; every value lands whole", async () => {
    const values = Array.from({ length: 10 }, () => randomValue(500_000));
    const before = await streamed(8186);
    // One hash tag: one node, one shared connection.
    await Promise.all(values.map((v, i) => client().set(`{turns}:${i}`, v)));
    const c = client();
    for (const [i, v] of values.entries()) expect(Buffer.compare(await c.getBuffer(`{turns}:${i}`) as Buffer, v)).toBe(0);
    expect((await streamed(8186)).uploads - before.uploads).toBe(10);
  });

  test("a command arriving a few bytes at a time streams all the same", async () => {
    const v = randomValue(200_000);
    const c = await RespConn.open(8186);
    await trickle(c, pipeline([["SET", "trickle", v], ["STRLEN", "trickle"]]), 7_777);
    expect((await c.waitReplies(2)).map(text)).toEqual(["+OK\r\n", ":200000\r\n"]);
    c.destroy();
  });
});

describe("cut short", () => {
  test("a client leaving mid-command: nothing is written, and other clients on that node are all answered", async () => {
    const key = "{cut}:gone";
    const others = client();
    await others.set(key, "before");
    const bytes = pipeline([["SET", key, randomValue(2_000_000)]]);
    const before = await streamed(8186);
    const c = await RespConn.open(8186);
    c.send(bytes.subarray(0, 1_000_000));
    await waitFor(() => c.sent, "half the command sent");
    // Meanwhile another client's commands for the same node queue behind the upload …
    const counts = Array.from({ length: 200 }, (_, i) => others.incr(`{cut}:n${i % 5}`));
    await Bun.sleep(50);
    c.destroy();
    // … and are all answered once the connection the upload held is replaced.
    expect((await Promise.all(counts)).length).toBe(200);
    expect(await others.get(key)).toBe("before");
    expect(await others.ping()).toBe("PONG");
    expect((await streamed(8186)).uploads - before.uploads).toBe(1);
  });

  test("a malformed streamed command: a protocol error for that client, nothing run, no one else disturbed", async () => {
    const other = client();
    const bad = pipeline([["SET", "{bad}:k", randomValue(200_000)]]);
    bad[bad.length - 2] = 88; // no CRLF after the body
    const before = await streamed(8186);
    const c = await RespConn.open(8186);
    c.send(bad);
    await c.waitClosed();
    expect(text(c.replies.at(-1)!)).toStartWith("-ERR Protocol error");
    expect(await other.exists("{bad}:k")).toBe(0);
    expect(await other.set("{bad}:k2", "v")).toBe("OK");
    expect((await streamed(8186)).uploads - before.uploads).toBe(1);
  });

  test("a client that stalls mid-command is closed after command_timeout_ms; others go on", async () => {
    const c = await RespConn.open(8187);
    c.send(pipeline([["SET", "{stall}:k", randomValue(300_000)]]).subarray(0, 100_000));
    await c.waitClosed(10_000);
    const other = client(8187);
    expect(await other.set("{stall}:k2", "v")).toBe("OK");
    expect(await other.exists("{stall}:k")).toBe(0);
  });

  test("a streamed command MOVED to another node is sent there again from the bytes kept", async () => {
    const key = "{moving}:v";
    const slot = Number(await redisCli(BASE, ["cluster", "keyslot", key]));
    const c = client();
    await c.set("{moving}:warm", "1"); // predixy knows the slot's owner
    await moveSlot(PORTS, slot, ["{moving}:warm"]);
    const v = randomValue(400_000);
    const before = await streamed(8186);
    expect(await c.set(key, v)).toBe("OK");
    expect((await streamed(8186)).uploads - before.uploads).toBe(1);
    const owner = await ownerPort(BASE, slot);
    expect(Buffer.compare(Buffer.from(await redisCli(owner, ["strlen", key])), Buffer.from("400000"))).toBe(0);
    expect(Buffer.compare(await c.getBuffer(key) as Buffer, v)).toBe(0);
  });

  test("with nothing kept (stream_retain_bytes = 0), a MOVED streamed command gets TRYAGAIN and can be sent again", async () => {
    const key = "{moving2}:v";
    const slot = Number(await redisCli(BASE, ["cluster", "keyslot", key]));
    const c = client(8187);
    await c.set("{moving2}:warm", "1");
    await moveSlot(PORTS, slot, ["{moving2}:warm"]);
    const v = randomValue(400_000);
    const changes = async () => Number(/topology_changes:(\d+)/.exec(await redisCli(8187, ["info", "stats"]))![1]);
    const known = await changes();
    await expect(c.set(key, v)).rejects.toThrow(/^TRYAGAIN .*400\d{3} bytes were streamed .* send the command again/);
    // The MOVED made predixy refresh its table: sent again once it has, it lands at the new owner.
    await waitFor(async () => (await changes()) > known, "the new table");
    expect(await c.set(key, v)).toBe("OK");
    expect(Buffer.compare(await c.getBuffer(key) as Buffer, v)).toBe(0);
  });
});

describe("a node failing mid-stream (scripted node)", () => {
  let node: FakeNode;
  let fp: ProxyHandle;
  const big = "x".repeat(1_000_000);

  beforeAll(async () => {
    node = startFakeNode(8156, (args, conn) => {
      if (args[0] === "SET") return ok;
      if (args[0] === "GET" && args[1] === "cut") {
        // Half of a 1 MB reply, then the node goes.
        conn.write(`$${big.length}\r\n${big.slice(0, 500_000)}`);
        return CLOSE;
      }
      if (args[0] === "GET") return `$${big.length}\r\n${big}\r\n`;
      return DEFAULT;
    });
    fp = await startProxy(8188, ["127.0.0.1:8156"], { cluster: "retry_timeout_ms = 200" });
  });

  afterAll(async () => {
    await fp?.stop();
    node?.stop();
  });

  test("the node closing mid-upload: that command gets an error, the client stays usable", async () => {
    const c = await RespConn.open(8188);
    const before = node.bytesIn;
    const bytes = pipeline([["SET", "k", randomValue(2_000_000)]]);
    c.send(bytes.subarray(0, 1_000_000));
    await waitFor(() => node.bytesIn - before > 500_000, "the node to get part of the command");
    node.dropAll();
    c.send(bytes.subarray(1_000_000));
    c.send(pipeline([["PING"]]));
    const r = await c.waitReplies(2);
    expect(text(r[0])).toStartWith("-ERR connection to the cluster node was lost");
    expect(text(r[1])).toBe("+PONG\r\n");
    c.destroy();
  });

  test("the node closing mid-reply: that client is closed (its reply cannot be finished), others are served", async () => {
    const c = await RespConn.open(8188);
    c.send(pipeline([["GET", "cut"]]));
    await c.waitClosed();
    // Half the reply reached it; nothing could follow it on that connection.
    expect(c.replies.length).toBe(0);
    const other = await RespConn.open(8188);
    other.send(pipeline([["GET", "whole"], ["PING"]]));
    const r = await other.waitReplies(2);
    expect(r[0].length).toBe(1_000_000 + "$1000000\r\n\r\n".length);
    expect(text(r[1])).toBe("+PONG\r\n");
    other.destroy();
  });

  test("a client that does not read a large reply holds up no one", async () => {
    const slow = await Bun.connect({ hostname: "127.0.0.1", port: 8188, socket: { data() {} } });
    slow.pause();
    slow.write(pipeline(Array.from({ length: 20 }, () => ["GET", "whole"])));
    const other = await RespConn.open(8188);
    other.send(pipeline([["GET", "whole"], ["PING"]]));
    expect(text((await other.waitReplies(2))[1])).toBe("+PONG\r\n");
    other.destroy();
    slow.terminate();
  });
});
