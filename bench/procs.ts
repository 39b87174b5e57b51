// Processes a benchmark starts or measures: the tail of their output, a gentle stop, who listens on a port.

import type { Subprocess } from "bun";

const TAIL_CHARS = 8_000;
const STOP_GRACE_MS = 3_000;

/** Keeps the last TAIL_CHARS of a child's output, so a crash can be shown. */
export function drainTail(stream: ReadableStream<Uint8Array>, into: { text: string }): void {
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      into.text += dec.decode(chunk, { stream: true });
      if (into.text.length > 2 * TAIL_CHARS) into.text = into.text.slice(-TAIL_CHARS);
    }
  })().catch(() => {});
}

/** True if nothing listens on host:port yet. */
export function canBind(port: number, hostname = "127.0.0.1"): boolean {
  try { Bun.listen({ hostname, port, socket: { data() {} } }).stop(true); return true; } catch { return false; }
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
export async function stopGently(proc: Subprocess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
  await proc.exited;
  clearTimeout(timer);
}

/** Pid of the process listening on `port`, as `ss` reports it (only for processes we may see). */
export async function listenerPid(port: number): Promise<number | null> {
  const p = Bun.spawn(["ss", "-Hltnp", `sport = :${port}`], { stdout: "pipe", stderr: "ignore" });
  const m = (await new Response(p.stdout).text()).match(/pid=(\d+)/);
  return m ? Number(m[1]) : null;
}

/**
 * What a benchmark owns, so that an error or a signal (Ctrl-C) leaves nothing behind: `live`
 * processes are killed, then `cleanups` run, newest first, once. A signal cleans up and exits
 * with the shell's code for it; `interrupted` tells the run it was stopped.
 */
export class Owned {
  readonly live = new Set<Subprocess>();
  readonly cleanups: (() => Promise<void> | void)[] = [];
  interrupted = false;
  private cleaning: Promise<void> | null = null;

  constructor(private readonly log: (msg: string) => void) {
    for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
      process.on(sig, () => {
        if (this.interrupted) return;
        this.interrupted = true;
        log(`${sig}: cleaning up`);
        void this.cleanup().finally(() => process.exit(code));
      });
    }
  }

  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const p of this.live) p.kill("SIGKILL");
      for (const fn of this.cleanups.reverse()) {
        try { await fn(); } catch (e) { this.log(`cleanup: ${(e as Error).message}`); }
      }
    })();
    return this.cleaning;
  }
}
