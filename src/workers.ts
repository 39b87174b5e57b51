// Worker processes: `performance.worker_threads` copies of the proxy sharing the port (SO_REUSEPORT).

import { getLogger } from "@logtape/logtape";
import type { Subprocess } from "bun";
import type { GroupMessage, WorkerChannels } from "./metrics/group.ts";

const log = getLogger(["predixy", "workers"]);
const WORKER_ENV = "PREDIXY_WORKER";
const PARENT_ENV = "PREDIXY_PARENT_PID";

/** 0 in the first process; 1..n-1 in the workers it started. */
export const workerId = Number(process.env[WORKER_ENV] ?? "0");

/**
 * Starts `count - 1` more processes running this same program with the same arguments.
 * Each has its own backend connections and slot table; the kernel spreads clients across
 * them. A worker that dies is restarted, until stop(): each worker then drains on its own
 * (`exited` resolves once all are gone). Each has an IPC channel to this process (structured
 * clone), for the group's metrics (metrics/group.ts).
 */
export function startWorkers(count: number, onMessage: (worker: number, msg: GroupMessage) => void): WorkerChannels & { stop(): void; signal(sig: NodeJS.Signals): void; exited: Promise<void> } {
  const procs = new Map<number, Subprocess>();
  let stopping = false;
  const exited = Promise.withResolvers<void>();
  // A compiled executable sees a virtual path as argv[1], which is not an argument of ours.
  const compiled = process.argv[1]?.startsWith("/$bunfs/") ?? false;
  const cmd = compiled
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, process.argv[1], ...process.argv.slice(2)];
  const spawn = (id: number) => {
    const proc = Bun.spawn(cmd, {
      env: { ...process.env, [WORKER_ENV]: String(id), [PARENT_ENV]: String(process.pid) },
      stdio: ["ignore", "inherit", "inherit"],
      serialization: "advanced",
      ipc(msg: GroupMessage) { onMessage(id, msg); },
      onExit(_p, code, signal) {
        procs.delete(id);
        if (stopping) {
          if (procs.size === 0) exited.resolve();
          return;
        }
        log.error("worker {id} exited ({how}); restarting in 1 s", { id, how: signal ?? `code ${code}` });
        setTimeout(() => { if (!stopping) spawn(id); }, 1000);
      },
    });
    procs.set(id, proc);
  };
  for (let id = 1; id < count; id++) spawn(id);
  return {
    ids: () => [...procs.keys()],
    send(worker, msg) {
      const p = procs.get(worker);
      if (p !== undefined && p.exitCode === null && p.signalCode === null) p.send(msg);
    },
    /** Passes a signal on (SIGHUP: each worker reloads; a second SIGTERM: each exits at once). */
    signal(sig) {
      for (const p of procs.values()) p.kill(sig);
    },
    stop() {
      stopping = true;
      if (procs.size === 0) exited.resolve();
      for (const p of procs.values()) p.kill("SIGTERM");
    },
    exited: exited.promise,
  };
}

/** In a worker: exit when the first process is gone (it would otherwise orphan us silently). */
export function exitWithParent(): void {
  // The parent's pid comes from the environment: it may already be gone when we first look.
  const parent = Number(process.env[PARENT_ENV]);
  const check = () => { if (process.ppid !== parent) process.exit(0); };
  check();
  setInterval(check, 1000).unref();
}
