// Shutdown and reload: SIGTERM drains what clients sent (socket buffers included), SIGHUP applies a new config file.

import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { Socket } from "bun";
import { Redis } from "ioredis";
import { ReplyFramer } from "../helpers/resp-client.ts";
import { bulk, command, DEFAULT } from "../helpers/fake-node.ts";
import { proxyConfig, rawExchange } from "../helpers/proxy.ts";
import { scripted, waitFor } from "../helpers/scripted.ts";

// Fake nodes on 8640–8649, proxies on 8695–8696.
const { fake, proxyFor, client, cleanups } = scripted(8640, 8649, [8695, 8696]);

const echo = () => fake((args) => (args[0] === "GET" ? bulk(`v:${args[1]}`) : DEFAULT));

/** Bytes in the kernel queues of sockets with local port `port` on loopback: [send, receive]. */
function queues(port: number): [number, number] {
  let tx = 0, rx = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5 || parseInt(f[1].split(":")[1], 16) !== port || f[3] !== "01") continue;
      const [t, r] = f[4].split(":").map((h) => parseInt(h, 16));
      tx += t;
      rx += r;
    }
  }
  return [tx, rx];
}

/** A raw client that writes GET c<id>:<n> for n = 0, 1, … and checks each reply, in order. */
class Pipeliner {
  replies = 0;
  written = 0;
  wrong: string[] = [];
  closed: Promise<void>;
  private closeNow!: () => void;
  private sock!: Socket<Pipeliner>;
  private readonly framer = new ReplyFramer();
  private pending: Uint8Array | null = null;
  /** Keep writing as fast as the socket takes commands (until `max` commands). */
  constructor(readonly id: number, private max: number) {
    this.closed = new Promise((r) => { this.closeNow = r; });
  }

  async connect(port: number): Promise<this> {
    this.sock = await Bun.connect<Pipeliner>({
      hostname: "127.0.0.1", port, data: this,
      socket: {
        data: (_s, chunk) => this.onData(chunk),
        drain: () => this.pump(),
        close: () => this.closeNow(),
        error: () => this.closeNow(),
      },
    });
    this.pump();
    return this;
  }

  /** Goes on writing, up to `max` commands in all. */
  writeUpTo(max: number): void {
    this.max = max;
    this.pump();
  }

  get localPort(): number {
    return this.sock.localPort;
  }

  private pump(): void {
    for (;;) {
      if (this.pending === null) {
        if (this.written >= this.max) return;
        let text = "";
        for (let i = 0; i < 100 && this.written < this.max; i++) text += command("GET", `c${this.id}:${this.written++}`);
        this.pending = new TextEncoder().encode(text);
      }
      const n = this.sock.write(this.pending);
      if (n < this.pending.length) {
        this.pending = this.pending.subarray(Math.max(0, n));
        return;
      }
      this.pending = null;
    }
  }

  private onData(chunk: Uint8Array): void {
    this.framer.feed(chunk, (r) => {
      const got = new TextDecoder().decode(r);
      const want = bulk(`v:c${this.id}:${this.replies}`);
      if (got !== want && this.wrong.length < 5) this.wrong.push(`reply ${this.replies}: ${JSON.stringify(got)}`);
      this.replies++;
    });
  }
}

test("SIGTERM: every command that reached predixy's socket before the signal is answered, in order, then the client is closed", async () => {
  const a = echo();
  const p = await proxyFor([a], { rest: "[performance]\nbatch_size = 4" });
  // A frozen node holds each client's first commands, so predixy stops reading them (batch_size):
  // the rest waits, unread, in predixy's receive buffers when the signal comes.
  a.freeze();
  // 100 commands first: had a client's 1000 arrived before predixy's first read of it, that read
  // would take them all (25 KB) and leave nothing unread (5 runs in 300 failed that way).
  const clients = await Promise.all(Array.from({ length: 8 }, (_, i) => new Pipeliner(i, 100).connect(p.port)));
  await waitFor(() => a.count("GET") === 8 * 4, "each client's first batch to reach the node");
  for (const c of clients) c.writeUpTo(1000);
  await waitFor(() => clients.every((c) => c.written === 1000) && clients.every((c) => queues(c.localPort)[0] === 0), "every command to reach predixy's socket");
  expect(queues(p.port)[1]).toBeGreaterThan(0);
  p.signal("SIGTERM");
  await waitFor(() => p.logs().includes("shutting down"), "the drain to begin");
  a.thaw();
  await Promise.all(clients.map((c) => c.closed));
  for (const c of clients) {
    expect(c.wrong).toEqual([]);
    expect(c.replies).toBe(1000);
  }
  expect(await p.exited).toBe(0);
}, 60_000);

test("SIGTERM under continuous pipelining: each client gets its replies in order up to a cut-off, then is closed", async () => {
  const a = echo();
  const p = await proxyFor([a], { rest: "[performance]\nbatch_size = 16" });
  const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => new Pipeliner(i, 1e9).connect(p.port)));
  await waitFor(() => clients.every((c) => c.replies > 1000), "the load to run");
  const atSignal = clients.map((c) => c.replies);
  p.signal("SIGTERM");
  await Promise.all(clients.map((c) => c.closed));
  expect(await p.exited).toBe(0);
  clients.forEach((c, i) => {
    expect(c.wrong).toEqual([]);
    expect(c.replies).toBeGreaterThanOrEqual(atSignal[i]);
  });
  // Commands in flight at the signal were answered, not dropped.
  expect(clients.some((c, i) => c.replies > atSignal[i])).toBe(true);
}, 60_000);

test("SIGTERM: a client still owed a reply after drain_timeout_ms is closed, and predixy exits", async () => {
  const a = echo();
  const p = await proxyFor([a], { server: "drain_timeout_ms = 300" });
  a.freeze();
  const r = rawExchange(p.port, command("GET", "k"), () => false, 30_000);
  await waitFor(() => a.count("GET") === 1, "the GET to reach the node");
  p.signal("SIGTERM");
  expect(await p.exited).toBe(0);
  expect(await r).toEqual({ text: "", closed: true });
  expect(p.logs()).toContain("drain_timeout_ms (300) passed: closing 1 clients");
}, 30_000);

test("draining, predixy accepts no new clients; a second signal exits at once", async () => {
  const a = echo();
  const p = await proxyFor([a], { server: "drain_timeout_ms = 600000" });
  a.freeze();
  const held = rawExchange(p.port, command("GET", "k"), () => false, 30_000);
  await waitFor(() => a.count("GET") === 1, "the GET to reach the node");
  p.signal("SIGTERM");
  await waitFor(() => p.logs().includes("shutting down"), "the drain to begin");
  await expect(Bun.connect({ hostname: "127.0.0.1", port: p.port, socket: { data() {} } })).rejects.toThrow();
  p.signal("SIGTERM");
  expect(await p.exited).toBe(0);
  expect((await held).closed).toBe(true);
}, 30_000);

test("SIGTERM with worker processes: each drains its own clients, and the first waits for them", async () => {
  const a = echo();
  const p = await proxyFor([a], { rest: "[performance]\nworker_threads = 2" });
  await waitFor(() => p.logs().includes("worker 1 listening"), "the second process to listen");
  a.freeze();
  // Spread over both processes by the kernel (SO_REUSEPORT): each client's GET waits at the node.
  const replies = Array.from({ length: 8 }, (_, i) => rawExchange(p.port, command("GET", `w${i}`), (t) => t.endsWith("\r\n"), 30_000));
  await waitFor(() => a.count("GET") === 8, "every GET to reach the node");
  p.signal("SIGTERM");
  await waitFor(() => p.logs().split("shutting down").length === 3, "both processes to start draining");
  a.thaw();
  const got = await Promise.all(replies);
  expect(got.map((r) => r.text)).toEqual(Array.from({ length: 8 }, (_, i) => bulk(`v:w${i}`)));
  expect(got.every((r) => r.closed)).toBe(true);
  expect(await p.exited).toBe(0);
}, 30_000);

/** Rewrites the proxy's config file with `extra` and sends SIGHUP; resolves once the reload is logged. */
async function reload(p: { configFile: string; port: number; signal(s: "SIGHUP"): void; logs(): string }, text: string, expectLog: string): Promise<void> {
  writeFileSync(p.configFile, text);
  p.signal("SIGHUP");
  await waitFor(() => p.logs().includes(expectLog), `the reload to log "${expectLog}"`);
}

test("SIGHUP with a changed password: connected clients go on, new ones need the new password", async () => {
  const a = echo();
  const entry = [`127.0.0.1:${a.port}`];
  const p = await proxyFor([a], { server: `password = "old"` });
  const before = new Redis({ port: p.port, host: "127.0.0.1", password: "old", maxRetriesPerRequest: 0 });
  cleanups.push(() => before.disconnect());
  expect(await before.get("k")).toBe("v:k");
  await reload(p, proxyConfig(p.port, entry, { server: `password = "new"` }), "'server.password' now in effect");
  expect(await before.get("k")).toBe("v:k");
  const wrong = await rawExchange(p.port, command("AUTH", "old") + command("GET", "k"), (t) => t.split("\r\n").length > 2);
  expect(wrong.text).toBe("-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n");
  const right = await rawExchange(p.port, command("AUTH", "new") + command("GET", "k"), (t) => t.endsWith("v:k\r\n"));
  expect(right.text).toBe("+OK\r\n$3\r\nv:k\r\n");
});

test("SIGHUP with a changed cluster password: new backend connections authenticate with it", async () => {
  // GET is answered on authenticated connections only, as a node requiring a password does.
  const a = fake((args, conn) => (args[0] === "GET" ? (conn.authed ? bulk(`v:${args[1]}`) : "-NOAUTH Authentication required.\r\n") : DEFAULT), { password: "one" });
  const entry = [`127.0.0.1:${a.port}`];
  const p = await proxyFor([a], { cluster: `password = "one"` });
  const c = client(p);
  expect(await c.get("k")).toBe("v:k");
  // The nodes' password changes (CONFIG SET requirepass), then predixy's file follows.
  a.password = "two";
  await reload(p, proxyConfig(p.port, entry, { cluster: `password = "two"` }), "'cluster.password' now in effect");
  // Dropped until one comes back with the new password: once in a full suite run a connection
  // from before the reload was still answering after the first drop.
  await waitFor(async () => {
    if (a.count("auth two") === 0) a.dropAll();
    return (await c.get("k").catch(() => null)) === "v:k" && a.count("auth two") > 0;
  }, "a GET on a connection authenticated with the new password");
  expect(a.count("auth one")).toBeGreaterThan(0);
});

test("SIGHUP with an invalid file: rejected with --check's messages; the running config stays", async () => {
  const a = echo();
  const p = await proxyFor([a], { server: `password = "pw"` });
  const c = new Redis({ port: p.port, host: "127.0.0.1", password: "pw", maxRetriesPerRequest: 0 });
  cleanups.push(() => c.disconnect());
  await reload(p, `[server]\nport = "x"\npasword = "open"\n[cluster]\nentry_points = ["nohost"]\n`, "reload rejected");
  for (const m of [`server.port: expected an integer from 0 to 65535, got "x"`, `unknown key "server.pasword" (did you mean "server.password"?)`, `cluster.entry_points[0]: expected "host:port", got "nohost"`]) {
    expect(p.logs()).toContain(m);
  }
  expect(await c.get("k")).toBe("v:k");
  const noauth = await rawExchange(p.port, command("GET", "k"), (t) => t.includes("\r\n"));
  expect(noauth.text).toBe("-NOAUTH Authentication required.\r\n");
});

test("SIGHUP: a key that needs a restart is logged as such; the others apply", async () => {
  const a = echo();
  const entry = [`127.0.0.1:${a.port}`];
  const p = await proxyFor([a]);
  const c = client(p);
  await reload(p, proxyConfig(p.port + 1000, entry, { rest: "[performance]\nmax_memory = 123456789" }), "take effect only after a restart");
  expect(p.logs()).toContain("'server.port' changed");
  expect(await c.get("k")).toBe("v:k");
  expect(await c.info("memory")).toContain("maxmemory_clients:123456789");
});
