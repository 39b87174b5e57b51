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
