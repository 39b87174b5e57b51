// P1 SET, predixy and C++ Predixy in turn, with who had the CPU during each run (bench/RESULTS.md, "steal").
//
// usage: bun bench/p1-pairs.ts PAIRS N [PREDIXY_EXE]   (cluster: bun scripts/cluster.ts start --dir .cluster-bench)
// Per run of `redis-benchmark -c 100 -P 1 -d 64 -r 1000000 -t set -n N`: rps, the proxy's CPU µs per
// request, % of one core used by the proxy, redis-benchmark and all redis-servers, the host's busy
// and steal (time the hypervisor gave other guests: every process here runs slower meanwhile),
// PSI "some", the proxy's context switches. C++ Predixy: CPP, CPP_CONF (port 7778).

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLK_TCK, cpuStallUs, cpuTicks, hostBusyPct, hostStealPct, hostTicks } from "./proc-stats.ts";
import { answersPing } from "../test/helpers/redis-cluster.ts";
import { stopGently } from "./procs.ts";

const [pairs, n] = [Number(Bun.argv[2]), Number(Bun.argv[3])];
if (!(pairs > 0 && n > 0)) throw new Error("usage: bun bench/p1-pairs.ts PAIRS N [PREDIXY_EXE]");
const exe = Bun.argv[4] ?? "dist/predixy";
const cpp = process.env.CPP ?? "/work/ext/predixy-cpp/src/predixy";
const cppConf = process.env.CPP_CONF ?? "/work/ext/predixy-cpp/bench.conf";

const config = join(tmpdir(), "predixy-p1-pairs.toml");
writeFileSync(config, `[server]\nbind = "127.0.0.1"\nport = 7790\n[cluster]\nentry_points = ["127.0.0.1:7000"]\n[log]\nlevel = "warning"\n[admin]\nport = 0\n`);
const proxies = [
  { name: "predixy", port: 7790, proc: Bun.spawn([exe, "-c", config], { stdout: "ignore", stderr: "ignore" }) },
  { name: "C++    ", port: 7778, proc: Bun.spawn([cpp, cppConf], { stdout: "ignore", stderr: "ignore" }) },
];

/** Voluntary and involuntary context switches over all of `pid`'s threads. */
function switches(pid: number): [number, number] {
  let v = 0, i = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const s = readFileSync(`/proc/${pid}/task/${t}/status`, "utf8");
    v += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    i += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
  }
  return [v, i];
}
const sumTicks = (pids: number[]) => pids.reduce((a, p) => a + (cpuTicks(p) || 0), 0);

async function run(pid: number, port: number, label: string): Promise<void> {
  const nodes = Bun.spawnSync(["pgrep", "-x", "redis-server"]).stdout.toString().trim().split("\n").map(Number);
  const t0 = performance.now(), p0 = cpuTicks(pid), n0 = sumTicks(nodes), s0 = cpuStallUs(), c0 = switches(pid), h0 = hostTicks();
  const bench = Bun.spawn(["redis-benchmark", "-p", String(port), "-c", "100", "-n", String(n), "-P", "1", "-d", "64", "-r", "1000000",
    "-t", "set", "--csv", "-q"], { stdout: "pipe", stderr: "ignore" });
  // redis-benchmark's own CPU, read while it is still there.
  let b = 0;
  const sampler = setInterval(() => { b = Math.max(b, cpuTicks(bench.pid) || 0); }, 200);
  const out = await new Response(bench.stdout).text();
  clearInterval(sampler);
  const s = (performance.now() - t0) / 1000, c1 = switches(pid);
  const core = (ticks: number) => ((ticks / CLK_TCK / s) * 100).toFixed(0);
  const rps = out.trim().split("\n").at(-1)?.split(",")[1]?.replaceAll('"', "");
  console.log(`${label} rps ${rps} | proxy µs/req ${(((cpuTicks(pid) - p0) / CLK_TCK) * 1e6 / n).toFixed(1)}` +
    ` | % of a core: proxy ${core(cpuTicks(pid) - p0)} bench ${core(b)} nodes ${core(sumTicks(nodes) - n0)}` +
    ` | host busy ${hostBusyPct(h0)?.toFixed(0)}% steal ${hostStealPct(h0)?.toFixed(0)}% | PSI some ${((cpuStallUs() - s0) / (s * 1e4)).toFixed(0)}%` +
    ` | proxy ctx switches per 1k req: vol ${Math.round(((c1[0] - c0[0]) * 1000) / n)} invol ${Math.round(((c1[1] - c0[1]) * 1000) / n)}`);
}

try {
  for (const p of proxies) for (let i = 0; i < 100 && !(await answersPing(p.port)); i++) await Bun.sleep(100);
  for (let i = 1; i <= pairs; i++) for (const p of proxies) await run(p.proc.pid, p.port, `${p.name} #${i}`);
} finally {
  await Promise.all(proxies.map((p) => stopGently(p.proc)));
}
