// The summary of a benchmark run: medians per cell, as a table (or Markdown) and optionally JSON.

import { readFileSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import type { Options, Proxy, Row, Run } from "./e2e.ts";

const HOST = "127.0.0.1";

function median(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export const maxOf = (xs: (number | null)[]): number | null =>
  xs.reduce<number | null>((a, x) => (x === null || !Number.isFinite(x) ? a : a === null ? x : Math.max(a, x)), null);

function summarize(row: Row) {
  const leg = (runs: Run[]) => ({
    rps: median(runs.map((r) => r.rps)), p50Ms: median(runs.map((r) => r.p50Ms)), p99Ms: median(runs.map((r) => r.p99Ms)),
    hitPct: median(runs.map((r) => r.hitPct)), hostCpuPct: median(runs.map((r) => r.hostCpuPct)),
    stealPct: median(runs.map((r) => r.hostStealPct)),
  });
  const proxy = leg(row.runs.proxy), direct = leg(row.runs.direct);
  return {
    pipeline: row.pipeline, test: row.test, proxy, direct,
    ratio: proxy.rps !== null && direct.rps ? proxy.rps / direct.rps : null,
    proxyCpuPct: median(row.runs.proxy.map((r) => r.cpuPct)),
    directCpuPct: median(row.runs.direct.map((r) => r.cpuPct)),
    proxyRssMaxMB: maxOf(row.runs.proxy.map((r) => r.rssMaxMB)),
  };
}

export const fmtInt = (x: number | null) => (x === null ? "n/a" : Math.round(x).toLocaleString("en-US"));
const fmt = (x: number | null, d: number) => (x === null ? "n/a" : x.toFixed(d));
export const secs = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

function machine() {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const nproc = Bun.spawnSync(["nproc"]).stdout.toString().trim();
  const rb = Bun.spawnSync(["redis-benchmark", "--version"]).stdout.toString().trim();
  return { nproc: Number(nproc), cpu, kernel: release(), bun: Bun.version, redisBenchmark: rb };
}

export function report(o: Options, rows: Row[], proxy: Proxy, peak: { hwmMB: number | null; rssMaxMB: number | null }, wallS: number) {
  const sums = rows.map(summarize);
  const m = machine();
  // --ab-metrics: both legs are the proxy, with its recording on ("proxy") and off ("direct").
  const [A, B] = o.abMetrics ? ["metrics on", "metrics off"] : ["proxy", "direct"];
  const head = ["P", "test", `${A} QPS`, `${B} QPS`, `${A}/${B}`, `${A} p50/p99 ms`, `${B} p50/p99 ms`,
    o.abMetrics ? `CPU % ${A}/${B}` : `${A} CPU %`, `${A} RSS MB`, `host CPU % ${A}/${B}`, `steal % ${A}/${B}`, `read hits ${A}/${B} %`];
  const body = sums.map((s) => [
    String(s.pipeline), s.test.toUpperCase(), fmtInt(s.proxy.rps), fmtInt(s.direct.rps), fmt(s.ratio, 2),
    `${fmt(s.proxy.p50Ms, 3)} / ${fmt(s.proxy.p99Ms, 3)}`, `${fmt(s.direct.p50Ms, 3)} / ${fmt(s.direct.p99Ms, 3)}`,
    o.abMetrics ? `${fmt(s.proxyCpuPct, 0)} / ${fmt(s.directCpuPct, 0)}` : fmt(s.proxyCpuPct, 0), fmt(s.proxyRssMaxMB, 0), `${fmt(s.proxy.hostCpuPct, 0)} / ${fmt(s.direct.hostCpuPct, 0)}`,
    `${fmt(s.proxy.stealPct, 0)} / ${fmt(s.direct.stealPct, 0)}`,
    s.test === "get" || s.test === "mget" ? `${fmt(s.proxy.hitPct, 0)} / ${fmt(s.direct.hitPct, 0)}` : "-",
  ]);
  const commandLine = ["bun", "bench/e2e.ts", ...Bun.argv.slice(2)].join(" ");
  const peakLine = `proxy peak RSS: VmHWM ${fmt(peak.hwmMB, 1)} MB, max sampled VmRSS ${fmt(peak.rssMaxMB, 1)} MB`;
  const commands = rows.flatMap((r) => [r.commands.proxy, r.commands.direct]);
  const params = `-c ${o.clients} -r ${o.keyspace} -d ${o.dataSize}; ${o.repeat} run(s) per cell, medians; ` +
    `${A} and ${B} runs interleaved`;
  if (o.markdown) {
    const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
    console.log([
      `### ${new Date().toISOString().slice(0, 10)}: \`${commandLine}\``, "",
      `- Machine: ${m.cpu}, nproc ${m.nproc}, Linux ${m.kernel}, Bun ${m.bun}, ${m.redisBenchmark}`,
      `- Cluster: ${o.masters} masters × ${o.replicas} replica(s) on ${HOST}:${o.basePort}; proxy: \`${proxy.cmd}\``,
      `- redis-benchmark ${params}; whole run ${wallS.toFixed(0)} s`, "",
      line(head), line(head.map((_, i) => (i < 2 ? "---" : "---:"))), ...body.map(line), "",
      peakLine, "", "Commands:", "", "```", ...commands, "```",
    ].join("\n"));
  } else {
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    console.log([
      "", line(head), ...body.map(line), "", peakLine,
      `redis-benchmark ${params}`, `proxy: ${proxy.cmd}`,
      `machine: nproc ${m.nproc}, ${m.cpu}, Bun ${m.bun}, ${m.redisBenchmark}; whole run ${wallS.toFixed(0)} s`,
      "commands:", ...commands.map((c) => "  " + c),
    ].join("\n"));
  }
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({
      date: new Date().toISOString(), command: commandLine, machine: m, options: o, proxy: { cmd: proxy.cmd, ...peak },
      wallS, summary: sums, rows,
    }, null, 2) + "\n");
  }
}
