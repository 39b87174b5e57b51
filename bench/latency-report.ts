// The summary of bench/latency.ts: per (rate, pipeline, target), medians over the repeats.

import { cpus } from "node:os";
import { median, type Percentiles } from "./open-loop.ts";
import type { SyscallCounts } from "./syscalls.ts";

/** One run of one target: what the generators counted and what was sampled of the target. */
export interface RunRecord {
  target: string; rate: number; pipeline: number; rep: number;
  /** ms from each measured command's scheduled send to its reply. */
  latency: Percentiles;
  /** ms from actual send to reply; and the generators' lateness (scheduled → actual send). */
  serviceP50: number; serviceP99: number; latenessP50: number; latenessP99: number; latenessMax: number;
  /** Replies per second that arrived inside the window. */
  achieved: number;
  due: number; answered: number; missed: number; dropped: number; unsent: number; late: number; errors: number; nulls: number;
  connections: number;
  /** The target's CPU (% of one core) and its CPU µs per reply, peak RSS, over the window; null without a pid. */
  cpuPct: number | null; usPerCmd: number | null; rssMaxMB: number | null;
  /** With --syscalls: the target's read, write and epoll_wait calls per reply over the window. */
  syscallsPerCmd: SyscallCounts | null;
  genCpuPct: number; hostCpuPct: number | null;
  /** Share of the window in which some runnable task waited for a CPU (PSI "some"); null without /proc/pressure. */
  cpuStallPct: number | null;
  /** % of the host's CPU time the hypervisor took (steal): every process here runs slower meanwhile. */
  stealPct: number | null;
  /** Whether the generators ran with the pacer thread. */
  pacer: boolean;
  connErrors: string[]; firstError: string | null;
}

interface ReportOptions {
  rates: number[]; pipelines: number[]; clients: number; durationS: number; warmupS: number; repeat: number;
  generators: number; pacer: string; setRatio: number; valueSize: number; keyspace: number; lateMs: number; markdown: boolean;
}

function table(head: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
    return [line(head), line(head.map((_, i) => (i < 3 ? "---" : "---:"))), ...rows.map(line)].join("\n");
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

const ms = (x: number | null) => (x === null ? "–" : x < 10 ? x.toFixed(2) : x.toFixed(1));
const int = (x: number | null) => (x === null ? "–" : Math.round(x).toLocaleString("en-US"));
const fixed = (x: number | null, d: number) => (x === null ? "–" : x.toFixed(d));

/** Prints the summary tables to stdout; `hwm` is each measured process's VmHWM (MB) at the end. */
export function printReport(o: ReportOptions, runs: RunRecord[], targets: string[], hwm: Map<string, number>, totalS: number): void {
  const lat: string[][] = [], res: string[][] = [], sys: string[][] = [];
  for (const rate of o.rates) {
    for (const pipeline of o.pipelines) {
      for (const t of targets) {
        const rs = runs.filter((r) => r.rate === rate && r.pipeline === pipeline && r.target === t);
        if (rs.length === 0) continue;
        const m = (f: (r: RunRecord) => number | null) => median(rs.map(f));
        const cell = [int(rate), String(pipeline), t];
        lat.push([...cell, ms(m((r) => r.latency.p50)), ms(m((r) => r.latency.p95)), ms(m((r) => r.latency.p99)),
          ms(m((r) => r.latency.p999)), ms(m((r) => r.latency.max)), int(m((r) => r.achieved)),
          fixed(m((r) => (r.due ? (100 * r.late) / r.due : 0)), 2), int(m((r) => r.missed)), int(Math.max(...rs.map((r) => r.errors)))]);
        const rss = rs.map((r) => r.rssMaxMB).filter((x): x is number => x !== null);
        res.push([...cell, fixed(m((r) => r.cpuPct), 0), fixed(m((r) => r.usPerCmd), 1), rss.length ? fixed(Math.max(...rss), 0) : "–",
          `${ms(m((r) => r.serviceP50))} / ${ms(m((r) => r.serviceP99))}`,
          `${ms(m((r) => r.latenessP50))} / ${ms(m((r) => r.latenessP99))} / ${ms(m((r) => r.latenessMax))}`,
          fixed(m((r) => r.genCpuPct), 0), fixed(m((r) => r.hostCpuPct), 0), fixed(m((r) => r.cpuStallPct), 0),
          fixed(m((r) => r.stealPct), 0)]);
        sys.push([...cell, fixed(m((r) => r.syscallsPerCmd?.reads ?? null), 2), fixed(m((r) => r.syscallsPerCmd?.writes ?? null), 2),
          fixed(m((r) => r.syscallsPerCmd?.polls ?? null), 2)]);
      }
    }
  }
  const h = o.markdown ? "" : "\n";
  const out = [
    `${h}Open loop: ${o.clients} clients at random phases, ${Math.round((1 - o.setRatio) * 100)}% GET / ${Math.round(o.setRatio * 100)}% SET ` +
      `of ${o.valueSize}-byte values over ${int(o.keyspace)} prefilled keys; ${o.warmupS} s warm-up + ${o.durationS} s measured per run, ` +
      `${o.repeat} run(s) per cell, targets taking turns; ${o.generators} generator process(es), pacer ${o.pacer}; ` +
      `${cpus().length} cores. Medians over the runs; latency in ms from each command's scheduled send.`,
    "",
    table(["rate/s", "P", "target", "p50", "p95", "p99", "p99.9", "max", "achieved/s", `late % (>${o.lateMs} ms)`, "missed", "errors"], lat, o.markdown),
    "",
    table(["rate/s", "P", "target", "CPU %", "CPU µs/cmd", "RSS peak MB", "sent→reply p50 / p99", "gen lateness p50 / p99 / max", "gen CPU %", "host CPU %", "CPU stall %", "steal %"], res, o.markdown),
  ];
  if (sys.some((r) => r.slice(3).some((c) => c !== "–"))) {
    out.push("", table(["rate/s", "P", "target", "reads/cmd", "writes/cmd", "epoll waits/cmd"], sys, o.markdown));
  }
  if (hwm.size) out.push("", `VmHWM at the end: ${[...hwm].map(([t, mb]) => `${t} ${mb.toFixed(0)} MB`).join(", ")}`);
  const warnings: string[] = [];
  const nulls = runs.filter((r) => r.nulls > r.answered * 0.001);
  if (nulls.length) warnings.push(`warning: ${nulls.length} run(s) had GETs that missed (not prefilled?): ${nulls.map((r) => `${r.target} ${r.nulls}`).join(", ")}`);
  // The generator could not keep its schedule: latency then shows the host's overload, not the target's.
  for (const r of runs.filter((x) => x.latenessP50 > o.lateMs || x.unsent > 0)) {
    warnings.push(`warning: ${r.target} ${r.rate}/s P${r.pipeline} run ${r.rep + 1}: the generator fell behind ` +
      `(lateness p50 ${ms(r.latenessP50)} ms, ${int(r.unsent)} commands of the window never sent): this host cannot offer this load to this target`);
  }
  for (const r of runs.filter((x) => x.errors || x.connErrors.length)) {
    warnings.push(`warning: ${r.target} ${r.rate}/s P${r.pipeline} run ${r.rep + 1}: ${r.errors} error replies` +
      (r.firstError ? ` (first: ${r.firstError})` : "") + (r.connErrors.length ? `; connections lost: ${r.connErrors.join("; ")}` : ""));
  }
  if (warnings.length) out.push("", ...warnings);
  out.push("", `total ${Math.round(totalS)} s`);
  process.stdout.write(out.join("\n") + "\n");
}
