// A process's system calls over a window, counted by `perf stat` on the syscall tracepoints (root; optional).

import { existsSync } from "node:fs";
import type { Subprocess } from "bun";

const KINDS = {
  reads: ["read", "readv", "recvfrom", "recvmsg"],
  writes: ["write", "writev", "sendto", "sendmsg"],
  polls: ["epoll_wait", "epoll_pwait", "epoll_pwait2"],
} as const;

export type SyscallCounts = Record<keyof typeof KINDS, number>;

/** The tracepoints this kernel has (perf refuses the whole list if one is unknown). */
function events(): string[] {
  return Object.values(KINDS).flat().filter((s) => existsSync(`/sys/kernel/tracing/events/syscalls/sys_enter_${s}`))
    .map((s) => `syscalls:sys_enter_${s}`);
}

/** Starts `perf stat` on `pid`'s threads; `stop()` resolves with the counts, or null if perf is missing or refused. */
export function countSyscalls(pid: number): { stop(): Promise<SyscallCounts | null> } {
  const ev = events();
  let proc: Subprocess<"ignore", "ignore", "pipe"> | null = null;
  try {
    if (ev.length > 0) proc = Bun.spawn(["perf", "stat", "-x", ",", "-e", ev.join(","), "-p", String(pid)], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  } catch { proc = null; }
  return {
    async stop() {
      if (!proc) return null;
      proc.kill("SIGINT");
      const timer = setTimeout(() => proc!.kill("SIGKILL"), 5_000);
      const [err] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      const counts: SyscallCounts = { reads: 0, writes: 0, polls: 0 };
      let seen = 0;
      // CSV lines: count,unit,event,...
      for (const line of err.split("\n")) {
        const [n, , event] = line.split(",");
        const name = event?.replace("syscalls:sys_enter_", "");
        for (const [kind, names] of Object.entries(KINDS) as [keyof SyscallCounts, readonly string[]][]) {
          if (names.includes(name) && /^\d+$/.test(n)) { counts[kind] += Number(n); seen++; }
        }
      }
      return seen > 0 ? counts : null;
    },
  };
}
