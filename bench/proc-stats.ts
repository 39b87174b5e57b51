// CPU and memory of processes, and of the whole host, from /proc: what the benchmark samples.

import { readFileSync } from "node:fs";

const SAMPLE_MS = 100;
export const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** The proxy and its worker processes (with `--workers`, they are its children). */
function family(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return [pid, ...(kids ? kids.split(" ").map(Number) : [])];
  } catch { return [pid]; }
}

/** utime + stime in clock ticks, summed over the process family, or NaN once the process is gone. */
export function cpuTicks(pid: number): number {
  let sum = 0;
  for (const p of family(pid)) {
    try {
      const s = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
      sum += Number(f[11]) + Number(f[12]);
    } catch { if (p === pid) return NaN; }
  }
  return sum;
}

/** A VmRSS / VmHWM line of /proc/PID/status in kB, summed over the process family (NaN if unreadable). */
export function statusKB(pid: number, field: "VmRSS" | "VmHWM"): number {
  let sum = 0;
  for (const p of family(pid)) {
    try {
      sum += Number(readFileSync(`/proc/${p}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+)`, "m"))?.[1]);
    } catch { if (p === pid) return NaN; }
  }
  return sum;
}

/**
 * [busy, total, steal] jiffies over all cores, from the first line of /proc/stat. Steal is time
 * the hypervisor gave this machine's CPUs to others: every process here runs slower meanwhile
 * (the "stalled" benchmark runs of bench/RESULTS.md), so it is counted apart from busy.
 */
export function hostTicks(): [number, number, number] {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0); // idle + iowait
  const steal = f[7] || 0;
  const total = f.reduce((a, b) => a + b, 0);
  return [total - idle - steal, total, steal];
}

/** % of all cores' time since `from` spent running tasks here. */
export function hostBusyPct(from: [number, number, number]): number | null {
  const [busy, total] = hostTicks();
  return total > from[1] ? ((busy - from[0]) / (total - from[1])) * 100 : null;
}

/** % of all cores' time since `from` taken by the hypervisor (steal). */
export function hostStealPct(from: [number, number, number]): number | null {
  const [, total, steal] = hostTicks();
  return total > from[1] ? ((steal - from[2]) / (total - from[1])) * 100 : null;
}

/** CPU % over one run's wall time and the highest VmRSS seen, sampled every SAMPLE_MS. */
export class ProcSampler {
  private ticks0: number;
  private t0 = performance.now();
  private maxKB: number;
  private timer: ReturnType<typeof setInterval>;
  constructor(private readonly pid: number) {
    this.ticks0 = cpuTicks(pid);
    this.maxKB = statusKB(pid, "VmRSS");
    this.timer = setInterval(() => { this.maxKB = Math.max(this.maxKB, statusKB(this.pid, "VmRSS")); }, SAMPLE_MS);
  }
  stop(): { cpuPct: number | null; rssMaxMB: number | null } {
    clearInterval(this.timer);
    this.maxKB = Math.max(this.maxKB, statusKB(this.pid, "VmRSS"));
    const wallS = (performance.now() - this.t0) / 1000;
    const cpu = ((cpuTicks(this.pid) - this.ticks0) / CLK_TCK / wallS) * 100;
    return { cpuPct: Number.isFinite(cpu) ? cpu : null, rssMaxMB: Number.isFinite(this.maxKB) ? this.maxKB / 1024 : null };
  }
}

/** Microseconds some task has waited for a CPU since boot (/proc/pressure/cpu "some total"), or NaN without PSI. */
export function cpuStallUs(): number {
  try {
    return Number(readFileSync("/proc/pressure/cpu", "utf8").match(/^some .*total=(\d+)/m)?.[1]);
  } catch { return NaN; }
}
