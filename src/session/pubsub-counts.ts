// PUBLISH, SPUBLISH and PUBSUB … over the cluster, counting predixy's clients, not its connections.

import type { BackendNode } from "../backend/backend-node.ts";
import type { Frame } from "../resp/request-reader.ts";
import { decodeReply, RespError, type RespValue } from "../resp/reply-value.ts";
import { encodeReply, type Proto } from "../resp/reply-writer.ts";
import * as R from "../resp/replies.ts";
import { Gather, isError, partFailure, replyInteger } from "../router/gather.ts";
import type { Request } from "../router/request.ts";
import { bytesOf, nameOf } from "./channel-name.ts";
import type { PubSub } from "./pubsub.ts";

/**
 * A node counts predixy's subscriber connection as one receiver of a channel, however many
 * clients of predixy subscribed to it. So counts from the nodes are mended: predixy's own
 * connection taken out, its clients put in. Other nodes' direct subscribers count as they are.
 */
export class PublishGather extends Gather {
  /**
   * PUBLISH goes to the master holding predixy's classic subscriber connection (Redis Cluster
   * passes every message to every node; the reply counts that node's receivers); SPUBLISH to the
   * channel's owner.
   */
  constructor(parent: Request, private readonly pubsub: PubSub, private readonly channel: string, private readonly shard: boolean,
    node: BackendNode | null) {
    super(parent);
    // A PUBLISH whose master is down: another master serves it the same (not so SPUBLISH).
    this.anyMasterWillDo = !shard;
    this.addPart(parent.src, parent.start, parent.end, parent.slot, node);
  }

  merge(): Uint8Array {
    const r = this.parts[0];
    const n = replyInteger(r);
    if (isError(r) || Number.isNaN(n)) return partFailure(this, r, this.parent.spec!);
    const node = r.target ?? this.pubsub.ownerNode(this.channel);
    const mended = this.shard
      ? n - this.pubsub.ownShard(this.channel, node) + this.pubsub.localShard(this.channel)
      : n - this.pubsub.ownReceivers(this.channel, node) + this.pubsub.localReceivers(this.channel);
    return R.intReply(Math.max(0, mended));
  }
}

/** PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB: every master asked, the answers joined. */
export class PubsubGather extends Gather {
  constructor(parent: Request, private readonly pubsub: PubSub, private readonly sub: string, private readonly args: string[],
    private readonly proto: Proto, masters: readonly BackendNode[]) {
    super(parent);
    for (const m of masters) this.addPart(parent.src, parent.start, parent.end, -1, m);
  }

  merge(): Uint8Array {
    const replies: RespValue[] = [];
    for (const r of this.parts) {
      if (isError(r)) return partFailure(this, r, this.parent.spec!);
      const v = decodeReply(r.reply, r.replyStart, true).value;
      if (v instanceof RespError) return partFailure(this, r, this.parent.spec!);
      replies.push(v);
    }
    switch (this.sub) {
      case "channels":
      case "shardchannels": {
        // Subscribed channels anywhere (predixy's own subscriptions are among them).
        const all = new Set<string>();
        for (const v of replies) if (Array.isArray(v)) for (const ch of v) if (typeof ch === "string") all.add(ch);
        return encodeReply([...all].sort().map(bytesOf), this.proto);
      }
      case "numpat": {
        // Unique patterns per node, summed: a pattern subscribed on two nodes counts twice.
        let n = this.pubsub.localPatterns();
        this.parts.forEach((r, i) => { n += Number(replies[i]) - this.pubsub.ownPatterns(r.target!); });
        return R.intReply(Math.max(0, n));
      }
      default: { // numsub, shardnumsub: [channel, count, …] per node
        const shard = this.sub === "shardnumsub";
        const out: (Uint8Array | number)[] = [];
        for (let k = 0; k < this.args.length; k++) {
          const ch = this.args[k];
          let n = shard ? this.pubsub.localShard(ch) : this.pubsub.localChannelSubscribers(ch);
          this.parts.forEach((r, i) => {
            const v = replies[i];
            const count = Array.isArray(v) ? Number(v[2 * k + 1]) : 0;
            n += (Number.isFinite(count) ? count : 0) - (shard ? this.pubsub.ownShard(ch, r.target) : this.pubsub.ownChannel(ch, r.target));
          });
          out.push(bytesOf(ch), Math.max(0, n));
        }
        return encodeReply(out, this.proto);
      }
    }
  }
}

/** The channel of PUBLISH/SPUBLISH `f`, and PUBSUB's arguments after the subcommand. */
export function argStrings(f: Frame, from: number): string[] {
  const out: string[] = [];
  for (let i = from; i < f.argc; i++) out.push(nameOf(f.arg(i)));
  return out;
}
