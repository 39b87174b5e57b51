// Cluster-wide commands, scripts and functions on every node, and the cluster façade, on a real cluster.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Cluster, Redis } from "ioredis";
import { redisCli, startCluster, waitClusterOk, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { exchange, pipeline, text } from "../helpers/resp-client.ts";
import { waitFor } from "../helpers/scripted.ts";

// Ports 8110-8115 (bus 18110-18115); proxies on 8191 and 8192.
const BASE = 8110;
const PROXY_PORT = 8191;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let client: Redis;
const nodes: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-8110" });
  // Failovers below take a few seconds: let commands wait for them.
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { cluster: "retry_timeout_ms = 15000" });
  client = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  for (let i = 0; i < 6; i++) nodes.push(new Redis({ port: BASE + i, host: "127.0.0.1" }));
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  for (const n of nodes) n.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

/** The nodes that are masters now (failovers below change them). */
async function masters(): Promise<Redis[]> {
  const roles = await Promise.all(nodes.map((n) => n.role().catch(() => ["down"])));
  return nodes.filter((_, i) => roles[i][0] === "master");
}

describe("keyspace commands over every master", () => {
  const keys = Array.from({ length: 500 }, (_, i) => `ks:${i}`);

  beforeAll(async () => {
    await client.flushall();
    await client.mset(...keys.flatMap((k) => [k, "v"]));
    await client.lpush("ks:list", "x");
    await client.set("ks:ttl", "v", "EX", 1000);
  });

  test("DBSIZE is the sum over the masters, and KEYS lists every key once", async () => {
    const sizes = await Promise.all((await masters()).map((m) => m.dbsize()));
    expect(sizes.filter((n) => n > 0).length).toBe(3);
    expect(await client.dbsize()).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(await client.dbsize()).toBe(502);
    expect((await client.keys("*")).sort()).toEqual([...keys, "ks:list", "ks:ttl"].sort());
    expect((await client.keys("ks:1?")).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `ks:1${i}`).sort());
  });

  test("SCAN returns every key exactly once, with MATCH, COUNT and TYPE kept", async () => {
    const seen: string[] = [];
    let cursor = "0", calls = 0;
    do {
      const [next, batch] = await client.scan(cursor, "COUNT", 37);
      seen.push(...batch);
      cursor = next;
      calls++;
    } while (cursor !== "0" && calls < 10_000);
    expect(seen.length).toBe(502);
    expect(new Set(seen).size).toBe(502);
    const lists: string[] = [];
    cursor = "0";
    do {
      const [next, batch] = await client.scan(cursor, "MATCH", "ks:*", "TYPE", "list");
      lists.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    expect(lists).toEqual(["ks:list"]);
    // ioredis' scanStream walks the same cursor.
    const streamed: string[] = [];
    await new Promise<void>((resolve, reject) => {
      client.scanStream({ match: "ks:4*", count: 100 }).on("data", (b: string[]) => streamed.push(...b)).on("end", resolve).on("error", reject);
    });
    expect(streamed.sort()).toEqual(keys.filter((k) => k.startsWith("ks:4")).sort());
    expect(client.scan("not-a-cursor")).rejects.toThrow("ERR invalid cursor");
  });

  test("RANDOMKEY, INFO keyspace, LASTSAVE answer for the whole cluster", async () => {
    for (let i = 0; i < 10; i++) expect(await client.exists((await client.randomkey())!)).toBe(1);
    const info = await client.info("keyspace");
    expect(info).toMatch(/^# Keyspace\r\ndb0:keys=502,expires=1,avg_ttl=\d+/);
    expect(await client.info()).toContain("db0:keys=502,");
    expect(await client.info("server")).not.toContain("Keyspace");
    const saves = await Promise.all((await masters()).map((m) => m.lastsave()));
    expect(await client.lastsave()).toBe(Math.min(...saves));
  });

  test("FLUSHDB and FLUSHALL (ASYNC, SYNC) empty every master", async () => {
    expect(await client.call("flushdb", "async")).toBe("OK");
    await waitFor(async () => (await client.dbsize()) === 0, "FLUSHDB ASYNC");
    await client.mset("a", 1, "b", 2, "c", 3);
    expect(await client.flushall("SYNC")).toBe("OK");
    expect(await client.dbsize()).toBe(0);
    expect(await client.randomkey()).toBeNull();
  });
});

describe("scripts and functions on every node", () => {
  const script = "return {KEYS[1], ARGV[1]}";

  test("SCRIPT LOAD reaches every master, EVALSHA runs for keys on any of them, EXISTS is the AND", async () => {
    const sha = await client.script("LOAD", script) as string;
    for (const m of await masters()) expect(await m.script("EXISTS", sha)).toEqual([1]);
    for (let i = 0; i < 30; i++) expect(await client.evalsha(sha, 1, `k${i}`, "a")).toEqual([`k${i}`, "a"]);
    expect(await client.script("EXISTS", sha, "0".repeat(40))).toEqual([1, 0]);
    // A script some master lacks does not exist for the cluster.
    const partial = "return 'partial'";
    const psha = await (await masters())[0].script("LOAD", partial) as string;
    expect(await client.script("EXISTS", psha)).toEqual([0]);
  });

  test("EVALSHA still runs after the script's node failed over to a replica that never saw it", async () => {
    const sha = await client.script("LOAD", "return redis.call('INCR', KEYS[1])") as string;
    const key = "fo:counter";
    expect(await client.evalsha(sha, 1, key)).toBe(1);
    // The replica of the key's master has no script cache of it (Redis does not replicate it).
    const slot = await client.cluster("KEYSLOT", key) as number;
    const owner = await ownerPort(slot);
    const replica = await replicaOf(owner);
    expect(await nodes[replica - BASE].script("EXISTS", sha)).toEqual([0]);
    expect(await nodes[replica - BASE].cluster("FAILOVER")).toBe("OK");
    await waitFor(async () => (await nodes[replica - BASE].role())[0] === "master", "failover", 15_000);
    await waitClusterOk(cluster.nodes.map((n) => n.port), 15_000);
    expect(await client.evalsha(sha, 1, key)).toBe(2);
    expect(await nodes[replica - BASE].script("EXISTS", sha)).toEqual([1]);
    expect(await nodes[replica - BASE].get(key)).toBe("2");
  }, 40_000);

  test("after SCRIPT FLUSH, NOSCRIPT is not healed: the client asked the nodes to forget", async () => {
    const sha = await client.script("LOAD", "return 7") as string;
    expect(await client.script("FLUSH")).toBe("OK");
    expect(await client.script("EXISTS", sha)).toEqual([0]);
    expect(client.evalsha(sha, 0)).rejects.toThrow("NOSCRIPT");
  });

  test("a script first run with EVAL is healed too; redis-py style LOAD-then-EVALSHA works", async () => {
    const body = "return ARGV[1] .. '!'";
    expect(await client.eval(body, 0, "hi")).toBe("hi!");
    const sha = new Bun.CryptoHasher("sha1").update(body).digest("hex");
    for (const m of await masters()) await m.script("FLUSH");
    expect(await client.evalsha(sha, 0, "again")).toBe("again!");
  });

  test("FUNCTION LOAD/LIST/FCALL/DELETE/FLUSH/DUMP/RESTORE over every master", async () => {
    const lib = "#!lua name=plib\nredis.register_function('pget', function(keys) return redis.call('GET', keys[1]) end)";
    expect(await client.call("FUNCTION", "FLUSH")).toBe("OK");
    expect(await client.call("FUNCTION", "LOAD", lib)).toBe("plib");
    for (const m of await masters()) expect(JSON.stringify(await m.call("FUNCTION", "LIST"))).toContain("plib");
    await client.mset("f1", "one", "f2", "two", "f3", "three");
    for (const k of ["f1", "f2", "f3"]) expect(await client.call("FCALL", "pget", 1, k)).toBe(await client.get(k));
    expect(JSON.stringify(await client.call("FUNCTION", "LIST"))).toContain("pget");
    const dump = await client.callBuffer("FUNCTION", "DUMP") as Buffer;
    // A master that lost the library (as a master added by resharding never had it) gets it back.
    await (await masters())[1].call("FUNCTION", "FLUSH");
    for (const k of ["f1", "f2", "f3"]) expect(await client.call("FCALL", "pget", 1, k)).toBe(await client.get(k));
    expect(await client.call("FUNCTION", "DELETE", "plib")).toBe("OK");
    for (const m of await masters()) expect(await m.call("FUNCTION", "LIST")).toEqual([]);
    expect(await client.call("FUNCTION", "RESTORE", dump)).toBe("OK");
    for (const m of await masters()) expect(JSON.stringify(await m.call("FUNCTION", "LIST"))).toContain("plib");
    expect(await client.call("FUNCTION", "FLUSH", "SYNC")).toBe("OK");
    expect(client.call("FCALL", "pget", 1, "f1")).rejects.toThrow("Function not found");
  });

  test("SCRIPT KILL stops a busy script on whichever master runs it, past the shared connection", async () => {
    for (const m of await masters()) await m.config("SET", "busy-reply-threshold", "50");
    const runner = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
    try {
      const busy = runner.eval("while true do end", 1, "busy:key").then(() => "finished", (e: Error) => e.message);
      // Until the script is busy, SCRIPT KILL says NOTBUSY; keep asking (bounded).
      let killed = "";
      for (let i = 0; i < 200 && killed !== "OK"; i++) {
        killed = await client.script("KILL").then(String, (e: Error) => e.message);
        if (killed !== "OK") await Bun.sleep(25);
      }
      expect(killed).toBe("OK");
      expect(await busy).toContain("killed");
      expect(await client.script("KILL").catch((e: Error) => e.message)).toStartWith("NOTBUSY");
      expect(await client.get("busy:key")).toBeNull(); // the node serves again
    } finally {
      runner.disconnect();
      for (const m of await masters()) await m.config("SET", "busy-reply-threshold", "5000");
    }
  });
});

describe("the cluster façade", () => {
  test("CLUSTER SLOTS/SHARDS/NODES/INFO/MYID name predixy alone, owning every slot", async () => {
    const slots = await client.call("CLUSTER", "SLOTS") as [number, number, [string, number, string]][];
    expect(slots.length).toBe(1);
    const [[from, to, [host, port, id]]] = slots;
    expect([from, to, host, port]).toEqual([0, 16383, "127.0.0.1", PROXY_PORT]);
    expect(id).toMatch(/^[0-9a-f]{40}$/);
    expect(await client.cluster("MYID")).toBe(id);
    expect(await client.cluster("NODES")).toBe(`${id} 127.0.0.1:${PROXY_PORT}@0 myself,master - 0 0 1 connected 0-16383\n`);
    const info = await client.cluster("INFO") as string;
    expect(info).toContain("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n");
    expect(info).toContain("cluster_known_nodes:1\r\n");
    const shards = JSON.stringify(await client.cluster("SHARDS"));
    expect(shards).toContain(`["slots",[0,16383],"nodes",[["id","${id}","port",${PROXY_PORT},"ip","127.0.0.1"`);
    expect(await client.cluster("KEYSLOT", "{user}:1")).toBe(5474);
    expect(await client.cluster("REPLICAS", id)).toEqual([]);
    expect(client.cluster("MEET", "1.2.3.4", "7000")).rejects.toThrow("not supported by proxy");
  });

  test("READONLY, READWRITE and ASKING are answered +OK by predixy, never reach the nodes, and leave the next commands alone", async () => {
    // Keys on every master: ASKING (or READONLY) must not change where any slot's command goes.
    const keys = Array.from({ length: 12 }, (_, i) => `rw:${i}`);
    const owners = new Set(await Promise.all(keys.map(async (k) => ownerPort(await client.cluster("KEYSLOT", k) as number))));
    expect(owners.size).toBe(3);
    const sent = async () => {
      let n = 0;
      for (const node of nodes) {
        const stats = await node.info("commandstats");
        for (const m of stats.matchAll(/^cmdstat_(?:asking|readonly|readwrite):calls=(\d+)/gm)) n += Number(m[1]);
      }
      return n;
    };
    const before = await sent();
    const cmds: string[][] = [];
    const want: string[] = [];
    for (const k of keys) {
      cmds.push(["ASKING"], ["SET", k, `a-${k}`], ["ASKING"], ["GET", k], ["READONLY"], ["SET", k, `r-${k}`], ["GET", k], ["READWRITE"], ["GET", k]);
      want.push("+OK\r\n", "+OK\r\n", "+OK\r\n", `$${k.length + 2}\r\na-${k}\r\n`, "+OK\r\n", "+OK\r\n", `$${k.length + 2}\r\nr-${k}\r\n`, "+OK\r\n", `$${k.length + 2}\r\nr-${k}\r\n`);
    }
    // One pipeline: predixy's own +OKs keep their place among the nodes' replies.
    expect((await exchange(PROXY_PORT, pipeline(cmds), cmds.length)).map(text)).toEqual(want);
    // Through ioredis too, one command at a time.
    await client.del("rw:n");
    expect(await client.call("ASKING")).toBe("OK");
    expect(await client.get(keys[0])).toBe(`r-${keys[0]}`);
    expect(await client.call("READONLY")).toBe("OK");
    expect(await client.incr("rw:n")).toBe(1);
    expect(await client.call("READWRITE")).toBe("OK");
    expect(await client.incr("rw:n")).toBe(2);
    expect(await sent()).toBe(before);
  });

  test("COUNTKEYSINSLOT and GETKEYSINSLOT are answered by the slot's owner", async () => {
    await client.set("{cks}:a", 1);
    await client.set("{cks}:b", 2);
    const slot = await client.cluster("KEYSLOT", "{cks}") as number;
    expect(await client.cluster("COUNTKEYSINSLOT", slot)).toBe(2);
    expect((await client.cluster("GETKEYSINSLOT", slot, 10) as string[]).sort()).toEqual(["{cks}:a", "{cks}:b"]);
    expect(client.cluster("COUNTKEYSINSLOT", 16384)).rejects.toThrow("ERR Invalid slot");
  });

  test("an ioredis Cluster pointed at predixy works and never learns the nodes' addresses", async () => {
    const rc = new Cluster([{ host: "127.0.0.1", port: PROXY_PORT }], { redisOptions: { maxRetriesPerRequest: 0 } });
    try {
      await rc.set("io:a", "1");
      await rc.set("io:b", "2");
      expect(await rc.get("io:a")).toBe("1");
      // A cross-slot MGET a real cluster would refuse: predixy splits it.
      expect(await rc.mget("io:a", "io:b", "io:none")).toEqual(["1", "2", null]);
      expect(await rc.eval("return KEYS[1]", 1, "io:a")).toBe("io:a");
      expect(rc.nodes("all").map((n) => n.options.port)).toEqual([PROXY_PORT]);
    } finally {
      rc.disconnect();
    }
  });

  test("redis-py's RedisCluster (Debian's python3-redis) pointed at predixy works", async () => {
    const program = `
import sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=${PROXY_PORT}, decode_responses=True)
print(sorted(n.port for n in rc.get_nodes()))
rc.set("py:a", "1")
print(rc.get("py:a"))
print(rc.mset_nonatomic({"py:b": "2", "py:c": "3"}))
print(rc.mget_nonatomic(["py:a", "py:b", "py:c", "py:none"]))
p = rc.pipeline()
p.incr("py:n")
p.incr("py:n")
print(p.execute())
lock = rc.lock("py:lock", timeout=5)
print(lock.acquire(blocking=False), lock.release() is None)
`;
    const proc = Bun.spawn(["/usr/bin/python3", "-c", program], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    // redis-py logs every error reply; the only one here is the NOSCRIPT its Lock expects once
    // (it runs EVALSHA first, then SCRIPT LOAD and EVALSHA again, as against Redis).
    expect(new Set(err.match(/\b\w*Error\b/g) ?? [])).toEqual(new Set(["ResponseError", "NoScriptError"]));
    expect(out.trim().split("\n")).toEqual([`[${PROXY_PORT}]`, "1", "[True, True]", "['1', '2', '3', None]", "[1, 2]", "True True"]);
  });

  test("announce_host/announce_port are what the façade advertises (behind NAT or a load balancer)", async () => {
    const other = await startProxy(8192, [cluster.entryPoints[0]], { server: `announce_host = "10.9.8.7"\nannounce_port = 6380` });
    const c = new Redis({ port: 8192, host: "127.0.0.1", maxRetriesPerRequest: 0 });
    try {
      const [[, , [host, port, id]]] = await c.call("CLUSTER", "SLOTS") as [number, number, [string, number, string]][];
      expect([host, port]).toEqual(["10.9.8.7", 6380]);
      expect(await c.cluster("NODES")).toStartWith(`${id} 10.9.8.7:6380@0 myself,master`);
    } finally {
      c.disconnect();
      await other.stop();
    }
  });
});

/** The port of the master serving `slot`, by the nodes' own view. */
async function ownerPort(slot: number): Promise<number> {
  const slots = await nodes[0].call("CLUSTER", "SLOTS") as [number, number, [string, number]][];
  const range = slots.find(([a, b]) => slot >= a && slot <= b)!;
  return range[2][1];
}

/** The port of a replica of the master on `port`. */
async function replicaOf(port: number): Promise<number> {
  const id = await redisCli(port, ["cluster", "myid"]);
  const lines = (await redisCli(port, ["cluster", "nodes"])).split("\n");
  const line = lines.find((l) => l.split(" ")[3] === id)!;
  return Number(line.split(" ")[1].split(":")[1].split("@")[0]);
}
