// The cluster façade: predixy answers CLUSTER … as a one-node cluster that owns every served slot.

import { slotOf } from "../cluster/key-slot.ts";
import { NO_NODE, SLOT_COUNT, type SlotTable } from "../cluster/slot-table.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeReply, ReplyMap, Verbatim, type Proto } from "../resp/reply-writer.ts";

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

/** The reply to a FACADE command (`name` as in the command table), in the client's protocol. */
export function facadeReply(name: string, f: Frame, at: FacadeAddress, table: SlotTable, proto: Proto): Uint8Array {
  const id = nodeId(at);
  const ranges = servedRanges(table);
  switch (name) {
    case "cluster|slots": {
      const node = [at.host, at.port, id, new ReplyMap([])];
      return encodeReply(ranges.map(([a, b]) => [a, b, node]), proto);
    }
    case "cluster|shards": {
      if (ranges.length === 0) return encodeReply([], proto);
      return encodeReply([new ReplyMap([
        ["slots", ranges.flat()],
        ["nodes", [new ReplyMap([
          ["id", id], ["port", at.port], ["ip", at.host], ["endpoint", at.host], ["role", "master"],
          ["replication-offset", 0], ["health", "online"],
        ])]],
      ])], proto);
    }
    case "cluster|nodes": {
      const slots = ranges.map(([a, b]) => (a === b ? ` ${a}` : ` ${a}-${b}`)).join("");
      // Redis prints IPv6 hosts unbracketed here too.
      return encodeReply(new Verbatim(`${id} ${at.host}:${at.port}@0 myself,master - 0 0 1 connected${slots}\n`), proto);
    }
    case "cluster|info": {
      const served = ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
      const lines = [
        `cluster_state:${served === SLOT_COUNT ? "ok" : "fail"}`, `cluster_slots_assigned:${served}`,
        `cluster_slots_ok:${served}`, "cluster_slots_pfail:0", "cluster_slots_fail:0", "cluster_known_nodes:1",
        `cluster_size:${served > 0 ? 1 : 0}`, "cluster_current_epoch:1", "cluster_my_epoch:1",
        "cluster_stats_messages_sent:0", "cluster_stats_messages_received:0", "total_cluster_links_buffer_limit_exceeded:0",
      ];
      return encodeReply(new Verbatim(`${lines.join("\r\n")}\r\n`), proto);
    }
    case "cluster|myid":
      return encodeReply(id, proto);
    case "cluster|myshardid":
      return encodeReply(Bun.SHA1.hash(`predixy shard ${id}`, "hex") as string, proto);
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
