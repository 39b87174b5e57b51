// Client sessions through predixy as real client libraries and raw RESP use them, compared with one Redis.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { encodeCommand } from "../../src/resp/reply-value.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { exchange, pipeline, ReplyFramer, startStandalone, text } from "../helpers/resp-client.ts";
import { waitFor } from "../helpers/scripted.ts";
import { ownerPort } from "../helpers/slots.ts";

// Ports 8800-8805 (bus 18800-18805); the proxy on 8890; one plain redis-server on 8880.
const BASE = 8800;
const PROXY_PORT = 8890;
const NODE_PORT = 8880;
const PORTS = Array.from({ length: 6 }, (_, i) => BASE + i);
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let standalone: { stop(): Promise<void> };
const opened: Redis[] = [];

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-8800" });
  // CLIENT KILL is in the default deny list; this proxy allows it.
  proxy = await startProxy(PROXY_PORT, [cluster.entryPoints[0]], { rest: "[commands]\ndeny = []" });
  standalone = await startStandalone(NODE_PORT);
}, 60_000);

afterAll(async () => {
  for (const c of opened) c.disconnect();
  await proxy?.stop();
  await standalone?.stop();
  await cluster?.stop();
});

function connect(port: number, protocol = 2): Redis {
  const c = new Redis({ port, host: "127.0.0.1", protocol, maxRetriesPerRequest: 0, commandTimeout: 10_000 } as never);
  c.on("error", () => {});
  opened.push(c);
  return c;
}

/** Runs a redis-py script under /usr/bin/python3 with PORT set; its stdout, trimmed. Killed after 30 s. */
async function py(port: number, script: string): Promise<string> {
  const proc = Bun.spawn(["/usr/bin/python3", "-c", script], { env: { ...process.env, PORT: String(port) }, stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(killer);
  if ((await proc.exited) !== 0) throw new Error(`python exited ${proc.exitCode}: ${err}`);
  return out.trim();
}

/** One raw RESP connection, driven a command at a time: each reply is awaited before the next command. */
class Conversation {
  private readonly framer = new ReplyFramer();
  private readonly replies: string[] = [];
  private wake: (() => void) | null = null;
  closed = false;
  /** The close reason the socket reported ("" for a clean close, e.g. ECONNRESET otherwise). */
  closeError: string | null = null;
  private sock!: Awaited<ReturnType<typeof Bun.connect>>;

  static async open(port: number): Promise<Conversation> {
    const c = new Conversation();
    c.sock = await Bun.connect({
      hostname: "127.0.0.1", port,
      socket: {
        data: (_s, chunk) => c.onData(chunk),
        close: (_s, err) => { c.closed = true; c.closeError ??= err ? err.message : ""; c.wake?.(); },
        error: (_s, err) => { c.closeError = err.message; c.closed = true; c.wake?.(); },
      },
    });
    return c;
  }

  private onData(chunk: Uint8Array): void {
    this.framer.feed(chunk, (r) => this.replies.push(text(r)));
    this.wake?.();
  }

  /** The next `count` replies; rejects after `timeoutMs` (a hang) or if the connection closes first. */
  async next(count = 1, timeoutMs = 5000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count) {
      if (this.closed) throw new Error(`closed after ${this.replies.length}/${count} replies`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms (${this.replies.length}/${count})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
      this.wake = null;
    }
    return this.replies.splice(0, count);
  }

  send(...args: string[]): void {
    this.sock.write(encodeCommand(args));
  }

  /** Sends one command and awaits its reply. */
  async call(...args: string[]): Promise<string> {
    this.send(...args);
    return (await this.next(1))[0];
  }

  /** Half-closes: no more commands from this side. */
  shutdown(): void {
    this.sock.shutdown(true);
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await Bun.sleep(10);
  }

  close(): void {
    this.sock.end();
  }
}

const slot = (k: string) => { const b = new TextEncoder().encode(k); return slotOf(b, 0, b.length); };

/** The node connections of `port` whose last command was one of `cmds` (CLIENT LIST's cmd field). */
async function nodeConnsLast(port: number, cmds: string[]): Promise<number> {
  const lines = (await redisCli(port, ["client", "list"])).split("\n");
  return lines.filter((l) => cmds.includes(/ cmd=(\S+)/.exec(l)?.[1] ?? "")).length;
}

/** How many of a node's connections are blocked in a call (flag b in its CLIENT LIST). */
async function blockedOn(port: number): Promise<number> {
  return (await redisCli(port, ["client", "list"])).split("\n").filter((l) => /\bflags=\w*b/.test(l)).length;
}

/** Closes, on the node, the connections `which` picks from its CLIENT LIST (a pinned one, as a node closes an idle client). */
async function killOnNode(port: number, which: RegExp): Promise<void> {
  const lines = (await redisCli(port, ["client", "list"])).split("\n").filter((l) => which.test(l));
  expect(lines.length).toBeGreaterThan(0);
  for (const l of lines) await redisCli(port, ["client", "kill", "id", /id=(\d+)/.exec(l)![1]]);
}

/** The proxy's pinned connections (lent and idle) over all nodes, from INFO nodes. */
async function pinnedTotal(): Promise<number> {
  const info = await redisCli(PROXY_PORT, ["info", "nodes"]);
  return [...info.matchAll(/pinned=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

describe("interactive transactions (one reply awaited per command)", () => {
  test("a keyless command queued before the transaction's first key answers +QUEUED at once, as Redis does", async () => {
    for (const port of [PROXY_PORT, NODE_PORT]) {
      const c = await Conversation.open(port);
      expect(await c.call("MULTI")).toBe("+OK\r\n");
      expect(await c.call("PING")).toBe("+QUEUED\r\n");
      expect(await c.call("ECHO", "e")).toBe("+QUEUED\r\n");
      expect(await c.call("SET", "{kl}a", "1")).toBe("+QUEUED\r\n");
      expect(await c.call("EXEC")).toBe("*3\r\n+PONG\r\n$1\r\ne\r\n+OK\r\n");
      c.close();
    }
  });

  test("redis-py: MULTI and keyless commands sent one by one, then EXEC", async () => {
    const script = `
import os, redis
r = redis.Redis(port=int(os.environ["PORT"]), socket_timeout=5)
print(r.execute_command("MULTI"), r.execute_command("PING"), r.execute_command("ECHO", "x"), r.execute_command("EXEC"))`;
    const [viaProxy, viaNode] = [await py(PROXY_PORT, script), await py(NODE_PORT, script)];
    expect(viaProxy).toBe(viaNode);
    expect(viaProxy).toBe("b'OK' False b'QUEUED' [b'PONG', b'x']");
  });

  test("more keyless commands than batch_size before the first key: all queued, EXEC runs them", async () => {
    const cmds = [["MULTI"], ...Array.from({ length: 600 }, () => ["PING"]), ["SET", "{kb}a", "1"], ["EXEC"]];
    const replies = (await exchange(PROXY_PORT, pipeline(cmds), cmds.length, 10_000)).map(text);
    expect(replies.slice(1, 602).every((r) => r === "+QUEUED\r\n")).toBe(true);
    expect(replies[602]).toStartWith("*601\r\n+PONG\r\n");
    expect(replies[602]).toEndWith("+OK\r\n");
  });

  test("a client that half-closes inside MULTI after a keyless command gets its replies and is closed", async () => {
    const before = Number(/connected_clients:(\d+)/.exec(await redisCli(PROXY_PORT, ["info", "clients"]))![1]);
    const c = await Conversation.open(PROXY_PORT);
    c.send("MULTI");
    c.send("PING");
    expect(await c.next(2)).toEqual(["+OK\r\n", "+QUEUED\r\n"]);
    c.shutdown();
    await c.waitClosed();
    expect(c.closed).toBe(true);
    // The proxy let the client go (counted in INFO by the client asking, so `before` includes one).
    await waitFor(async () => Number(/connected_clients:(\d+)/.exec(await redisCli(PROXY_PORT, ["info", "clients"]))![1]) <= before,
      "the half-closed client to be let go");
  });
});

describe("WATCH across other calls", () => {
  for (const between of ["BLPOP", "WAIT", "XREAD BLOCK"]) {
    test(`${between} between WATCH and MULTI keeps the WATCH: EXEC answers nil after another client's change`, async () => {
      for (const port of [PROXY_PORT, NODE_PORT]) {
        const a = connect(port), b = connect(port);
        await a.set("{wb}k", "0");
        await a.watch("{wb}k");
        if (between === "BLPOP") expect(await a.blpop("{wb}list", 0.01)).toBeNull();
        else if (between === "WAIT") await a.wait(0, 0);
        else expect(await a.xread("BLOCK", 10, "STREAMS", "{wb}s", "$")).toBeNull();
        await b.set("{wb}k", "changed");
        expect(await a.multi().set("{wb}k", "mine").exec()).toBeNull();
        expect(await a.get("{wb}k")).toBe("changed");
        a.disconnect();
        b.disconnect();
      }
      // No pinned connection was left holding that WATCH once the client went.
      const owner = await ownerPort(BASE, slot("{wb}k"));
      await waitFor(async () => (await nodeConnsLast(owner, ["watch"])) === 0, "no node connection left after WATCH");
    });
  }

  test("a client that disconnects while blocked after WATCH leaves no node connection behind", async () => {
    const a = connect(PROXY_PORT);
    await a.watch("{wb}k");
    void a.blpop("{wb}list", 0).catch(() => {});
    const owner = await ownerPort(BASE, slot("{wb}k"));
    await waitFor(async () => (await blockedOn(owner)) === 1, "the BLPOP to block on the node");
    a.disconnect();
    await waitFor(async () => (await nodeConnsLast(owner, ["watch"])) + (await blockedOn(owner)) === 0,
      "the WATCH and BLPOP connections to be closed");
  });

  test("a GET between WATCH and MULTI, pipelined, runs before EXEC, as on one connection", async () => {
    // Another client's 7 MB SET to the same node keeps the shared connection busy for a few ms
    // (under the 8 MiB that would pause its clients), while the transaction's is free.
    let sawExec = 0;
    for (let i = 0; i < 10; i++) {
      await exchange(PROXY_PORT, pipeline([["SET", "{o}k", "v0"]]), 1);
      const big = exchange(PROXY_PORT, encodeCommand(["SET", "{o}big", new Uint8Array(7 * 1024 * 1024)]), 1, 20_000);
      await Bun.sleep(i % 3);
      const r = (await exchange(PROXY_PORT, pipeline([["WATCH", "{o}w"], ["GET", "{o}k"], ["MULTI"], ["SET", "{o}k", "v1"], ["EXEC"]]), 5)).map(text);
      await big;
      expect(r[4]).toBe("*1\r\n+OK\r\n");
      if (r[1] !== "$2\r\nv0\r\n") sawExec++;
    }
    expect(sawExec).toBe(0);
  });

  test("redis-py: a WatchError retry loop with a blocking call between WATCH and MULTI", async () => {
    const script = `
import os, redis
port = int(os.environ["PORT"])
r, other = redis.Redis(port=port, socket_timeout=5), redis.Redis(port=port, socket_timeout=5)
r.set("{wr}n", 1)
tries = 0
with r.pipeline() as p:
    while True:
        try:
            p.watch("{wr}n")
            p.blpop("{wr}empty", 0.01)
            n = int(p.get("{wr}n"))
            tries += 1
            if tries == 1:
                other.incr("{wr}n")
            p.multi()
            p.set("{wr}n", n * 10)
            p.execute()
            break
        except redis.WatchError:
            continue
print(tries, r.get("{wr}n"))`;
    expect(await py(NODE_PORT, script)).toBe("2 b'20'");
    expect(await py(PROXY_PORT, script)).toBe("2 b'20'");
  });
});

describe("a transaction whose node connection is closed while it waits for the client", () => {
  test("WATCH, the node closes the connection, then MULTI … EXEC: an error, not a hang; later commands run", async () => {
    const c = await Conversation.open(PROXY_PORT);
    expect(await c.call("SET", "{wk}k", "0")).toBe("+OK\r\n");
    expect(await c.call("WATCH", "{wk}k")).toBe("+OK\r\n");
    const owner = await ownerPort(BASE, slot("{wk}k"));
    await killOnNode(owner, / cmd=watch /);
    await Bun.sleep(100); // the close reaches the proxy
    c.send("MULTI");
    c.send("SET", "{wk}k", "mine");
    c.send("EXEC");
    const [, , exec] = await c.next(3);
    expect(exec).toStartWith("-EXECABORT");
    expect(await c.call("GET", "{wk}k")).toBe("$1\r\n0\r\n");
    c.close();
  });

  test("WATCH, the node closes the connection, then UNWATCH: +OK, and the next transaction runs", async () => {
    const c = await Conversation.open(PROXY_PORT);
    expect(await c.call("WATCH", "{wk}k")).toBe("+OK\r\n");
    await killOnNode(await ownerPort(BASE, slot("{wk}k")), / cmd=watch /);
    await Bun.sleep(100);
    expect(await c.call("UNWATCH")).toBe("+OK\r\n");
    c.send("MULTI");
    c.send("SET", "{wk}k", "again");
    c.send("EXEC");
    expect(await c.next(3)).toEqual(["+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n"]);
    c.close();
  });

  test("MULTI with a queued command, the node closes the connection, then EXEC: EXECABORT and nothing ran", async () => {
    const c = await Conversation.open(PROXY_PORT);
    expect(await c.call("SET", "{wk}k", "0")).toBe("+OK\r\n");
    expect(await c.call("MULTI")).toBe("+OK\r\n");
    expect(await c.call("SET", "{wk}k", "queued")).toBe("+QUEUED\r\n");
    const owner = await ownerPort(BASE, slot("{wk}k"));
    await killOnNode(owner, / flags=\w*x/); // in MULTI
    await Bun.sleep(100);
    expect(await c.call("EXEC")).toStartWith("-EXECABORT");
    expect(await c.call("GET", "{wk}k")).toBe("$1\r\n0\r\n");
    c.close();
  });
});

describe("protocol switches and subscribed mode during a transaction", () => {
  test("HELLO 3 between WATCH and MULTI: EXEC answers in RESP3, and later RESP3 transactions too", async () => {
    const setup = [["DEL", "{hp}h"], ["HSET", "{hp}h", "f", "v"]];
    await exchange(PROXY_PORT, pipeline(setup), 2);
    await exchange(NODE_PORT, pipeline(setup), 2);
    const switched = [["WATCH", "{hp}h"], ["HELLO", "3"], ["MULTI"], ["HGETALL", "{hp}h"], ["EXEC"]];
    const [p, n] = await Promise.all([exchange(PROXY_PORT, pipeline(switched), 5), exchange(NODE_PORT, pipeline(switched), 5)]);
    expect(text(p[4])).toBe(text(n[4]));
    expect(text(p[4])).toBe("*1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    // The pinned connection returned to the pool speaks the protocol of the pool it went to.
    for (let i = 0; i < 4; i++) {
      const r = await exchange(PROXY_PORT, pipeline([["HELLO", "3"], ["MULTI"], ["HGETALL", "{hp}h"], ["EXEC"]]), 4);
      expect(text(r[3])).toBe("*1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
      const r2 = await exchange(PROXY_PORT, pipeline([["MULTI"], ["HGETALL", "{hp}h"], ["EXEC"]]), 3);
      expect(text(r2[2])).toBe("*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    }
  });

  test("a RESP2 client subscribed while it WATCHes may only run subscribed-mode commands, as on Redis", async () => {
    const cmds = [["WATCH", "{ws}k"], ["SUBSCRIBE", "ws-ch"], ["MULTI"], ["SET", "{ws}k", "v"], ["EXEC"], ["PING"], ["RESET"], ["PING"], ["GET", "{ws}k"]];
    await exchange(PROXY_PORT, pipeline([["DEL", "{ws}k"]]), 1);
    await exchange(NODE_PORT, pipeline([["DEL", "{ws}k"]]), 1);
    const [p, n] = await Promise.all([exchange(PROXY_PORT, pipeline(cmds), cmds.length), exchange(NODE_PORT, pipeline(cmds), cmds.length)]);
    expect(p.map(text)).toEqual(n.map(text));
  });
});

describe("pub/sub in order with the client's other commands", () => {
  test("RESP3: PUBLISH to the client's own channel, then UNSUBSCRIBE, pipelined: the message arrives before the confirmation", async () => {
    const cmds = [["HELLO", "3"], ["SUBSCRIBE", "own-ch"], ["PUBLISH", "own-ch", "mine"], ["UNSUBSCRIBE", "own-ch"], ["PING"]];
    for (const port of [PROXY_PORT, NODE_PORT]) {
      const r = (await exchange(port, pipeline(cmds), 6, 5000)).map(text).slice(1);
      // A push may come before or after PUBLISH's reply (predixy's wait behind the client's replies: README).
      expect(r.filter((x) => x.startsWith(">3\r\n$7\r\nmessage\r\n"))).toEqual([">3\r\n$7\r\nmessage\r\n$6\r\nown-ch\r\n$4\r\nmine\r\n"]);
      expect(r.filter((x) => x.startsWith(":"))).toEqual([":1\r\n"]);
      expect(r.slice(3)).toEqual([">3\r\n$11\r\nunsubscribe\r\n$6\r\nown-ch\r\n:0\r\n", "+PONG\r\n"]);
    }
  });
});

/** A script that keeps a node busy for 300 ms (it serves no other client meanwhile). */
const BUSY_300MS = "local s = redis.call('TIME') while true do local n = redis.call('TIME') " +
  "if (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 300000 then return 1 end end";

describe("a subscription is confirmed once the node has it", () => {
  test("a subscriber connection predixy has just opened: a PUBLISH sent once SUBSCRIBE is confirmed is delivered", async () => {
    // Without subscriptions, predixy's subscriber connections closed by the nodes: SUBSCRIBE
    // opens a new one while the PUBLISH goes over an open shared connection. The masters are
    // busy meanwhile (a script), so both wait there: a node reads a new connection after the
    // ones it has, and would run the PUBLISH first had predixy confirmed SUBSCRIBE at once.
    const masters: number[] = [];
    for (const p of PORTS) if (/role:master/.test(await redisCli(p, ["info", "replication"]))) masters.push(p);
    const pub = connect(PROXY_PORT);
    for (let i = 0; i < 2; i++) {
      // (Without subscriptions they are not of type pubsub: known by their last command.)
      for (const p of masters) {
        for (const l of (await redisCli(p, ["client", "list"])).split("\n")) {
          if (/ cmd=((p|s)?(un)?subscribe|ping) /.test(l)) await redisCli(p, ["client", "kill", "id", /id=(\d+)/.exec(l)![1]]);
        }
      }
      for (let m = 0; m < masters.length; m++) await pub.publish("warm", "x"); // shared connections open
      const sub = connect(PROXY_PORT);
      await sub.ping();
      const got: string[] = [];
      sub.on("message", (_ch: string, m: string) => got.push(m));
      const busy = masters.map((p) => redisCli(p, ["eval", BUSY_300MS, "0"]));
      await Bun.sleep(50);
      await sub.subscribe(`fresh-${i}`);
      expect(await pub.publish(`fresh-${i}`, "m")).toBe(1);
      await Promise.all(busy);
      await waitFor(() => got.length === 1, "the message");
      sub.disconnect();
    }
  });

  test("ioredis: one client subscribes, another publishes as soon as it is confirmed: every message arrives", async () => {
    const sub = connect(PROXY_PORT), pub = connect(PROXY_PORT);
    const got: string[] = [];
    sub.on("message", (ch: string) => got.push(ch));
    const counts: number[] = [];
    for (let i = 0; i < 50; i++) {
      await sub.subscribe(`conf-${i}`);
      counts.push(await pub.publish(`conf-${i}`, "m"));
    }
    await waitFor(() => got.length === 50, "50 messages");
    expect(counts.every((n) => n === 1)).toBe(true);
  });
});

describe("a refused EXEC, as Redis answers it", () => {
  test("EXEC with arguments: EXECABORT naming the reason, and the transaction is discarded", async () => {
    const cmds = [["DEL", "{ex}k"], ["MULTI"], ["SET", "{ex}k", "1"], ["EXEC", "x"], ["EXEC"], ["GET", "{ex}k"], ["EXEC", "y"]];
    const [p, n] = await Promise.all([exchange(PROXY_PORT, pipeline(cmds), cmds.length), exchange(NODE_PORT, pipeline(cmds), cmds.length)]);
    expect(p.map(text)).toEqual(n.map(text));
    expect(text(p[3])).toBe("-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n");
  });

  test("EXEC with arguments after WATCH drops the WATCH", async () => {
    for (const port of [PROXY_PORT, NODE_PORT]) {
      const a = connect(port), b = connect(port);
      await a.set("{ex}w", "0");
      await a.watch("{ex}w");
      await expect(a.call("EXEC", "x")).rejects.toThrow("EXECABORT Transaction discarded because of: wrong number of arguments");
      await b.set("{ex}w", "changed");
      expect(await a.multi().set("{ex}w", "mine").exec()).toEqual([[null, "OK"]]);
      a.disconnect();
      b.disconnect();
    }
  });
});

test("WAIT that has the masters ask their replicas reuses connections: not one per round", async () => {
  const masters: number[] = [];
  for (const p of PORTS) if (/role:master/.test(await redisCli(p, ["info", "replication"]))) masters.push(p);
  const accepted = async () => {
    let n = 0;
    for (const p of masters) n += Number(/total_connections_received:(\d+)/.exec(await redisCli(p, ["info", "stats"]))![1]);
    return n;
  };
  const c = connect(PROXY_PORT);
  await c.set("{wt}warm", "v");
  const before = await accepted();
  for (let i = 0; i < 50; i++) {
    await c.set(`{wt}${i}`, "v");
    expect(await c.wait(1, 1000)).toBe(1);
  }
  // A pinned connection or two per master (and the CLI's own, one per INFO above).
  expect((await accepted()) - before).toBeLessThan(4 * masters.length);
  c.disconnect();
});

test("CLIENT KILL closes the killed client's connection as Redis does: a FIN, not a reset", async () => {
  for (const port of [PROXY_PORT, NODE_PORT]) {
    const victim = await Conversation.open(port);
    const id = /^:(\d+)/.exec(await victim.call("CLIENT", "ID"))![1];
    const killer = await Conversation.open(port);
    expect(await killer.call("CLIENT", "KILL", "ID", id)).toBe(":1\r\n");
    await victim.waitClosed();
    expect(victim.closed).toBe(true);
    expect(victim.closeError).toBe("");
    killer.close();
  }
});

test("ioredis reconnects after CLIENT KILL, with no error event, and runs its commands", async () => {
  for (const port of [PROXY_PORT, NODE_PORT]) {
    const v = connect(port);
    const errors: string[] = [];
    v.on("error", (e: Error) => errors.push(e.message));
    let ready = 0;
    v.on("ready", () => ready++);
    await v.set("{ck}k", "1");
    const admin = connect(port);
    expect(await admin.client("KILL", "ID", String(await v.client("ID")))).toBe(1);
    await waitFor(() => ready >= 2, "ioredis to reconnect");
    expect(await v.get("{ck}k")).toBe("1");
    expect(errors).toEqual([]);
    v.disconnect();
    admin.disconnect();
  }
});

test("INFO and the nodes show no pinned connection left behind by the tests above", async () => {
  // Idle ones stay pooled (pool.max_idle, 4 per node and protocol), lent ones must all be back.
  expect(await pinnedTotal()).toBeLessThanOrEqual(3 * 2 * 4);
  for (const p of await Promise.all(["{wk}k", "{wb}k"].map((k) => ownerPort(BASE, slot(k))))) {
    expect(await nodeConnsLast(p, ["watch", "multi"])).toBe(0);
  }
});
