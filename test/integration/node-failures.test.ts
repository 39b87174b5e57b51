// Nodes that die, freeze or lie, against scripted fake nodes: commands wait for the new owner, health checks, table sanity.

import { expect, test } from "bun:test";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { bulk, DEFAULT, err, startFakeNode, type FakeNode, type FakeReply, type SlotRange } from "../helpers/fake-node.ts";
import { startProxy } from "../helpers/proxy.ts";
import { scripted, waitFor } from "../helpers/scripted.ts";

// Fake nodes on 8650–8679, proxies on 8690–8694.
const { port, proxyPort, fake, proxyFor, client, cleanups } = scripted(8650, 8679, [8690, 8694]);

const enc = new TextEncoder();
const slot = (k: string) => { const b = enc.encode(k); return slotOf(b, 0, b.length); };
const sent = (n: FakeNode, name: string, key?: string) =>
  n.received.filter((a) => a[0] === name && (key === undefined || a[1] === key)).length;

/** A node serving INCR on counters of its own, and GET with "<port>:<key>"; `front` answers first if it will. */
function counting(front?: (args: string[]) => FakeReply): FakeNode {
  const counters = new Map<string, number>();
  const n: FakeNode = fake((args) => {
    const first = front?.(args);
    if (first !== DEFAULT) return first;
    if (args[0] === "INCR") {
      const v = (counters.get(args[1]) ?? 0) + 1;
      counters.set(args[1], v);
      return `:${v}\r\n`;
    }
    if (args[0] === "GET") return bulk(`${n.port}:${args[1]}`);
    return DEFAULT;
  });
  return n;
}

const everything = (n: FakeNode): SlotRange[] => [[0, 16383, n.port]];

test("commands for a master that refuses connections wait, then go in order to the node its slots move to", async () => {
  const a = counting(), b = counting();
  a.slots = b.slots = everything(a);
  const p = await proxyFor([a, b], { cluster: "retry_timeout_ms = 20000\nrefresh_interval_ms = 60000" });
  const c = client(p);
  expect(await c.incr("n")).toBe(1);
  a.stop();
  // Sent while nothing serves the slot: they wait (a refuses connections; the table still names it).
  const pipe = c.pipeline();
  for (let i = 0; i < 50; i++) pipe.incr("n");
  const replies = pipe.exec();
  await waitFor(() => p.logs().includes(`connection to '127.0.0.1:${a.port}' failed`), "the proxy to find a down");
  // The cluster fails a over to b: the waiting commands go there, in the order sent.
  b.slots = everything(b);
  const got = await replies;
  expect(got!.map(([e]) => e)).toEqual(Array(50).fill(null));
  expect(got!.map(([, v]) => v)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  expect(sent(b, "INCR")).toBe(50);
});

test("a node that stops answering gets no new commands; they go once it answers again", async () => {
  const a = counting();
  const p = await proxyFor([a], { cluster: "health_check_timeout_ms = 200\nhealth_check_interval_ms = 100\ncommand_timeout_ms = 60000" });
  const c = client(p);
  expect(await c.get("k0")).toBe(`${a.port}:k0`);
  a.freeze();
  const first = c.get("k1");
  await waitFor(() => p.logs().includes(`node '127.0.0.1:${a.port}' has left a command unanswered`), "the node to be seen as not answering");
  const later = ["k2", "k3", "k4"].map((k) => c.get(k));
  // Give them time to be sent, were they to be: they are held in the proxy instead.
  await Bun.sleep(300);
  expect(sent(a, "GET", "k2") + sent(a, "GET", "k3") + sent(a, "GET", "k4")).toBe(0);
  a.thaw();
  expect(await first).toBe(`${a.port}:k1`);
  expect(await Promise.all(later)).toEqual(["k2", "k3", "k4"].map((k) => `${a.port}:${k}`));
  await waitFor(() => p.logs().includes(`node '127.0.0.1:${a.port}' answers again`), "the node to be seen answering");
});

test("idle connections are PINGed, so a node that freezes between commands is known before one is sent to it", async () => {
  const a = counting(), b = counting();
  a.slots = b.slots = everything(a);
  const p = await proxyFor([a, b], { cluster: "health_check_interval_ms = 100\nhealth_check_timeout_ms = 200\nrefresh_interval_ms = 60000" });
  const c = client(p);
  expect(await c.get("k")).toBe(`${a.port}:k`);
  const pings = sent(a, "PING");
  await waitFor(() => sent(a, "PING") >= pings + 2, "PINGs on the idle connection");
  a.freeze();
  await waitFor(() => p.logs().includes(`node '127.0.0.1:${a.port}' has left a command unanswered`), "an unanswered PING to be noticed");
  const reply = c.get("k");
  await Bun.sleep(200);
  expect(sent(a, "GET")).toBe(1);
  // The cluster moves a's slots to b (what a failover of a frozen master does).
  b.slots = everything(b);
  expect(await reply).toBe(`${b.port}:k`);
  expect(sent(a, "GET")).toBe(1);
});

test("when a silent node's slots move, its reads in flight go to the new owner and its writes fail as may-or-may-not", async () => {
  const a = counting(), b = counting();
  a.slots = b.slots = everything(a);
  // Only the table's move may end them: the command timeout is far away.
  const p = await proxyFor([a, b], { cluster: "health_check_timeout_ms = 200\ncommand_timeout_ms = 60000\nrefresh_interval_ms = 60000" });
  const c = client(p), d = client(p);
  expect(await c.get("warm")).toBe(`${a.port}:warm`);
  a.freeze();
  const read = c.get("k");
  const write = d.incr("n").then(String, (e: Error) => e.message);
  await waitFor(() => sent(a, "GET", "k") === 1 && sent(a, "INCR", "n") === 1, "both to reach the frozen node");
  await waitFor(() => p.logs().includes("has left a command unanswered"), "the node to be seen as not answering");
  b.slots = everything(b);
  expect(await read).toBe(`${b.port}:k`);
  expect(await write).toMatch(/may or may not have run/);
  expect(sent(b, "INCR")).toBe(0);
  expect(p.logs()).toContain("its slots moved to another node while it was not answering");
});

test("a command parked behind a client's read at a silent node does not overtake the read at the new owner", async () => {
  const a = counting();
  const values = new Map<string, string>();
  const b = fake((args) => {
    if (args[0] === "SET") { values.set(args[1], args[2]); return "+OK\r\n"; }
    if (args[0] === "GET") return values.has(args[1]) ? bulk(values.get(args[1])!) : "$-1\r\n";
    return DEFAULT;
  });
  a.slots = b.slots = everything(a);
  const p = await proxyFor([a, b], { cluster: "health_check_timeout_ms = 200\ncommand_timeout_ms = 60000\nrefresh_interval_ms = 60000" });
  const c = client(p);
  expect(await c.get("warm")).toBe(`${a.port}:warm`);
  a.freeze();
  const read = c.get("k");
  await waitFor(() => p.logs().includes("has left a command unanswered"), "the node to be seen as not answering");
  // Sent after the read, for the same key: it waits (parked) while the read is at the silent node.
  const write = c.set("k", "new");
  await Bun.sleep(100);
  b.slots = everything(b);
  // At the new owner the read goes first: it must not see the write sent after it.
  expect(await read).toBeNull();
  expect(await write).toBe("OK");
  expect(await c.get("k")).toBe("new");
});

/** CLUSTER NODES for masters given as [node, config epoch, slot ranges]; `failed` are flagged fail. */
function clusterNodes(masters: [FakeNode, number, string][], failed: FakeNode[] = []): string {
  const lines = masters.map(([n, epoch, slots]) => {
    const id = `fake${n.port}`.padEnd(40, "0");
    const flags = failed.includes(n) ? "master,fail" : "master";
    return `${id} 127.0.0.1:${n.port}@${n.port + 10000} ${flags} - 0 0 ${epoch} connected ${slots}`.trim();
  });
  return bulk(`${lines.join("\n")}\n`);
}

/** A key whose slot is in the upper half (8192–16383). */
const high = Array.from({ length: 10000 }, (_, i) => `h${i}`).find((k) => slot(k) >= 8192)!;

test("a node with an older view of the cluster (a minority partition) does not replace the table", async () => {
  // b was failed over to c (config epoch 3); b itself, cut off, still claims its slots (epoch 2).
  let phase = 1;
  const topo = (n: () => FakeNode) => (args: string[]): FakeReply => {
    if (args[0] !== "CLUSTER") return DEFAULT;
    const self = n(), stale = self === b || phase === 1;
    if (phase === 3 && self !== b) return err("ERR busy");
    if (args[1].toUpperCase() !== "NODES") return DEFAULT; // SLOTS: the node's own `slots`
    return stale ? clusterNodes([[a, 1, "0-8191"], [b, 2, "8192-16383"]]) : clusterNodes([[a, 1, "0-8191"], [c, 3, "8192-16383"], [b, 2, ""]], [b]);
  };
  const a: FakeNode = counting(topo(() => a)), b: FakeNode = counting(topo(() => b)), c: FakeNode = counting(topo(() => c));
  const halves = (x: FakeNode, y: FakeNode): SlotRange[] => [[0, 8191, x.port], [8192, 16383, y.port]];
  a.slots = b.slots = c.slots = halves(a, b);
  const p = await proxyFor([a, b], { cluster: "refresh_interval_ms = 300" });
  const cl = client(p);
  expect(await cl.get(high)).toBe(`${b.port}:${high}`);
  // The failover: a and c now report c as the owner, under a newer epoch.
  phase = 2;
  a.slots = c.slots = halves(a, c);
  await waitFor(async () => (await cl.get(high)) === `${c.port}:${high}`, "the new owner to serve");
  // Now only b answers topology queries, with its old view: it is refused.
  phase = 3;
  const asked = b.count("CLUSTER NODES");
  await waitFor(() => b.count("CLUSTER NODES") >= asked + 1, "b to be asked");
  expect(await cl.get(high)).toBe(`${c.port}:${high}`);
  await waitFor(() => p.logs().includes("stale view: its newest config epoch is 2, older than the 3 already seen"), "the refusal to be logged");
  // Three refreshes of nothing else: b's view is taken after all (a cluster re-created from scratch looks the same).
  await waitFor(() => p.logs().includes("taking the newest"), "the stale view to be believed after all");
  expect(await cl.get(high)).toBe(`${b.port}:${high}`);
});

test("a master the cluster flags as failed gets no commands: they wait for its replacement", async () => {
  // Both nodes say the same: a owns everything, flagged failed once `failed`; then b does.
  let failed = false;
  const nodes = (args: string[]): FakeReply => {
    if (args[0] !== "CLUSTER" || args[1].toUpperCase() !== "NODES") return DEFAULT;
    return b.slots[0][2] === b.port ? clusterNodes([[b, 2, "0-16383"], [a, 1, ""]], [a]) : clusterNodes([[a, 1, "0-16383"], [b, 0, ""]], failed ? [a] : []);
  };
  const a: FakeNode = counting(nodes), b: FakeNode = counting(nodes);
  a.slots = b.slots = everything(a);
  const p = await proxyFor([b], { cluster: "refresh_interval_ms = 200" });
  const c = client(p);
  expect(await c.get("k")).toBe(`${a.port}:k`);
  failed = true;
  await waitFor(() => p.logs().includes(`the cluster marks '127.0.0.1:${a.port}' as failed`), "the fail flag to be seen");
  const reply = c.get("k2");
  await Bun.sleep(300);
  expect(sent(a, "GET", "k2")).toBe(0);
  b.slots = everything(b);
  expect(await reply).toBe(`${b.port}:k2`);
});

test("with every entry point down at start, predixy serves anyway and finds the cluster once it is up", async () => {
  const at = port();
  const p = await startProxy(proxyPort(), [`127.0.0.1:${at}`], { cluster: "retry_timeout_ms = 20000\nconnect_timeout_ms = 200" });
  cleanups.push(() => p.stop());
  expect(p.logs()).toContain("no entry point answered CLUSTER SLOTS");
  const c = client(p);
  expect(await c.ping()).toBe("PONG");
  const reply = c.get("k");
  await Bun.sleep(300);
  const a = startFakeNode(at, (args) => (args[0] === "GET" ? bulk(`late:${args[1]}`) : DEFAULT));
  cleanups.push(() => a.stop());
  expect(await reply).toBe("late:k");
  await waitFor(() => p.logs().includes("topology discovered"), "the discovery to be logged");
});

test("a node that leaves the table is forgotten and its connections closed", async () => {
  const a = counting(), b = counting();
  a.slots = b.slots = [[0, 8191, a.port], [8192, 16383, b.port]];
  const p = await proxyFor([a], { cluster: "refresh_interval_ms = 200" });
  const c = client(p);
  expect(await c.get(high)).toBe(`${b.port}:${high}`);
  expect(b.open).toBeGreaterThan(0);
  a.slots = b.slots = everything(a);
  await waitFor(() => p.logs().includes(`forgot '127.0.0.1:${b.port}'`), "b to be forgotten");
  await waitFor(() => b.open === 0, "b's connections to be closed");
  expect(await c.get(high)).toBe(`${a.port}:${high}`);
});
