// Per-second history of the group's figures for the dashboard: rates and interval percentiles.

import { newHistogram, percentiles, BUCKETS } from "../metrics/histogram.ts";
import type { GroupView } from "../metrics/snapshot.ts";

/** One second of the proxy. Rates are per second; percentiles (µs) are of that second's commands. */
export interface Point {
  /** Unix ms. */
  t: number;
  ops: number;
  /** ops/s by command, commands with traffic in the second only. */
  cmds: Record<string, number>;
  /** Client-observed p50, p99, p99.9 over the second (0 without traffic). */
  lat: [number, number, number];
  /** Per node: [replies/s, p50, p99] over the second. */
  nodes: Record<string, [number, number, number]>;
  errors: number;
  clients: number;
  rss: number;
  /** CPU used, as a percentage of one core, summed over processes. */
  cpu: number;
}

/** Five minutes at one point a second. */
const KEEP = 300;

export class History {
  readonly points: Point[] = [];
  private prev: GroupView | null = null;

  /** The latest view added (the dashboard's page reads it rather than taking one per poll). */
  get latest(): GroupView | null {
    return this.prev;
  }
  private prevAll = newHistogram();
  private prevNodeHist = new Map<string, Float64Array>();

  /** Adds the second ending with `v` (the first call only sets the baseline). */
  add(v: GroupView): void {
    const p = this.prev;
    this.prev = v;
    if (p === null || v.takenAt <= p.takenAt) {
      this.remember(v);
      return;
    }
    const dt = (v.takenAt - p.takenAt) / 1000;
    // A restarted worker or RESETSTAT makes counters go back: such a second reads as 0.
    const rate = (now: number, before: number) => Math.max(0, (now - before) / dt);
    const cmds: Record<string, number> = {};
    const prevCalls = new Map(p.commands.map((c) => [c.name, c.calls]));
    for (const c of v.commands) {
      const r = rate(c.calls, prevCalls.get(c.name) ?? 0);
      if (r > 0) cmds[c.name] = Math.round(r * 10) / 10;
    }
    const nodes: Record<string, [number, number, number]> = {};
    const prevNodeCalls = new Map(p.nodes.map((n) => [n.addr, n.calls]));
    for (const n of v.nodes) {
      const d = delta(n.hist, this.prevNodeHist.get(n.addr));
      const [p50, p99] = percentiles(d, [50, 99]);
      nodes[n.addr] = [Math.round(rate(n.calls, prevNodeCalls.get(n.addr) ?? 0)), p50, p99];
    }
    const cpuUs = (x: GroupView) => x.processes.reduce((a, q) => a + q.cpuUserUs + q.cpuSystemUs, 0);
    const lat = percentiles(delta(v.all, this.prevAll), [50, 99, 99.9]) as [number, number, number];
    this.points.push({
      t: v.takenAt,
      ops: Math.round(rate(v.stats.total_commands_processed, p.stats.total_commands_processed)),
      cmds, lat, nodes,
      errors: Math.round(rate(v.totalErrorReplies, p.totalErrorReplies)),
      clients: v.clients.connected,
      rss: v.processes.reduce((a, q) => a + q.rss, 0),
      cpu: Math.round((Math.max(0, cpuUs(v) - cpuUs(p)) / 1e6 / dt) * 1000) / 10,
    });
    if (this.points.length > KEEP) this.points.shift();
    this.remember(v);
  }

  /** Points after `since` (Unix ms). */
  since(since: number): Point[] {
    return this.points.filter((p) => p.t > since);
  }

  private remember(v: GroupView): void {
    this.prevAll = v.all.slice();
    this.prevNodeHist = new Map(v.nodes.map((n) => [n.addr, n.hist.slice()]));
  }
}

/** `now - before`, bucket by bucket; negative (a reset) as 0. */
function delta(now: Float64Array, before: Float64Array | undefined): Float64Array {
  if (before === undefined) return now;
  const d = newHistogram();
  for (let i = 0; i < BUCKETS; i++) d[i] = Math.max(0, now[i] - before[i]);
  return d;
}
