// Pub/sub through the proxy: classic, pattern and shard channels, subscribed mode, counts, faults.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { redisCli, startCluster, waitClusterOk, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { rawExchange, startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { exchange, pipeline, text } from "../helpers/resp-client.ts";
import { waitFor } from "../helpers/scripted.ts";
import { masterPorts, moveSlot } from "../helpers/slots.ts";

// Ports 8130-8135 (bus 18130-18135); proxies on 8195 and 8196.
const BASE = 8130;
const PROXY_PORT = 8195;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
const opened: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-8130" });
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { cluster: "retry_timeout_ms = 15000" });
}, 60_000);

afterAll(async () => {
  for (const c of opened) c.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

function connect(port = PROXY_PORT, resp = 2): Redis {
  const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0, protocol: resp } as never);
  opened.push(c);
  return c;
}

/** Collects the messages a subscriber connection receives. */
function collect(c: Redis): string[] {
  const got: string[] = [];
  c.on("message", (ch: string, m: string) => got.push(`${ch}:${m}`));
  c.on("pmessage", (p: string, ch: string, m: string) => got.push(`${p}|${ch}:${m}`));
  c.on("smessage", (ch: string, m: string) => got.push(`s ${ch}:${m}`));
  return got;
}

const PORTS = Array.from({ length: 6 }, (_, i) => BASE + i);
const masters = () => masterPorts(PORTS);

describe("subscribed mode, as Redis answers it", () => {
  test("confirmations, PING, refused commands and RESET in RESP2 match a node byte for byte", async () => {
    const cmds = [["SUBSCRIBE", "a", "b", "a"], ["PSUBSCRIBE", "p*"], ["PING"], ["PING", "hi"], ["UNSUBSCRIBE", "a"],
      ["PUNSUBSCRIBE"], ["UNSUBSCRIBE"], ["UNSUBSCRIBE"], ["SUBSCRIBE", "c"], ["RESET"], ["PING"]];
    // One reply per channel named (SUBSCRIBE a b a: three), per channel held for a bare
    // (P)UNSUBSCRIBE, one when none is held; one for every other command.
    const count = 3 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1;
    const [viaProxy, viaNode] = await Promise.all([
      exchange(PROXY_PORT, pipeline(cmds), count), exchange(BASE, pipeline(cmds), count),
    ]);
    expect(viaProxy.map(text)).toEqual(viaNode.map(text));
    // A command other than (un)subscribe, PING, QUIT and RESET gets Redis' refusal (the node
    // answers MOVED first for a key it does not own; one Redis answers this).
    const r = await rawExchange(PROXY_PORT, "SUBSCRIBE x\r\nGET k\r\nQUIT\r\n", (t) => t.includes("+OK"));
    expect(r.text).toContain("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
  });

  test("in RESP3 confirmations and messages are pushes, and other commands run meanwhile", async () => {
    const sub = connect(PROXY_PORT, 3);
    const got = collect(sub);
    await sub.subscribe("r3");
    expect(await sub.set("r3:key", "v")).toBe("OK"); // allowed in RESP3
    const pub = connect();
    expect(await pub.publish("r3", "pushed")).toBe(1);
    await waitFor(() => got.length === 1, "the push");
    expect(got).toEqual(["r3:pushed"]);
    expect(await sub.get("r3:key")).toBe("v");
    // The frames themselves, against a node's RESP3 answers.
    const cmds = [["HELLO", "3"], ["SUBSCRIBE", "z1", "z2"], ["PING"], ["UNSUBSCRIBE"]];
    const n = 1 + 2 + 1 + 2;
    const [p, d] = await Promise.all([exchange(PROXY_PORT, pipeline(cmds), n), exchange(BASE, pipeline(cmds), n)]);
    expect(p.slice(1, 4).map(text)).toEqual(d.slice(1, 4).map(text));
    // A bare UNSUBSCRIBE confirms each channel; Redis' order is its hash table's, so compare as sets.
    expect(p.slice(4).map(text).map((t) => t.replace(/:\d\r\n$/, "")).sort()).toEqual(d.slice(4).map(text).map((t) => t.replace(/:\d\r\n$/, "")).sort());
    expect(p.slice(4).map(text).map((t) => t.slice(-4))).toEqual([":1\r\n", ":0\r\n"]);
  });
});

describe("messages", () => {
  test("every one of 100 subscribers of a channel gets every message, in order", async () => {
    const subs = Array.from({ length: 100 }, () => connect());
    const boxes = subs.map(collect);
    await Promise.all(subs.map((s) => s.subscribe("fan")));
    const pub = connect();
    for (let i = 0; i < 50; i++) expect(await pub.publish("fan", `m${i}`)).toBe(100);
    await waitFor(() => boxes.every((b) => b.length === 50), "every message at every subscriber");
    for (const b of boxes) expect(b).toEqual(Array.from({ length: 50 }, (_, i) => `fan:m${i}`));
    for (const s of subs) s.disconnect();
  });

  test("patterns and shard channels deliver as Redis does; SPUBLISH counts shard subscribers", async () => {
    const ps = connect(), ss = connect();
    const pgot = collect(ps), sgot = collect(ss);
    await ps.psubscribe("ev:*", "ev:[ab]");
    await ss.ssubscribe("{shard}news", "{shard}sport");
    const pub = connect();
    expect(await pub.publish("ev:a", "1")).toBe(2); // both patterns match
    expect(await pub.publish("ev:c", "2")).toBe(1);
    expect(await pub.call("SPUBLISH", "{shard}news", "3")).toBe(1);
    expect(await pub.call("SPUBLISH", "{shard}none", "4")).toBe(0);
    await waitFor(() => pgot.length === 3 && sgot.length === 1, "the messages");
    expect(pgot.sort()).toEqual(["ev:*|ev:a:1", "ev:*|ev:c:2", "ev:[ab]|ev:a:1"]);
    expect(sgot).toEqual(["s {shard}news:3"]);
    await expect(connect().ssubscribe("a", "b")).rejects.toThrow(/CROSSSLOT/);
  });

  test("binary channel names stay distinct and come back byte for byte", async () => {
    // 0xff and 0xfe are not UTF-8: decoded as text, both would become U+FFFD, one channel.
    const ff = Buffer.from([0x62, 0x69, 0x6e, 0xff]), fe = Buffer.from([0x62, 0x69, 0x6e, 0xfe]);
    const a = connect(), b = connect(), p = connect();
    const got: string[] = [];
    a.on("messageBuffer", (ch: Buffer, m: Buffer) => got.push(`a ${ch.toString("hex")} ${m}`));
    b.on("messageBuffer", (ch: Buffer, m: Buffer) => got.push(`b ${ch.toString("hex")} ${m}`));
    p.on("pmessageBuffer", (_pat: unknown, ch: Buffer, m: Buffer) => got.push(`p ${ch.toString("hex")} ${m}`));
    await a.subscribe(ff);
    await b.subscribe(fe);
    await p.psubscribe(Buffer.from([0x62, 0x69, 0x6e, 0x5b, 0xff, 0x5d]) as unknown as string); // bin[\xff]; ioredis sends a Buffer as is
    const pub = connect();
    expect(await pub.publish(ff, "1")).toBe(2);
    expect(await pub.publish(fe, "2")).toBe(1);
    await waitFor(() => got.length === 3, "the messages");
    expect(got.sort()).toEqual(["a 62696eff 1", "b 62696efe 2", "p 62696eff 1"]);
    const channels = await pub.callBuffer("PUBSUB", "CHANNELS", "bin*") as Buffer[];
    expect(channels.map((c) => c.toString("hex")).sort()).toEqual(["62696efe", "62696eff"]);
    const numsub = await pub.callBuffer("PUBSUB", "NUMSUB", ff) as (Buffer | number)[];
    expect([(numsub[0] as Buffer).toString("hex"), numsub[1]]).toEqual(["62696eff", 1]);
    await Promise.all([a, b, p].map((c) => c.quit()));
  });

  test("PUBSUB NUMSUB/NUMPAT/CHANNELS/SHARDCHANNELS/SHARDNUMSUB count each client once, over the cluster", async () => {
    const a = connect(), b = connect(), p = connect(), s = connect();
    await a.subscribe("count:x", "count:y");
    await b.subscribe("count:x");
    await p.psubscribe("count:*");
    await s.ssubscribe("{cs}1");
    // Clients of the nodes directly, beside predixy's: one on every master.
    const direct = (await masters()).map((port) => new Redis({ port, host: "127.0.0.1" }));
    opened.push(...direct);
    for (const d of direct) await d.subscribe("count:x");
    const q = connect();
    expect(await q.pubsub("NUMSUB", "count:x", "count:y", "count:none")).toEqual(["count:x", 5, "count:y", 1, "count:none", 0]);
    expect(await q.pubsub("NUMPAT")).toBeGreaterThanOrEqual(1);
    expect(await q.pubsub("CHANNELS", "count:*")).toEqual(["count:x", "count:y"]);
    expect(await q.pubsub("SHARDCHANNELS")).toContain("{cs}1");
    expect(await q.pubsub("SHARDNUMSUB", "{cs}1")).toEqual(["{cs}1", 1]);
    // a, b and p (its pattern) through predixy, and the direct subscriber of the node PUBLISH ran on
    // (Redis Cluster's PUBLISH counts that node's receivers).
    expect(await q.publish("count:x", "m")).toBe(4);
    await Promise.all([a, b, p, s, ...direct].map((c) => c.quit()));
  });

  test("a subscriber that does not read is closed past max_pubsub_output_bytes; others are not held up", async () => {
    const small = await startProxy(8196, [cluster.entryPoints[0]], { rest: "[performance]\nmax_pubsub_output_bytes = 65536" });
    try {
      const { promise: closed, resolve } = Promise.withResolvers<void>();
      const sock = await Bun.connect({ hostname: "127.0.0.1", port: 8196, socket: { data() {}, close() { resolve(); } } });
      sock.write("SUBSCRIBE flood\r\n");
      sock.pause?.(); // never reads again
      const reader = connect(8196);
      const got = collect(reader);
      await reader.subscribe("flood");
      const pub = connect(8196);
      const payload = "x".repeat(16 * 1024);
      let sent = 0;
      const deadline = Date.now() + 20_000;
      let isClosed = false;
      void closed.then(() => { isClosed = true; });
      while (!isClosed && Date.now() < deadline) {
        await pub.publish("flood", payload);
        sent++;
      }
      expect(isClosed).toBe(true);
      await waitFor(() => got.length === sent, "every message at the reading subscriber", 10_000);
      expect(Number(/client_output_buffer_limit_disconnections:(\d+)/.exec(await pub.info("stats"))![1])).toBeGreaterThanOrEqual(1);
    } finally {
      await small.stop();
    }
  }, 40_000);
});

describe("faults", () => {
  test("a shard channel follows its slot to a new owner; the subscriber stays connected", async () => {
    const sub = connect();
    const got = collect(sub);
    const ch = "{mv}chan";
    await sub.ssubscribe(ch);
    const pub = connect();
    expect(await pub.call("SPUBLISH", ch, "before")).toBe(1);
    await moveSlot(PORTS, await pub.cluster("KEYSLOT", ch) as number);
    await waitFor(async () => Number(await pub.call("SPUBLISH", ch, "after")) === 1, "the shard subscription at the new owner", 10_000);
    await waitFor(() => got.includes(`s ${ch}:after`), "the message after the move");
    expect(got[0]).toBe(`s ${ch}:before`);
  });

  test("channel and pattern subscribers survive kill -9 of the master holding predixy's subscriber connection, and its replacement", async () => {
    const sub = connect(), psub = connect();
    const got = collect(sub), pgot = collect(psub);
    await sub.subscribe("survive");
    await psub.psubscribe("surv*");
    const pub = connect();
    expect(await pub.publish("survive", "1")).toBe(2);
    // The node holding predixy's subscriber connection, channels and patterns alike: the one whose CLIENT LIST shows it.
    let victim = 0;
    const before = await masters();
    for (const p of before) if ((await redisCli(p, ["client", "list"])).split("\n").some((l) => /\bsub=[1-9]\d* psub=[1-9]/.test(l))) victim = p;
    expect(victim).toBeGreaterThan(0);
    const node = cluster.nodes.find((n) => n.port === victim)!;
    process.kill(node.pid, "SIGKILL");
    // Messages published before predixy has subscribed elsewhere are lost (at most once): keep publishing.
    let sent = 0;
    const refused: string[] = [];
    await waitFor(async () => {
      await pub.publish("survive", `after-${++sent}`).catch((e: Error) => refused.push(e.message));
      return got.some((m) => m.startsWith("survive:after-")) && pgot.some((m) => m.startsWith("surv*|survive:after-"));
    }, "a message after the kill, by channel and by pattern", 20_000);
    expect(got[0]).toBe("survive:1");
    expect(pgot[0]).toBe("surv*|survive:1");
    expect([sub.status, psub.status]).toEqual(["ready", "ready"]);
    // PUBLISH can run on any master (the cluster passes it to every node): only one in flight at
    // the kill may fail; none waits for the dead master to come back (CLUSTERDOWN at the deadline).
    expect(refused.filter((e) => !e.startsWith("ERR connection to the cluster node was lost"))).toEqual([]);
    // Once the killed master's replica has taken its place, both still receive, and PUBLISH counts both.
    await waitFor(async () => (await masters()).some((p) => !before.includes(p)), "the replica to take over", 20_000);
    await waitClusterOk(cluster.nodes.filter((n) => n.port !== victim).map((n) => n.port), 20_000);
    expect(await pub.publish("survive", "replaced")).toBe(2);
    await waitFor(() => got.includes("survive:replaced") && pgot.includes("surv*|survive:replaced"), "a message after the failover");
  }, 70_000);
});

