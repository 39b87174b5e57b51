// A plain (non-cluster) client uses a real Redis Cluster through predixy as if it were one server.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { rawExchange, startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { command } from "../helpers/fake-node.ts";
import { slotOf } from "../../src/cluster/key-slot.ts";

const BASE = 7400;
const PROXY_PORT = 7490;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let client: Redis;

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: "/tmp/predixy-test-7400" });
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]]);
  client = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

/** The port of the master serving `key`, asked of the cluster itself. */
async function ownerPort(key: string): Promise<number> {
  const s = slot(key);
  const out = await redisCli(BASE, ["cluster", "slots"]);
  const lines = out.split("\n");
  // redis-cli prints each range as: start, end, ip, port, id (one value per line).
  for (let i = 0; i + 3 < lines.length; i++) {
    const start = Number(lines[i]), end = Number(lines[i + 1]);
    if (/^\d+$/.test(lines[i]) && /^\d+$/.test(lines[i + 1]) && lines[i + 2].includes(".") && s >= start && s <= end) {
      return Number(lines[i + 3]);
    }
  }
  throw new Error(`no owner for slot ${s}`);
}

describe("data types through the proxy", () => {
  test("strings", async () => {
    expect(await client.set("str:a", "hello")).toBe("OK");
    expect(await client.get("str:a")).toBe("hello");
    expect(await client.append("str:a", " world")).toBe(11);
    expect(await client.strlen("str:a")).toBe(11);
    expect(await client.incr("str:n")).toBe(1);
    expect(await client.incrby("str:n", 41)).toBe(42);
    expect(await client.getrange("str:a", 0, 4)).toBe("hello");
    expect(await client.setnx("str:a", "x")).toBe(0);
    expect(await client.get("str:missing")).toBeNull();
    expect(await client.getdel("str:n")).toBe("42");
    expect(await client.exists("str:n")).toBe(0);
  });

  test("binary-safe values", async () => {
    const value = Buffer.from([0, 13, 10, 255, 36, 42, 13, 10]);
    await client.set("bin:k", value);
    expect(Buffer.compare(await client.getBuffer("bin:k") as Buffer, value)).toBe(0);
  });

  test("hashes", async () => {
    expect(await client.hset("h:1", { f1: "v1", f2: "v2" })).toBe(2);
    expect(await client.hget("h:1", "f1")).toBe("v1");
    expect(await client.hgetall("h:1")).toEqual({ f1: "v1", f2: "v2" });
    expect(await client.hincrby("h:1", "n", 5)).toBe(5);
    expect((await client.hkeys("h:1")).sort()).toEqual(["f1", "f2", "n"]);
    expect(await client.hdel("h:1", "f2")).toBe(1);
    expect(await client.hlen("h:1")).toBe(2);
  });

  test("lists", async () => {
    expect(await client.rpush("l:1", "a", "b", "c")).toBe(3);
    expect(await client.lpush("l:1", "z")).toBe(4);
    expect(await client.lrange("l:1", 0, -1)).toEqual(["z", "a", "b", "c"]);
    expect(await client.lpop("l:1")).toBe("z");
    expect(await client.rpop("l:1")).toBe("c");
    expect(await client.llen("l:1")).toBe(2);
    expect(await client.lindex("l:1", 1)).toBe("b");
  });

  test("sets", async () => {
    expect(await client.sadd("s:1", "a", "b", "c")).toBe(3);
    expect(await client.sismember("s:1", "b")).toBe(1);
    expect((await client.smembers("s:1")).sort()).toEqual(["a", "b", "c"]);
    expect(await client.scard("s:1")).toBe(3);
    expect(await client.srem("s:1", "a")).toBe(1);
  });

  test("sorted sets", async () => {
    expect(await client.zadd("z:1", "1", "one", "2", "two", "3", "three")).toBe(3);
    expect(await client.zrange("z:1", "0", "-1")).toEqual(["one", "two", "three"]);
    expect(await client.zscore("z:1", "two")).toBe("2");
    expect(await client.zrangebyscore("z:1", 2, "+inf", "WITHSCORES")).toEqual(["two", "2", "three", "3"]);
    expect(await client.zincrby("z:1", 10, "one")).toBe("11");
    expect(await client.zrank("z:1", "one")).toBe(2);
  });

  test("streams", async () => {
    const id = await client.xadd("x:1", "*", "f", "v");
    expect(id).toMatch(/^\d+-\d+$/);
    expect(await client.xlen("x:1")).toBe(1);
    const read = await client.xread("COUNT", 10, "STREAMS", "x:1", "0");
    expect(read).toEqual([["x:1", [[id!, ["f", "v"]]]]]);
    expect(await client.xrange("x:1", "-", "+")).toEqual([[id!, ["f", "v"]]]);
    // A group and a consumer named like the BLOCK option are just names.
    expect(await client.xgroup("CREATE", "x:1", "block", "$")).toBe("OK");
    expect(await client.call("XREADGROUP", "GROUP", "block", "block", "COUNT", "1", "STREAMS", "x:1", ">")).toBeNull();
    expect(await client.call("XREADGROUP", "GROUP", "block", "c", "BLOCK", "10", "STREAMS", "x:1", ">")).toBeNull();
  });

  test("expiry, hyperloglog, bitmaps, geo", async () => {
    await client.set("e:1", "v");
    expect(await client.expire("e:1", 100)).toBe(1);
    expect(await client.ttl("e:1")).toBeGreaterThan(0);
    expect(await client.persist("e:1")).toBe(1);
    expect(await client.pfadd("hll:1", "a", "b", "c")).toBe(1);
    expect(await client.pfcount("hll:1")).toBe(3);
    expect(await client.setbit("bits:1", 7, 1)).toBe(0);
    expect(await client.bitcount("bits:1")).toBe(1);
    expect(await client.geoadd("geo:1", 13.361389, 38.115556, "Palermo")).toBe(1);
    expect(await client.geopos("geo:1", "Palermo")).toHaveLength(1);
  });

  test("scripts route by their first key", async () => {
    expect(await client.eval("return redis.call('set', KEYS[1], ARGV[1])", 1, "lua:k", "v")).toBe("OK");
    expect(await client.get("lua:k")).toBe("v");
    expect(await client.call("EVAL", "return 7", "0")).toBe(7);
  });
});

describe("routing", () => {
  test("each key is stored on the master that owns its slot", async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `route:${i}`);
    for (const k of keys) await client.set(k, `v-${k}`);
    const owners = new Set<number>();
    for (const k of keys) {
      const port = await ownerPort(k);
      owners.add(port);
      expect(await redisCli(port, ["get", k])).toBe(`v-${k}`);
    }
    expect(owners.size).toBe(3);
  });

  test("the proxy's slot function agrees with the cluster's CLUSTER KEYSLOT", async () => {
    const node = new Redis({ port: BASE, host: "127.0.0.1" });
    try {
      const keys = ["", "foo", "{user}.a", "a{b}c", "{}x", "{}}", "{{a}}", "x{", "}{a}", "é{ü}", "k".repeat(300)];
      for (let i = 0; i < 200; i++) keys.push(`k${i}{${i % 7 ? i : ""}}${i % 3 ? "}" : ""}`);
      for (const k of keys) expect([k, slot(k)]).toEqual([k, Number(await node.call("cluster", "keyslot", k))]);
    } finally {
      node.disconnect();
    }
  });

  test("keys sharing a hash tag can be used together", async () => {
    expect(slot("{user:1}:a")).toBe(slot("{user:1}:b"));
    expect(await client.mset("{user:1}:a", "1", "{user:1}:b", "2")).toBe("OK");
    expect(await client.mget("{user:1}:a", "{user:1}:b")).toEqual(["1", "2"]);
    expect(await client.rename("{user:1}:a", "{user:1}:c")).toBe("OK");
    expect(await client.get("{user:1}:c")).toBe("1");
  });

  test("multi-key commands whose meaning needs one node get Redis' CROSSSLOT error across slots", async () => {
    expect(slot("cross:a")).not.toBe(slot("cross:b"));
    await client.set("cross:a", "1");
    await client.sadd("cross:s1", "x");
    const refused: [string, ...string[]][] = [
      ["MSETNX", "cross:a", "1", "cross:b", "2"], ["RENAME", "cross:a", "cross:b"], ["SUNIONSTORE", "cross:a", "cross:s1", "cross:b"],
      ["SMOVE", "cross:s1", "cross:b", "x"], ["LMOVE", "cross:a", "cross:b", "LEFT", "LEFT"], ["BITOP", "AND", "cross:a", "cross:b"],
      ["SINTERCARD", "2", "cross:s1", "cross:b"], ["ZUNIONSTORE", "cross:a", "2", "cross:s1", "cross:b"], ["COPY", "cross:a", "cross:b"],
      ["EVAL", "return 1", "2", "cross:a", "cross:b"], ["PFMERGE", "cross:a", "cross:b"],
    ];
    for (const [cmd, ...args] of refused) await expect(client.call(cmd, ...args)).rejects.toThrow(/^CROSSSLOT Keys in request don't hash to the same slot/);
    // Nothing was split and half applied: MSETNX set neither key.
    expect(await client.exists("cross:b")).toBe(0);
    expect(await client.get("cross:a")).toBe("1");
    // Sharing a slot, they run.
    expect(await client.msetnx("{cross}a", "1", "{cross}b", "2")).toBe(1);
  });

  test("10,000 pipelined commands across all nodes are answered in order", async () => {
    const p = client.pipeline();
    for (let i = 0; i < 10_000; i++) {
      if (i % 2 === 0) p.set(`burst:${i}`, `v${i}`);
      else p.get(`burst:${i - 1}`);
    }
    const results = await p.exec();
    expect(results).toHaveLength(10_000);
    for (let i = 0; i < 10_000; i++) {
      const [err, value] = results![i];
      expect(err).toBeNull();
      expect(value).toBe(i % 2 === 0 ? "OK" : `v${i - 1}`);
    }
  });

  test("with several connections per node, each client's commands still run in the order sent", async () => {
    const pooled = await startProxy(PROXY_PORT + 1, [cluster.entryPoints[0]], { rest: "[pool]\nsize = 4\nmin_idle = 4" });
    const c = new Redis({ port: PROXY_PORT + 1, host: "127.0.0.1" });
    try {
      const p = c.pipeline();
      for (let i = 0; i < 2000; i++) p.incr("order:n").get("order:n");
      const res = await p.exec();
      for (let i = 0; i < 2000; i++) {
        expect(res![2 * i][1]).toBe(i + 1);
        expect(res![2 * i + 1][1]).toBe(String(i + 1));
      }
    } finally {
      c.disconnect();
      await pooled.stop();
    }
  });

  test("many clients at once each get their own replies", async () => {
    const clients = Array.from({ length: 20 }, () => new Redis({ port: PROXY_PORT, host: "127.0.0.1" }));
    try {
      await Promise.all(clients.map(async (c, n) => {
        const p = c.pipeline();
        for (let i = 0; i < 200; i++) p.set(`mc:${n}:${i}`, `${n}-${i}`).get(`mc:${n}:${i}`);
        const res = await p.exec();
        for (let i = 0; i < 200; i++) expect(res![2 * i + 1][1]).toBe(`${n}-${i}`);
      }));
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});

describe("large values and slow readers", () => {
  test("a 20 MB value goes through intact in both directions", async () => {
    const value = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31 + (i >> 10)) & 0xff;
    expect(await client.set("big:20mb", value)).toBe("OK");
    const back = await client.getBuffer("big:20mb");
    expect(back!.length).toBe(value.length);
    expect(Buffer.compare(back!, value)).toBe(0);
    expect(await client.strlen("big:20mb")).toBe(value.length);
  });

  test("a client that stops reading does not hold up others, and later gets every reply in order", async () => {
    const value = "x".repeat(256 * 1024);
    await client.set("slow:v", value);
    const count = 200; // 50 MB of replies, far more than the socket buffers hold
    const total = count * (`$${value.length}\r\n`.length + value.length + 2);
    let received = 0;
    let text = "";
    const { promise: allIn, resolve } = Promise.withResolvers<void>();
    const slow = await Bun.connect({
      hostname: "127.0.0.1", port: PROXY_PORT,
      socket: {
        data(_s, d) {
          received += d.length;
          if (text.length < 64) text += new TextDecoder().decode(d.subarray(0, 64));
          if (received >= total) resolve();
        },
      },
    });
    slow.pause();
    slow.write("*2\r\n$3\r\nGET\r\n$6\r\nslow:v\r\n".repeat(count));
    // While the slow client reads nothing, another client is served normally.
    for (let i = 0; i < 50; i++) expect(await client.set(`slow:other:${i}`, "ok")).toBe("OK");
    expect(await client.get("slow:other:49")).toBe("ok");
    slow.resume();
    await allIn;
    slow.end();
    expect(received).toBe(total);
    expect(text.startsWith(`$${value.length}\r\nxxx`)).toBe(true);
  });
});

describe("the proxy's own answers", () => {
  test("PING, ECHO, SELECT 0, INFO", async () => {
    expect(await client.ping()).toBe("PONG");
    expect(await client.echo("hi")).toBe("hi");
    expect(await client.select(0)).toBe("OK");
    await expect(client.select(1)).rejects.toThrow(/SELECT/);
    expect(await client.info("server")).toContain("predixy_version:");
    // What redis-cli --stat reads: the proxy's resident memory, and no blocked clients.
    const rss = Number(/used_memory:(\d+)/.exec(await client.info("memory"))![1]);
    expect(rss).toBeGreaterThan(1 << 20);
    expect(await client.info("clients")).toContain("blocked_clients:0\r\n");
  });

  test("an unknown command gets Redis' error and the connection stays usable", async () => {
    await expect(client.call("NOSUCHCMD", "a")).rejects.toThrow(/unknown command 'NOSUCHCMD'/);
    expect(await client.ping()).toBe("PONG");
  });

  test("unknown-command errors, CLIENT SETNAME and SELECT checks match a Redis node byte for byte", async () => {
    const cases = [
      command("FOO", "a", "b", "c", "d", "e"), command("FOO", "x".repeat(200)), command("FOO", "a".repeat(100), "b".repeat(100), "c"),
      command("FO\r\nO", "a\nb", "c\rd"), command("FOO", "a\0b", "c"), command("x".repeat(300), "y"),
      command("CLIENT", "SETNAME", "a\x01b"), command("CLIENT", "SETNAME", "a b"), command("CLIENT", "SETNAME", "ok-name~!"),
      ...["0", "00", "abc", "1", "-0", " 0", "-3"].map((db) => command("SELECT", db)),
    ];
    for (const c of cases) {
      const direct = await rawExchange(BASE, c, (t) => t.endsWith("\r\n"));
      const proxied = await rawExchange(PROXY_PORT, c, (t) => t.endsWith("\r\n"));
      expect(proxied.text).toBe(direct.text);
    }
  });

  test("CLIENT INFO has every field a Redis node's has, in the same order, and describes the caller", async () => {
    const names = (line: string) => line.trim().split(" ").map((f) => f.split("=")[0]);
    const mine = String(await client.call("CLIENT", "INFO"));
    expect(names(mine)).toEqual(names(await redisCli(BASE, ["client", "info"])));
    const field = (k: string) => new RegExp(`(?:^| )${k}=(\\S*)`).exec(mine)![1];
    expect(field("id")).toBe(String(await client.call("CLIENT", "ID")));
    expect(field("addr")).toBe(`127.0.0.1:${client.stream.localPort}`);
    expect(field("laddr")).toBe(`127.0.0.1:${PROXY_PORT}`);
  });

  test("wrong arity is refused before reaching a node", async () => {
    await expect(client.call("GET")).rejects.toThrow(/wrong number of arguments for 'get'/);
  });

  test("commands not supported yet are refused, not hung", async () => {
    await expect(client.call("MONITOR")).rejects.toThrow(/not supported by proxy/);
    await expect(client.call("WAITAOF", "1", "0", "0")).rejects.toThrow(/not supported by proxy/);
    expect(await client.ping()).toBe("PONG");
  });

  test("CLIENT TRACKING, CACHING, REPLY, PAUSE, UNBLOCK are refused with their reason; the connection goes on", async () => {
    const tracking = "client-side caching needs the nodes' invalidation messages routed to the client that read each key, which the shared connections cannot tell apart";
    const caching = "client-side caching (CLIENT TRACKING) is not supported by the proxy";
    const cases: [string[], string][] = [
      [["CLIENT", "TRACKING", "on"], tracking],
      [["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:"], tracking],
      [["CLIENT", "CACHING", "yes"], caching],
      [["CLIENT", "TRACKINGINFO"], caching],
      [["CLIENT", "GETREDIR"], caching],
      [["CLIENT", "REPLY", "OFF"], "replies are written by the proxy in order; they cannot be switched off"],
      [["CLIENT", "PAUSE", "100"], "it would pause the nodes for every client of the proxy; run it on the nodes"],
      [["CLIENT", "UNBLOCK", "1"], "not supported by the proxy: the blocked call runs on a connection of its own"],
    ];
    for (const [cmd, why] of cases) {
      const name = `${cmd[0]} ${cmd[1]}`;
      expect(await client.call(cmd[0], ...cmd.slice(1)).then(() => "accepted", (e: Error) => e.message))
        .toBe(`ERR command '${name}' is not supported by proxy (${why})`);
      expect(await client.set("track:k", name)).toBe("OK");
      expect(await client.get("track:k")).toBe(name);
    }
    // A RESP3 client (the one client-side caching is for) gets the same refusal, then its GET's reply: no push between.
    const tail = `-ERR command 'CLIENT TRACKING' is not supported by proxy (${tracking})\r\n$14\r\nCLIENT UNBLOCK\r\n`;
    const r = await rawExchange(PROXY_PORT, command("HELLO", "3") + command("CLIENT", "TRACKING", "on") + command("GET", "track:k"),
      (t) => t.endsWith("$14\r\nCLIENT UNBLOCK\r\n"));
    expect(r.text).toStartWith("%");
    expect(r.text).toEndWith(tail);
  });

  test("transaction commands out of place get Redis' own answers; RESET ends a transaction", async () => {
    const replies = [
      "+OK\r\n", "-ERR MULTI calls can not be nested\r\n", "+QUEUED\r\n", "+OK\r\n",
      "-ERR EXEC without MULTI\r\n", "-ERR DISCARD without MULTI\r\n", "+OK\r\n",
      "+OK\r\n", "+QUEUED\r\n", "+RESET\r\n", "+OK\r\n", "$1\r\n4\r\n",
    ].join("");
    const r = await rawExchange(PROXY_PORT, [
      command("MULTI"), command("MULTI"), command("SET", "tx:a", "2"), command("DISCARD"),
      command("EXEC"), command("DISCARD"), command("UNWATCH"),
      command("MULTI"), command("SET", "tx:b", "3"), command("RESET"), command("SET", "tx:d", "4"), command("GET", "tx:d"),
    ].join(""), (t) => t.length >= replies.length);
    expect(r.text).toBe(replies);
    expect(await client.exists("tx:a") + await client.exists("tx:b")).toBe(0);
  });
});

describe("redis-cli and raw protocol", () => {
  test("redis-cli works against the proxy", async () => {
    expect(await redisCli(PROXY_PORT, ["set", "cli:k", "v1"])).toBe("OK");
    expect(await redisCli(PROXY_PORT, ["get", "cli:k"])).toBe("v1");
  });

  test("inline commands work as with Redis", async () => {
    const r = await rawExchange(PROXY_PORT, "SET inline:k \"a b\"\r\nGET inline:k\r\n", (s) => s.endsWith("$3\r\na b\r\n"));
    expect(r.text).toBe("+OK\r\n$3\r\na b\r\n");
  });

  test("a protocol error closes that client only, after earlier replies", async () => {
    const other = new Redis({ port: PROXY_PORT, host: "127.0.0.1" });
    try {
      await other.set("pe:k", "still-here");
      const r = await rawExchange(PROXY_PORT, "*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n", () => false, 10_000);
      expect(r.text).toBe("+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
      expect(r.closed).toBe(true);
      expect(await other.get("pe:k")).toBe("still-here");
    } finally {
      other.disconnect();
    }
  });

  test("QUIT answers OK and closes", async () => {
    const r = await rawExchange(PROXY_PORT, "QUIT\r\n", () => false, 10_000);
    expect(r).toEqual({ text: "+OK\r\n", closed: true });
  });
});
