// Slot ownership in a test cluster: who serves a slot, and moving one as redis-cli --cluster does.

import { redisCli } from "./redis-cluster.ts";

/** Ports of the nodes that are masters now (failovers change them). */
export async function masterPorts(ports: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of ports) if (/role:master/.test(await redisCli(p, ["info", "replication"]).catch(() => ""))) out.push(p);
  return out;
}

/** Port of the master serving `slot`, by CLUSTER SLOTS as `askPort` reports it. */
export async function ownerPort(askPort: number, slot: number): Promise<number> {
  // redis-cli prints each range as: start, end, then per node ip, port, id (one value per line).
  const lines = (await redisCli(askPort, ["cluster", "slots"])).split("\n");
  for (let i = 0; i + 3 < lines.length; i++) {
    if (/^\d+$/.test(lines[i]) && /^\d+$/.test(lines[i + 1]) && lines[i + 2].includes(".")) {
      const [a, b] = [Number(lines[i]), Number(lines[i + 1])];
      if (slot >= a && slot <= b) return Number(lines[i + 3]);
    }
  }
  throw new Error(`no owner for slot ${slot}`);
}

/**
 * Moves `slot` (with `keys`, which must all be in it) from its owner to another master, in the
 * order redis-cli --cluster uses: importing, migrating, the keys, then the target, the source
 * and the others told the new owner. Returns the new owner's port.
 */
export async function moveSlot(ports: number[], slot: number, keys: string[] = []): Promise<number> {
  const ms = await masterPorts(ports);
  const from = await ownerPort(ms[0], slot);
  const to = ms.find((p) => p !== from)!;
  const ids: Record<number, string> = {};
  for (const p of ms) ids[p] = await redisCli(p, ["cluster", "myid"]);
  await redisCli(to, ["cluster", "setslot", String(slot), "importing", ids[from]]);
  await redisCli(from, ["cluster", "setslot", String(slot), "migrating", ids[to]]);
  for (const k of keys) await redisCli(from, ["migrate", "127.0.0.1", String(to), k, "0", "5000"]);
  for (const p of [to, from, ...ms.filter((p) => p !== to && p !== from)]) await redisCli(p, ["cluster", "setslot", String(slot), "node", ids[to]]);
  return to;
}
