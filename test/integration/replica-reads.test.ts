// read_from: read-only commands on replicas that are up and in sync, against a scripted master and replica.

import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { bulk, DEFAULT, err, type FakeConn, type FakeNode } from "../helpers/fake-node.ts";
import { proxyConfig } from "../helpers/proxy.ts";
import { scripted, waitFor } from "../helpers/scripted.ts";

// Fake nodes on 8680–8689, proxies on 8698.
const { fake, proxyFor, client } = scripted(8680, 8689, [8698, 8698]);

interface Shard {
  master: FakeNode;
  replica: FakeNode;
  /** What the replica reports in INFO replication. */
  state: { offset: number; link: string };
}

/** A master (offset 1,000,000) and its replica serving every slot; the replica serves reads only after READONLY. */
function shard(): Shard {
  const state = { offset: 1_000_000, link: "up" };
  const slots = () => {
    const ep = (n: FakeNode) => `*3\r\n${bulk("127.0.0.1")}:${n.port}\r\n${bulk(`fake${n.port}`.padEnd(40, "0"))}`;
    return `*1\r\n*4\r\n:0\r\n:16383\r\n${ep(master)}${ep(replica)}`;
  };
  const master: FakeNode = fake((args) => {
    if (args[0] === "CLUSTER" && args[1].toUpperCase() === "SLOTS") return slots();
    if (args[0] === "INFO") return bulk("# Replication\r\nrole:master\r\nconnected_slaves:1\r\nmaster_repl_offset:1000000\r\n");
    if (args[0] === "GET") return bulk(`master:${args[1]}`);
    if (args[0] === "SET") return "+OK\r\n";
    return DEFAULT;
  });
  const readonly = new Set<FakeConn>();
  const replica: FakeNode = fake((args, conn) => {
    if (args[0] === "CLUSTER" && args[1].toUpperCase() === "SLOTS") return slots();
    if (args[0] === "INFO") return bulk(`# Replication\r\nrole:slave\r\nmaster_link_status:${state.link}\r\nslave_repl_offset:${state.offset}\r\n`);
    if (args[0] === "READONLY") { readonly.add(conn); return "+OK\r\n"; }
    if (args[0] === "READWRITE") { readonly.delete(conn); return "+OK\r\n"; }
    if (args[0] === "GET" && readonly.has(conn)) return bulk(`replica:${args[1]}`);
    if (args[0] === "MGET" && readonly.has(conn)) return `*1\r\n${bulk(`replica:${args[1]}`)}`;
    if (args[0] === "GET" || args[0] === "SET") return err(`MOVED 0 127.0.0.1:${master.port}`);
    return DEFAULT;
  });
  return { master, replica, state };
}

const FAST = "health_check_interval_ms = 100\nhealth_check_timeout_ms = 300";

test("prefer-replica: reads go to a replica in sync (after READONLY), writes to the master", async () => {
  const s = shard();
  const p = await proxyFor([s.master], { cluster: `read_from = "prefer-replica"\n${FAST}` });
  const c = client(p);
  await waitFor(async () => (await c.get("k")) === "replica:k", "reads to reach the replica");
  expect(s.replica.received.some((a) => a[0] === "READONLY")).toBe(true);
  expect(await c.set("k", "v")).toBe("OK");
  expect(s.replica.received.filter((a) => a[0] === "SET")).toEqual([]);
  // A split read goes there too, part by part.
  expect(await c.mget("a", "b", "c")).toEqual(["replica:a", "replica:b", "replica:c"]);
});

test("prefer-replica: a replica that lags, loses its master link or stops answering is skipped; the master serves", async () => {
  const s = shard();
  const p = await proxyFor([s.master], { cluster: `read_from = "prefer-replica"\nmax_replica_lag = 1000\n${FAST}` });
  const c = client(p);
  await waitFor(async () => (await c.get("k")) === "replica:k", "reads to reach the replica");
  s.state.offset = 999_500; // 500 bytes behind: in sync
  await Bun.sleep(300);
  expect(await c.get("k")).toBe("replica:k");
  s.state.offset = 500_000; // far behind
  await waitFor(async () => (await c.get("k")) === "master:k", "the lagging replica to be skipped");
  s.state.offset = 1_000_000;
  await waitFor(async () => (await c.get("k")) === "replica:k", "the replica to serve again");
  s.state.link = "down";
  await waitFor(async () => (await c.get("k")) === "master:k", "a replica without its master to be skipped");
  s.state.link = "up";
  await waitFor(async () => (await c.get("k")) === "replica:k", "the replica to serve again");
  // Frozen: every read meanwhile is answered (by the master), none fails.
  s.replica.freeze();
  for (let i = 0; i < 20; i++) expect(["replica:k", "master:k"]).toContain((await c.get("k"))!);
  await waitFor(async () => (await c.get("k")) === "master:k", "the silent replica to be skipped");
  s.replica.thaw();
});

test("replica: a lagging replica still serves (the master is spared); a dead one is skipped with no errors", async () => {
  const s = shard();
  const p = await proxyFor([s.master], { cluster: `read_from = "replica"\nmax_replica_lag = 1000\n${FAST}` });
  const c = client(p);
  await waitFor(async () => (await c.get("k")) === "replica:k", "reads to reach the replica");
  s.state.offset = 0;
  await Bun.sleep(300);
  expect(await c.get("k")).toBe("replica:k");
  s.replica.stop();
  const got = new Set<string>();
  for (let i = 0; i < 50; i++) got.add((await c.get("k"))!);
  expect([...got].every((g) => g === "replica:k" || g === "master:k")).toBe(true);
  await waitFor(async () => (await c.get("k")) === "master:k", "the master to serve");
});

test("SIGHUP from prefer-replica to master: replicas get READWRITE and reads go back to the master", async () => {
  const s = shard();
  const p = await proxyFor([s.master], { cluster: `read_from = "prefer-replica"\n${FAST}` });
  const c = client(p);
  await waitFor(async () => (await c.get("k")) === "replica:k", "reads to reach the replica");
  writeFileSync(p.configFile, proxyConfig(p.port, [`127.0.0.1:${s.master.port}`], { cluster: FAST }));
  p.signal("SIGHUP");
  await waitFor(() => p.logs().includes("'cluster.read_from' now in effect"), "the reload");
  expect(await c.get("k")).toBe("master:k");
  await waitFor(() => s.replica.received.some((a) => a[0] === "READWRITE"), "READWRITE on the replica's connection");
});
