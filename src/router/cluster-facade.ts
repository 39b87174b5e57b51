// The cluster façade: predixy answers CLUSTER … as a one-node cluster that owns every served slot.

import { slotOf } from "../cluster/key-slot.ts";
import { NO_NODE, SLOT_COUNT, type SlotTable } from "../cluster/slot-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";

/**
 * A cluster-mode client (ioredis Cluster, redis-py RedisCluster, Lettuce, go-redis) asks for the
 * topology and then connects to the nodes it names. Naming predixy as the only node keeps those
 * clients on predixy, which splits and routes for them, and never shows them the private node
 * addresses. Slots the real cluster does not serve are left out, as a node would leave them out.
 */
export interface FacadeAddress {
  host: string;
  port: number;
}

const enc = new TextEncoder();
const ids = new Map<string, string>();

/** A stable 40-hex-digit node id per advertised address. */
export function nodeId(a: FacadeAddress): string {
  const key = `${a.host}:${a.port}`;
  let id = ids.get(key);
  if (id === undefined) {
    id = Bun.SHA1.hash(`predixy ${key}`, "hex") as string;
    ids.set(key, id);
  }
  return id;
}

/** Runs of consecutive served slots: [[0, 16383]] for a healthy cluster. */
export function servedRanges(table: SlotTable): [number, number][] {
  const ranges: [number, number][] = [];
  let start = -1;
  for (let s = 0; s <= SLOT_COUNT; s++) {
    const served = s < SLOT_COUNT && table.owner[s] !== NO_NODE;
    if (served && start < 0) start = s;
    else if (!served && start >= 0) {
      ranges.push([start, s - 1]);
      start = -1;
    }
  }
  return ranges;
}

const bulk = (s: string) => `$${enc.encode(s).length}\r\n${s}\r\n`;
const int = (n: number) => `:${n}\r\n`;

/** The reply to a FACADE command (`name` as in the command table). */
export function facadeReply(name: string, f: Frame, at: FacadeAddress, table: SlotTable): Uint8Array {
  const id = nodeId(at);
  const ranges = servedRanges(table);
  switch (name) {
    case "cluster|slots": {
      const node = `*4\r\n${bulk(at.host)}${int(at.port)}${bulk(id)}*0\r\n`;
      return enc.encode(`*${ranges.length}\r\n${ranges.map(([a, b]) => `*3\r\n${int(a)}${int(b)}${node}`).join("")}`);
    }
    case "cluster|shards": {
      if (ranges.length === 0) return enc.encode("*0\r\n");
      const slots = `*${ranges.length * 2}\r\n${ranges.map(([a, b]) => int(a) + int(b)).join("")}`;
      const node = `*14\r\n${bulk("id")}${bulk(id)}${bulk("port")}${int(at.port)}${bulk("ip")}${bulk(at.host)}` +
        `${bulk("endpoint")}${bulk(at.host)}${bulk("role")}${bulk("master")}${bulk("replication-offset")}${int(0)}` +
        `${bulk("health")}${bulk("online")}`;
      return enc.encode(`*1\r\n*4\r\n${bulk("slots")}${slots}${bulk("nodes")}*1\r\n${node}`);
    }
    case "cluster|nodes": {
      const slots = ranges.map(([a, b]) => (a === b ? ` ${a}` : ` ${a}-${b}`)).join("");
      // Redis prints IPv6 hosts unbracketed here too.
      return R.bulkReply(enc.encode(`${id} ${at.host}:${at.port}@0 myself,master - 0 0 1 connected${slots}\n`));
    }
    case "cluster|info": {
      const served = ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
      const lines = [
        `cluster_state:${served === SLOT_COUNT ? "ok" : "fail"}`, `cluster_slots_assigned:${served}`,
        `cluster_slots_ok:${served}`, "cluster_slots_pfail:0", "cluster_slots_fail:0", "cluster_known_nodes:1",
        `cluster_size:${served > 0 ? 1 : 0}`, "cluster_current_epoch:1", "cluster_my_epoch:1",
        "cluster_stats_messages_sent:0", "cluster_stats_messages_received:0", "total_cluster_links_buffer_limit_exceeded:0",
      ];
      return R.bulkReply(enc.encode(`${lines.join("\r\n")}\r\n`));
    }
    case "cluster|myid":
      return R.bulkReply(enc.encode(id));
    case "cluster|myshardid":
      return R.bulkReply(enc.encode(Bun.SHA1.hash(`predixy shard ${id}`, "hex") as string));
    case "cluster|keyslot":
      return R.intReply(slotOf(f.src, f.base + f.argStart[2], f.base + f.argEnd[2]));
    case "cluster|links":
      return EMPTY_ARRAY;
    case "cluster|replicas":
    case "cluster|slaves": {
      const asked = new TextDecoder().decode(f.arg(2));
      return asked === id ? EMPTY_ARRAY : R.errorReply(`ERR Unknown node ${asked}`);
    }
    default:
      return R.errorReply(`ERR unknown subcommand '${name}'`);
  }
}

const EMPTY_ARRAY = enc.encode("*0\r\n");
