// Transactions, blocking calls and WAIT on pinned connections, against a real cluster with replicas.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { exchange, pipeline, text } from "../helpers/resp-client.ts";
import { waitFor } from "../helpers/scripted.ts";

// Ports 8120-8125 (bus 18120-18125); proxies on 8193 and 8194.
const BASE = 8120;
const PROXY_PORT = 8193;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let client: Redis;
const opened: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-8120" });
  // CLIENT KILL is in the default deny list; this proxy allows it.
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { rest: "[commands]\ndeny = []" });
  client = connect();
}, 60_000);

afterAll(async () => {
  for (const c of opened) c.disconnect();
  await proxy?.stop();
  await cluster?.stop();
});

function connect(port = PROXY_PORT): Redis {
  const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  opened.push(c);
  return c;
}

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };

/** Port of the master serving `s`, as the nodes see it. */
async function ownerPort(s: number): Promise<number> {
  const node = connect(BASE);
  const slots = await node.call("CLUSTER", "SLOTS") as [number, number, [string, number]][];
  node.disconnect();
  const r = slots.find(([a, b]) => s >= a && s <= b);
  if (!r) throw new Error(`no owner for slot ${s}`);
  return r[2][1];
}

/** The masters' ports, and their node ids. */
async function masterIds(): Promise<Record<number, string>> {
  const ids: Record<number, string> = {};
  for (let p = BASE; p < BASE + 6; p++) {
    if (/role:master/.test(await redisCli(p, ["info", "replication"]))) ids[p] = await redisCli(p, ["cluster", "myid"]);
  }
  return ids;
}

/** Moves slot `s` (empty, or with `keys`) from its owner to another master, as redis-cli --cluster does. */
async function moveSlot(s: number, keys: string[] = []): Promise<number> {
  const from = await ownerPort(s);
  const ids = await masterIds();
  const ports = Object.keys(ids).map(Number);
  const to = ports.find((p) => p !== from)!;
  await redisCli(to, ["cluster", "setslot", String(s), "importing", ids[from]]);
  await redisCli(from, ["cluster", "setslot", String(s), "migrating", ids[to]]);
  for (const k of keys) await redisCli(from, ["migrate", "127.0.0.1", String(to), k, "0", "5000"]);
  for (const p of [to, from, ...ports.filter((p) => p !== to && p !== from)]) await redisCli(p, ["cluster", "setslot", String(s), "node", ids[to]]);
  return to;
}

/** How many of a node's connections are blocked in a call (flag b in its CLIENT LIST). */
async function blockedOn(port: number): Promise<number> {
  return (await redisCli(port, ["client", "list"])).split("\n").filter((l) => /\bflags=\w*b/.test(l)).length;
}

describe("transactions", () => {
  test("MULTI … EXEC runs on the node of the first key; queued commands answer +QUEUED", async () => {
    await client.set("{t}n", "1");
    const replies = await exchange(PROXY_PORT, pipeline([["MULTI"], ["INCR", "{t}n"], ["PING"], ["GET", "{t}n"], ["EXEC"]]), 5);
    expect(replies.map(text)).toEqual(["+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*3\r\n:2\r\n+PONG\r\n$1\r\n2\r\n"]);
  });

  test("a pipeline mixing commands with a transaction keeps reply order, and later commands see its effect", async () => {
    const cmds = [["SET", "{p}x", "a"], ["GET", "{p}x"], ["MULTI"], ["APPEND", "{p}x", "b"], ["EXEC"], ["GET", "{p}x"], ["SET", "other", "1"], ["GET", "other"]];
    const replies = (await exchange(PROXY_PORT, pipeline(cmds), cmds.length)).map(text);
    expect(replies).toEqual(["+OK\r\n", "$1\r\na\r\n", "+OK\r\n", "+QUEUED\r\n", "*1\r\n:2\r\n", "$2\r\nab\r\n", "+OK\r\n", "$1\r\n1\r\n"]);
  });

  test("WATCH: EXEC answers nil when another client changed the key, and runs when nobody did", async () => {
    const other = connect();
    await client.set("{w}k", "0");
    await client.watch("{w}k");
    await other.set("{w}k", "changed");
    expect(await client.multi().set("{w}k", "mine").exec()).toBeNull();
    expect(await client.get("{w}k")).toBe("changed");
    await client.watch("{w}k");
    expect(await client.multi().set("{w}k", "mine").exec()).toEqual([[null, "OK"]]);
    expect(await client.get("{w}k")).toBe("mine");
  });

  test("DISCARD drops the queued commands", async () => {
    await client.set("{d}k", "before");
    const replies = (await exchange(PROXY_PORT, pipeline([["MULTI"], ["SET", "{d}k", "after"], ["DISCARD"], ["GET", "{d}k"]]), 4)).map(text);
    expect(replies).toEqual(["+OK\r\n", "+QUEUED\r\n", "+OK\r\n", "$6\r\nbefore\r\n"]);
  });

  test("a transaction spanning two nodes is refused and nothing of it runs", async () => {
    const a = "span:a";
    const home = await ownerPort(slot(a));
    const far: string[] = [];
    for (let i = 0; i < 20 && far.length === 0; i++) if ((await ownerPort(slot(`span:z${i}`))) !== home) far.push(`span:z${i}`);
    expect(far.length).toBe(1);
    await client.del(a, far[0]);
    const replies = (await exchange(PROXY_PORT, pipeline([["MULTI"], ["SET", a, "1"], ["SET", far[0], "1"], ["EXEC"], ["EXISTS", a, far[0]]]), 5)).map(text);
    expect(replies[1]).toBe("+QUEUED\r\n");
    expect(replies[2]).toStartWith("-ERR command not queued: its key is on another cluster node");
    expect(replies[3]).toBe("-EXECABORT Transaction discarded because of previous errors.\r\n");
    expect(replies[4]).toBe(":0\r\n");
  });

  test("WATCH of keys on two nodes is refused with the proxy's reason; the first WATCH holds and the connection goes on", async () => {
    const a = "wn:a";
    const home = await ownerPort(slot(a));
    let far = "";
    for (let i = 0; i < 20 && !far; i++) if ((await ownerPort(slot(`wn:z${i}`))) !== home) far = `wn:z${i}`;
    expect(far).not.toBe("");
    const c = connect(), other = connect();
    const refusal = (p: Promise<unknown>) => p.then(() => "accepted", (e: Error) => e.message);
    await client.mset(a, "0", far, "0");
    // One WATCH naming both: the cluster's own answer, and nothing is held.
    expect(await refusal(c.watch(a, far))).toBe("CROSSSLOT Keys in request don't hash to the same slot");
    expect(await c.get(far)).toBe("0");
    // A second WATCH on another node than the first's.
    expect(await c.watch(a)).toBe("OK");
    expect(await refusal(c.watch(far))).toBe(
      "ERR WATCH of keys on several cluster nodes is not supported by proxy (a transaction runs on one node: use hash tags)");
    // As on Redis, a refused WATCH leaves the earlier one in force: EXEC sees the other client's write.
    await other.set(a, "changed");
    expect(await c.multi().set(a, "mine").exec()).toBeNull();
    expect(await client.get(a)).toBe("changed");
    // The transaction is over; the connection serves both nodes and runs the next one.
    expect(await c.multi().set(a, "mine").get(a).exec()).toEqual([[null, "OK"], [null, "mine"]]);
    expect(await c.set(far, "1")).toBe("OK");
    expect(await client.mget(a, far)).toEqual(["mine", "1"]);
  });

  test("keys of one node but different slots: the node's own CROSSSLOT at EXEC, nothing applied", async () => {
    const home = await ownerPort(slot("xs:a"));
    let same = "";
    for (let i = 0; i < 500 && !same; i++) if (slot(`xs:b${i}`) !== slot("xs:a") && (await ownerPort(slot(`xs:b${i}`))) === home) same = `xs:b${i}`;
    const replies = (await exchange(PROXY_PORT, pipeline([["MULTI"], ["SET", "xs:a", "1"], ["SET", same, "1"], ["EXEC"], ["EXISTS", "xs:a", same]]), 5)).map(text);
    expect(replies[3]).toStartWith("-CROSSSLOT");
    expect(replies[4]).toBe(":0\r\n");
  });

  test("ioredis multi() and redis-py pipeline(transaction=True) work unchanged", async () => {
    expect(await client.multi().set("{lib}a", "1").incr("{lib}a").get("{lib}a").exec()).toEqual([[null, "OK"], [null, 2], [null, "2"]]);
    const program = `
import redis
r = redis.Redis(host="127.0.0.1", port=${PROXY_PORT}, decode_responses=True)
p = r.pipeline(transaction=True)
p.set("{py}a", "1").incr("{py}a").get("{py}a")
print(p.execute())
with r.pipeline() as p:
    p.watch("{py}a")
    v = int(p.get("{py}a"))
    p.multi()
    p.set("{py}a", v + 10)
    print(p.execute())
print(r.get("{py}a"))
`;
    const proc = Bun.spawn(["/usr/bin/python3", "-c", program], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out.trim().split("\n")).toEqual(["[True, 2, '2']", "[True]", "12"]);
  });

  test("a slot that moves between MULTI and EXEC aborts the transaction with a clear error, never a hang", async () => {
    const key = "{mig}k";
    await client.set(key, "v0");
    const c = connect();
    await c.call("MULTI");
    expect(await c.call("SET", key, "v1")).toBe("QUEUED");
    await moveSlot(slot(key), [key]);
    await expect(c.call("EXEC")).rejects.toThrow(/^EXECABORT Transaction discarded: its slot moved/);
    expect(await client.get(key)).toBe("v0");
    expect(await c.set(key, "v2")).toBe("OK"); // the client goes on
  });
});

describe("blocking commands", () => {
  test("BLPOP is woken by a push from another client; times out with nil", async () => {
    const waiter = connect();
    const popped = waiter.blpop("bq:1", 0);
    await waitFor(async () => /blocked_clients:1\r/.test(await client.info("clients")), "the client to block");
    await client.rpush("bq:1", "job");
    expect(await popped).toEqual(["bq:1", "job"]);
    expect(await waiter.blpop("bq:none", 0.05)).toBeNull();
    expect(await waiter.get("bq:after")).toBeNull(); // the connection goes on
  });

  test("commands sent after a blocking call wait for it, as on Redis", async () => {
    const replies = exchange(PROXY_PORT, pipeline([["BLPOP", "bq:order", "2"], ["GET", "bq:seen"]]), 2);
    await waitFor(async () => /blocked_clients:1\r/.test(await client.info("clients")), "the call to block");
    await client.set("bq:seen", "pushed-first");
    await client.rpush("bq:order", "x");
    expect((await replies).map(text)).toEqual(["*2\r\n$8\r\nbq:order\r\n$1\r\nx\r\n", "$12\r\npushed-first\r\n"]);
  });

  test("BLMOVE, BZPOPMIN, BLMPOP and XREAD BLOCK run on pinned connections too", async () => {
    const c = connect();
    const moved = c.blmove("{bm}src", "{bm}dst", "LEFT", "RIGHT", 0);
    await waitFor(async () => /blocked_clients:1\r/.test(await client.info("clients")), "BLMOVE to block");
    await client.rpush("{bm}src", "m");
    expect(await moved).toBe("m");
    expect(await client.lrange("{bm}dst", 0, -1)).toEqual(["m"]);
    const z = c.bzpopmin("bz", 0);
    await waitFor(async () => /blocked_clients:1\r/.test(await client.info("clients")), "BZPOPMIN to block");
    await client.zadd("bz", 1, "one");
    expect(await z).toEqual(["bz", "one", "1"]);
    expect(await c.call("BLMPOP", "0.05", "2", "{m}a", "{m}b", "LEFT")).toBeNull();
    const id = await client.xadd("bs", "*", "f", "v");
    const read = c.xread("BLOCK", 0, "STREAMS", "bs", id!);
    await waitFor(async () => /blocked_clients:1\r/.test(await client.info("clients")), "XREAD to block");
    const id2 = await client.xadd("bs", "*", "f", "w");
    expect(await read).toEqual([["bs", [[id2!, ["f", "w"]]]]]);
  });

  test("a client that disconnects while blocked has its node connection closed: nothing is popped for it", async () => {
    const port = await ownerPort(slot("bq:gone"));
    const waiter = new Redis({ port: PROXY_PORT, host: "127.0.0.1", maxRetriesPerRequest: 0 });
    void waiter.blpop("bq:gone", 0).catch(() => {});
    await waitFor(async () => (await blockedOn(port)) === 1, "the call to block on the node");
    waiter.disconnect();
    await waitFor(async () => (await blockedOn(port)) === 0, "the node connection to close");
    await waitFor(async () => /blocked_clients:0\r/.test(await client.info("clients")), "no blocked client");
    await client.rpush("bq:gone", "kept");
    expect(await client.lrange("bq:gone", 0, -1)).toEqual(["kept"]);
  });

  test("200 clients blocked at once do not hold up other clients", async () => {
    const waiters = Array.from({ length: 200 }, () => connect());
    const pops = waiters.map((w, i) => w.blpop(`many:${i}`, 0));
    await waitFor(async () => /blocked_clients:200\r/.test(await client.info("clients")), "200 blocked clients", 15_000);
    const p = client.pipeline();
    for (let i = 0; i < 2000; i++) p.set(`busy:${i}`, i).get(`busy:${i}`);
    const res = (await p.exec())!;
    for (let i = 0; i < 2000; i++) expect(res[2 * i + 1][1]).toBe(String(i));
    const push = client.pipeline();
    for (let i = 0; i < 200; i++) push.rpush(`many:${i}`, `v${i}`);
    await push.exec();
    expect(await Promise.all(pops)).toEqual(waiters.map((_, i) => [`many:${i}`, `v${i}`]));
    for (const w of waiters) w.disconnect();
  }, 30_000);

  test("a slot migrated while a client blocks on it: the call follows Redis' redirect to the new owner", async () => {
    const key = "{bmig}q";
    const s = slot(key);
    const waiter = connect();
    const popped = waiter.blpop(key, 0);
    await waitFor(async () => /blocked_clients:1\r/.test(await client.info("clients")), "the client to block");
    const to = await moveSlot(s);
    await waitFor(async () => (await ownerPort(s)) === to, "the slot to move");
    await Bun.sleep(200); // the unblocked call is sent again to the new owner
    await client.rpush(key, "after-move");
    expect(await popped).toEqual([key, "after-move"]);
  });

  test("past pool.max_pinned, a call that needs a pinned connection gets an error at once", async () => {
    const small = await startProxy(8194, [cluster.entryPoints[0]], { rest: "[pool]\nmax_pinned = 2\nmax_idle = 0" });
    try {
      const a = connect(8194), b = connect(8194), c = connect(8194);
      const pa = a.blpop("{cap}q", 0), pb = b.blpop("{cap}q", 0);
      await waitFor(async () => /blocked_clients:2\r/.test(await c.info("clients")), "two blocked");
      await expect(c.blpop("{cap}q", 0)).rejects.toThrow(/too many pinned connections to .* \(pool\.max_pinned\)/);
      expect(await c.ping()).toBe("PONG");
      await client.rpush("{cap}q", "1", "2");
      expect((await Promise.all([pa, pb])).map((r) => r![1]).sort()).toEqual(["1", "2"]);
    } finally {
      await small.stop();
    }
  });
});

describe("WAIT", () => {
  test("answers once the client's writes reached the replicas of every master it wrote to", async () => {
    const c = connect();
    for (let i = 0; i < 50; i++) await c.set(`wait:${i}`, i);
    expect(await c.call("WAIT", "1", "5000")).toBe(1);
    // Asking for more replicas than exist times out with the number that did acknowledge.
    expect(await c.call("WAIT", "2", "100")).toBe(1);
    await expect(c.call("WAIT", "x", "1")).rejects.toThrow("ERR value is not an integer or out of range");
    await expect(c.call("WAIT", "1", "-1")).rejects.toThrow("ERR timeout is negative");
  });
});

describe("CLIENT LIST and CLIENT KILL", () => {
  test("list predixy's own clients, with blocked and subscribed flags; kill by id, by address, by type", async () => {
    const me = connect(), blocked = connect(), sub = connect(), victim = connect();
    const blockedId = Number(await blocked.client("ID"));
    const victimId = Number(await victim.client("ID"));
    void blocked.blpop("list:block", 0).catch(() => {});
    await sub.subscribe("list:chan");
    await waitFor(async () => /blocked_clients:1\r/.test(await me.info("clients")), "a blocked client");
    const lines = (await me.client("LIST") as string).trim().split("\n");
    const byId = new Map(lines.map((l) => [Number(/^id=(\d+)/.exec(l)![1]), l]));
    expect(byId.get(blockedId)).toMatch(/ flags=b /);
    expect([...byId.values()].some((l) => / flags=P .* sub=1 /.test(l))).toBe(true);
    expect(byId.get(Number(await me.client("ID")))).toContain(" cmd=client|list ");
    expect((await me.call("CLIENT", "LIST", "ID", String(victimId)) as string).trim().split("\n").length).toBe(1);
    expect((await me.call("CLIENT", "LIST", "TYPE", "pubsub") as string).trim().split("\n").every((l) => / flags=P/.test(l))).toBe(true);

    const closed = new Promise<void>((resolve) => victim.once("end", () => resolve()));
    victim.options.retryStrategy = () => null;
    expect(await me.client("KILL", "ID", String(victimId))).toBe(1);
    await closed;
    expect(await me.client("KILL", "ID", "999999")).toBe(0);
    // The old form names an address; killing a blocked client unblocks its call on the node.
    const addr = /addr=(\S+)/.exec(byId.get(blockedId)!)![1];
    blocked.options.retryStrategy = () => null;
    expect(await me.call("CLIENT", "KILL", addr)).toBe("OK");
    await waitFor(async () => /blocked_clients:0\r/.test(await me.info("clients")), "no blocked client");
    await expect(me.call("CLIENT", "KILL", addr)).rejects.toThrow("ERR No such client");
    expect(await me.call("CLIENT", "KILL", "TYPE", "pubsub")).toBe(1);
    expect(await me.ping()).toBe("PONG"); // SKIPME yes by default
  });
});
