// The client side's limits and lifecycle: pre-AUTH caps, request size, half-close, idleness,
// shutdown and the open-file limit, against scripted fake nodes.

import { expect, test } from "bun:test";
import { connect } from "node:net";
import { Redis } from "ioredis";
import { bulk, command, DEFAULT, type FakeHandler } from "../helpers/fake-node.ts";
import { rawExchange } from "../helpers/proxy.ts";
import { scripted, waitFor } from "../helpers/scripted.ts";

const { fake, proxyFor, client, cleanups } = scripted(7300, 7349);

/** GET answers "value" at once, except `GET slow`, answered after `ms`. */
const slowNode = (ms: number): FakeHandler => (args, conn) => {
  if (args[0] !== "GET") return DEFAULT;
  if (args[1] !== "slow") return bulk("value");
  setTimeout(() => conn.write(bulk("late")), ms);
  return "";
};

/** A client that never reads its replies: sends `first`, then `every` each `ms` until closed. */
function neverReads(port: number, first: string, every: string, ms: number): () => boolean {
  let closed = false;
  const sock = connect({ host: "127.0.0.1", port });
  cleanups.push(() => sock.destroy());
  sock.pause();
  sock.on("close", () => { closed = true; });
  sock.on("error", () => {});
  sock.write(first);
  const timer = setInterval(() => { if (!closed) sock.write(every); }, ms);
  cleanups.push(() => clearInterval(timer));
  return () => closed;
}

const statOf = async (c: Redis, name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(await c.info("stats"))![1]);

test("before AUTH a client is held to Redis' limits: 10 arguments of 16 KiB", async () => {
  const p = await proxyFor([fake()], { server: `password = "pw"` });
  const many = await rawExchange(p.port, "*11\r\n", (t) => t.includes("\r\n"));
  expect(many.text).toBe("-ERR Protocol error: unauthenticated multibulk length\r\n");
  expect(many.closed).toBe(true);
  const big = await rawExchange(p.port, "*2\r\n$4\r\nECHO\r\n$16385\r\n", (t) => t.includes("\r\n"));
  expect(big.text).toBe("-ERR Protocol error: unauthenticated bulk length\r\n");
  expect(big.closed).toBe(true);

  // After AUTH both are allowed.
  const arg = "x".repeat(20000);
  const after = await rawExchange(p.port,
    command("AUTH", "pw") + command("ECHO", arg) + command("PING", ..."abcdefghij".split("")),
    (t) => t.endsWith("command\r\n"));
  expect(after.text).toBe(`+OK\r\n$20000\r\n${arg}\r\n-ERR wrong number of arguments for 'ping' command\r\n`);
  expect(after.closed).toBe(false);
});

test("AUTH and HELLO answer as Redis does: bad options log nobody in, arity before NOAUTH", async () => {
  const a = fake((args) => (args[0] === "GET" ? bulk("value") : DEFAULT));
  const p = await proxyFor([a], { server: `password = "pw"` });
  const r = await rawExchange(p.port,
    command("HELLO", "2", "AUTH", "default", "pw", "BOGUS") + command("AUTH", "default", "pw", "more") + command("GET") +
    command("HELLO", "2") + command("GET", "k"),
    (t) => t.split("\r\n").length > 5);
  expect(r.text).toBe(
    "-ERR Syntax error in HELLO option 'BOGUS'\r\n" +
    "-ERR syntax error\r\n" +
    "-ERR wrong number of arguments for 'get' command\r\n" +
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n" +
    "-NOAUTH Authentication required.\r\n");
  expect(a.count("GET")).toBe(0);

  // No password configured: the default user takes any password; AUTH <pass> alone is an error.
  const open = await proxyFor([a]);
  const o = await rawExchange(open.port, command("AUTH", "default", "x") + command("AUTH", "bob", "x") + command("AUTH", "x"),
    (t) => t.split("\r\n").length > 3);
  expect(o.text).toBe("+OK\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
    "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
});

test("max_client_input_bytes: a request growing past it gets an error and its client is closed; others are unaffected", async () => {
  const a = fake((args) => (args[0] === "GET" ? bulk("value") : DEFAULT));
  const p = await proxyFor([a], { rest: "[performance]\nmax_client_input_bytes = 4096" });
  const other = client(p);
  expect(await other.get("k")).toBe("value");

  // One big argument, and many small ones (their offsets count too).
  for (const payload of ["*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + "x".repeat(8000), "*100000\r\n" + "$0\r\n\r\n".repeat(500)]) {
    const r = await rawExchange(p.port, payload, (t) => t.includes("\r\n"));
    expect(r.text).toBe("-ERR Protocol error: request exceeds max_client_input_bytes\r\n");
    expect(r.closed).toBe(true);
  }
  expect(a.count("SET")).toBe(0);
  expect(await other.get("k")).toBe("value");
  expect(await statOf(other, "client_query_buffer_limit_disconnections")).toBe(2);
});

test("a client that half-closes after its commands still gets every reply, then the connection closes", async () => {
  // batch_size 2: most of what it sent is still unparsed in the proxy when its FIN arrives.
  const p = await proxyFor([fake(slowNode(300))], { rest: "[performance]\nbatch_size = 2" });
  let text = "";
  let closed = false;
  // node:net, because its allowHalfOpen keeps reading after our FIN, as `printf … | nc` does.
  const sock = connect({ host: "127.0.0.1", port: p.port, allowHalfOpen: true });
  cleanups.push(() => sock.destroy());
  sock.on("data", (d) => { text += d.toString(); });
  sock.on("close", () => { closed = true; });
  sock.on("connect", () => sock.end(command("GET", "k") + command("GET", "slow") + command("PING").repeat(6)));
  await waitFor(() => closed, "the proxy to close the connection");
  expect(text).toBe("$5\r\nvalue\r\n$4\r\nlate\r\n" + "+PONG\r\n".repeat(6));
});

test("client_idle_timeout_ms: a client waiting for a slow reply is not idle", async () => {
  const p = await proxyFor([fake(slowNode(1000))], { server: "client_idle_timeout_ms = 200" });
  const r = await rawExchange(p.port, command("GET", "slow"), (t) => t.endsWith("late\r\n"));
  expect(r.text).toBe("$4\r\nlate\r\n");
  expect(r.closed).toBe(false);
});

test("SIGTERM: replies still in flight reach their clients before the proxy exits", async () => {
  const a = fake(slowNode(500));
  const p = await proxyFor([a]);
  const pending = rawExchange(p.port, command("GET", "slow"), (t) => t.endsWith("late\r\n"));
  await waitFor(() => a.count("GET") === 1, "the GET to reach the node");
  await p.stop();
  const r = await pending;
  expect(r.text).toBe("$4\r\nlate\r\n");
  expect(r.closed).toBe(true);
});

test("max_clients is lowered to fit the open-file limit, so extra clients get an error instead of hanging", async () => {
  const p = await proxyFor([fake((args) => (args[0] === "GET" ? bulk("value") : DEFAULT))], { openFiles: 100 });
  const m = /max_clients lowered from 10000 to (\d+)/.exec(p.logs());
  expect(m).not.toBeNull();
  const fit = Number(m![1]);
  expect(fit).toBeLessThan(100);

  const socks: Awaited<ReturnType<typeof Bun.connect>>[] = [];
  cleanups.push(() => { for (const s of socks) s.end(); });
  for (let i = 0; i < fit; i++) socks.push(await Bun.connect({ hostname: "127.0.0.1", port: p.port, socket: { data() {} } }));
  const extra = await rawExchange(p.port, command("GET", "k"), (t) => t.includes("\r\n"));
  expect(extra.text).toBe("-ERR max number of clients reached\r\n");
  // Once a client leaves, its place is free again, and the backend is still reachable.
  socks.pop()!.end();
  let reply = "";
  for (let i = 0; i < 100 && reply !== "$5\r\nvalue\r\n"; i++) {
    reply = (await rawExchange(p.port, command("GET", "k"), (t) => t.includes("\r\n"))).text;
  }
  expect(reply).toBe("$5\r\nvalue\r\n");
});

test("batch_size bounds the commands in flight even when one read carries many more", async () => {
  const held: (() => void)[] = [];
  const a = fake((args, conn) => {
    if (args[0] !== "GET") return DEFAULT;
    held.push(() => conn.write(bulk(args[1])));
    return "";
  });
  const p = await proxyFor([a], { rest: "[performance]\nbatch_size = 4" });
  const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
  const pending = rawExchange(p.port, keys.map((k) => command("GET", k)).join(""), (t) => t.endsWith("$3\r\nk49\r\n"), 10_000);
  await waitFor(() => a.count("GET") === 4, "the first 4 GETs");
  await Bun.sleep(200);
  expect(a.count("GET")).toBe(4); // the other 46 wait in the proxy, not on the node
  // Answer whatever arrives until all 50 are done.
  const pump = setInterval(() => { for (const f of held.splice(0)) f(); }, 5);
  cleanups.push(() => clearInterval(pump));
  const r = await pending;
  expect(r.text).toBe(keys.map((k) => bulk(k)).join(""));
  expect(a.count("GET")).toBe(50);
});

// A paused socket hears nothing from its peer. Which interleaving leaves one behind depends on
// timing (Bun sees most of these closes), so the test makes many: ~3% of them stuck before the fix.
test("clients that disconnect while their reading is paused are all closed and counted out", async () => {
  const p = await proxyFor([fake((args) => (args[0] === "SET" ? "+OK\r\n" : DEFAULT))]);
  const c = client(p);
  const connected = async () => Number(/connected_clients:(\d+)/.exec(await c.info("clients"))![1]);
  const burst = Array.from({ length: 3000 }, (_, i) => command("SET", `key${i % 100}`, "x".repeat(40))).join("");
  for (let i = 0; i < 150; i++) {
    const sock = await Bun.connect({ hostname: "127.0.0.1", port: p.port, socket: { data() {} } });
    sock.write(burst);
    await Bun.sleep(2);
    sock.terminate();
  }
  let n = -1;
  for (let i = 0; i < 100 && n !== 1; i++) { await Bun.sleep(50); n = await connected(); }
  expect(n).toBe(1);
}, 60_000);

test("a node that falls behind stops the proxy reading its senders: what waits for it stays bounded", async () => {
  const held: (() => void)[] = [];
  const a = fake((args, conn) => {
    if (args[0] !== "SET") return DEFAULT;
    held.push(() => conn.write("+OK\r\n"));
    return "";
  });
  const p = await proxyFor([a]);
  const value = "v".repeat(1 << 20);
  const count = 40;
  // node:net queues what the socket cannot take yet (Bun's write does not).
  let text = "";
  const sock = connect({ host: "127.0.0.1", port: p.port });
  cleanups.push(() => sock.destroy());
  sock.on("data", (d) => { text += d.toString(); });
  sock.write(Array.from({ length: count }, (_, i) => command("SET", `k${i}`, value)).join(""));
  await waitFor(() => held.length >= 8, "8 MB of SETs to reach the node");
  await Bun.sleep(300);
  // 8 MiB may wait on a node connection; the SET that crosses it and the rest of that read pass.
  expect(held.length).toBeLessThan(count / 2);
  const pump = setInterval(() => { for (const f of held.splice(0)) f(); }, 5);
  cleanups.push(() => clearInterval(pump));
  await waitFor(() => text.length >= 5 * count, "every reply", 30_000);
  expect(text).toBe("+OK\r\n".repeat(count));
  expect(a.count("SET")).toBe(count);
}, 60_000);

test("client_write_timeout_ms: a client that takes none of its replies is closed; a slow reader is not", async () => {
  const big = "v".repeat(1 << 20);
  const p = await proxyFor([fake((args) => (args[0] === "GET" ? bulk(big) : DEFAULT))], { server: "client_write_timeout_ms = 500" });
  const c = client(p);
  const connected = async () => Number(/connected_clients:(\d+)/.exec(await c.info("clients"))![1]);
  // A slow reader: takes its 20 MB of replies in 256 KB sips, 100 ms apart (well past 500 ms in all).
  let got = 0;
  const slow = connect({ host: "127.0.0.1", port: p.port });
  cleanups.push(() => slow.destroy());
  slow.on("data", (d) => { got += d.length; slow.pause(); setTimeout(() => slow.resume(), 100); });
  slow.setNoDelay(true);
  slow.write(command("GET", "k").repeat(20));
  // A reader that never reads.
  const deaf = await Bun.connect({ hostname: "127.0.0.1", port: p.port, socket: { data() {} } });
  cleanups.push(() => deaf.end());
  deaf.pause();
  deaf.write(command("GET", "k").repeat(20));
  await waitFor(() => p.logs().includes("took none of its replies"), "the deaf client to be closed", 10_000);
  expect(await connected()).toBeGreaterThanOrEqual(2); // c and the slow reader
  await waitFor(() => got >= 20 * (big.length + 11), "the slow reader's replies", 30_000);
  expect(p.logs().match(/took none of its replies/g)!.length).toBe(1);
}, 60_000);

test("client_write_timeout_ms: sending does not count; a client that trickles bytes but never reads is closed", async () => {
  const big = "v".repeat(1 << 20);
  const p = await proxyFor([fake((args) => (args[0] === "GET" ? bulk(big) : DEFAULT))], { server: "client_write_timeout_ms = 500" });
  // 20 MB of replies it never reads, then an unfinished command, a byte every 100 ms.
  const closed = neverReads(p.port, command("GET", "k").repeat(20) + "*2\r\n$3\r\nGET\r\n$100000\r\n", "x", 100);
  await waitFor(closed, "the client that never reads to be closed", 10_000);
  expect(p.logs()).toContain("took none of its replies");
}, 30_000);

test("big replies count too: small GETs of a big value stop being sent once ~8 MiB of replies are owed", async () => {
  const value = "v".repeat(1 << 20);
  let hold = false;
  const held: (() => void)[] = [];
  const a = fake((args, conn) => {
    if (args[0] !== "GET") return DEFAULT;
    if (!hold) return bulk(value);
    held.push(() => conn.write(bulk(value)));
    return "";
  });
  const p = await proxyFor([a]);
  // Learn the reply size first: enough answered GETs for the running mean to forget the small
  // replies before them (a client's ready-check INFO, fanned out to the node). In RESP2, like the
  // raw readers below: each protocol has node connections of its own, each with its own estimate.
  const c = new Redis({ port: p.port, host: "127.0.0.1", maxRetriesPerRequest: 0, protocol: 2 });
  cleanups.push(() => c.disconnect());
  for (let i = 0; i < 32; i++) expect((await c.get("k"))!.length).toBe(value.length);
  hold = true;
  const readers = Array.from({ length: 4 }, () => {
    let got = 0;
    const s = connect({ host: "127.0.0.1", port: p.port });
    cleanups.push(() => s.destroy());
    s.on("data", (d) => { got += d.length; });
    s.write(command("GET", "k").repeat(10));
    return () => got;
  });
  await waitFor(() => held.length >= 8, "about 8 MB of replies owed");
  await Bun.sleep(300);
  // One client's read can cross the line; the other clients' GETs wait in the proxy.
  expect(held.length).toBeLessThan(20);
  const pump = setInterval(() => { for (const f of held.splice(0)) f(); }, 5);
  cleanups.push(() => clearInterval(pump));
  const each = 10 * (value.length + 12);
  await waitFor(() => readers.every((got) => got() >= each), "every reply", 30_000);
  expect(a.count("GET")).toBe(32 + 40);
}, 60_000);

// redis-py's pipeline.execute() and Jedis' sync() send every command before reading any reply.
// Redis keeps reading such a client; a proxy that stopped reading it once its replies backed up
// would leave it blocked in its own write for good.
test("a client that sends its whole pipeline before reading any reply gets every reply, in order", async () => {
  const a = fake((args) => (args[0] === "GET" ? bulk(`${args[1]}:`.padEnd(2048, "v")) : DEFAULT));
  const p = await proxyFor([a]);
  // 30 MB of commands and 60 MB of replies: far more than the socket buffers on either side hold.
  const keys = Array.from({ length: 30_000 }, (_, i) => `${i}`.padEnd(1000, "k"));
  const sock = connect({ host: "127.0.0.1", port: p.port });
  cleanups.push(() => sock.destroy());
  sock.pause();
  const chunks: Buffer[] = [];
  sock.on("data", (d: Buffer) => chunks.push(d));
  let sent = false;
  sock.write(keys.map((k) => command("GET", k)).join(""), () => { sent = true; });
  await waitFor(() => sent, "the client's write to complete before it reads", 30_000);
  sock.resume();
  const want = keys.map((k) => bulk(`${k}:`.padEnd(2048, "v"))).join("");
  let got = 0;
  await waitFor(() => (got = chunks.reduce((n, c) => n + c.length, 0)) >= want.length, "every reply", 30_000);
  expect(got).toBe(want.length);
  expect(Buffer.concat(chunks).toString() === want).toBe(true);
}, 60_000);

test("max_client_output_bytes: a client that keeps sending and never reads is closed at the limit; others go on", async () => {
  const value = "v".repeat(64 * 1024);
  const p = await proxyFor([fake((args) => (args[0] === "GET" ? bulk(value) : DEFAULT))], {
    rest: "[performance]\nmax_client_output_bytes = 8388608",
  });
  const other = client(p);
  const closed = neverReads(p.port, "", command("GET", "k").repeat(100), 5);
  await waitFor(closed, "the proxy to close the client that never reads", 30_000);
  expect(p.logs()).toContain("over max_client_output_bytes");
  expect(await statOf(other, "client_output_buffer_limit_disconnections")).toBe(1);
  expect(await other.get("k")).toBe(value);
}, 60_000);
