// The local-cluster helper itself: it starts a real 3x1 cluster, the cluster works, and stop frees the ports.
import { test, expect, beforeAll, afterAll } from "bun:test";
import { readFileSync } from "node:fs";
import { type ClusterHandle, redisCli, startCluster } from "../helpers/redis-cluster.ts";

const BASE = 7200;
const PORTS = [0, 1, 2, 3, 4, 5].map((i) => BASE + i);
let cluster: ClusterHandle | undefined;

beforeAll(async () => {
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 1, dir: `/tmp/predixy-test-${BASE}` });
}, 60_000);

// Only a failed test gets here with a live cluster; the last test stops it itself to check the ports.
afterAll(async () => {
  await cluster?.stop();
});

test("handle lists every node in port order with its pid", () => {
  expect(cluster!.nodes.map((n) => n.port)).toEqual(PORTS);
  expect(cluster!.entryPoints).toEqual(PORTS.map((p) => `127.0.0.1:${p}`));
  for (const n of cluster!.nodes) expect(n.pid).toBeGreaterThan(0);
});

test("cluster reports ok with all slots assigned", async () => {
  const info = await redisCli(BASE, ["cluster", "info"]);
  expect(info).toContain("cluster_state:ok");
  expect(info).toContain("cluster_slots_assigned:16384");
});

test("cluster has 3 masters and 3 replicas", async () => {
  const lines = (await redisCli(BASE, ["cluster", "nodes"])).split("\n");
  const flags = lines.map((l) => l.split(" ")[2]);
  expect(flags.filter((f) => f.includes("master"))).toHaveLength(3);
  expect(flags.filter((f) => f.includes("slave"))).toHaveLength(3);
});

test("a key written through one node reads back through another with redirects", async () => {
  // "{user1000}" hashes to slot 3443 (first master); writing via the last node forces a MOVED.
  expect(await redisCli(BASE + 2, ["-c", "set", "{user1000}k", "v1"])).toBe("OK");
  expect(await redisCli(BASE + 1, ["-c", "get", "{user1000}k"])).toBe("v1");
});

test("redisCli throws with redis-cli's stderr when it cannot connect", async () => {
  await expect(redisCli(BASE + 99, ["ping"])).rejects.toThrow(/Could not connect/);
});

test("stop kills every node and frees client and bus ports", async () => {
  const c = cluster!;
  cluster = undefined;
  await c.stop();
  for (const p of PORTS) {
    for (const port of [p, p + 10000]) {
      const l = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
      l.stop(true);
    }
  }
  for (const n of c.nodes) expect(processAlive(n.pid)).toBe(false);
});

/** Zombies count as dead: a daemonized node's parent may be a pid 1 that never reaps. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}
