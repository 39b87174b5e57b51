// A pipelining RESP client that keeps replies as the exact bytes the server sent (for byte-for-byte comparisons).

import type { TLSOptions } from "bun";
import { encodeCommand } from "../../src/resp/reply-value.ts";
import { NEED_MORE, ReplyScan, scanReply } from "../../src/resp/reply-reader.ts";

export type Arg = string | Uint8Array;

/**
 * Sends every command on one connection, pipelined in batches, and returns each raw reply as
 * text (latin1, so any byte survives). Rejects after `timeoutMs` or if the server closes early.
 */
export async function rawPipeline(port: number, commands: Arg[][], opts: { tls?: TLSOptions; timeoutMs?: number } = {}): Promise<string[]> {
  const replies: string[] = [];
  let buf = new Uint8Array(0);
  const scan = new ReplyScan();
  let waiting: (() => void) | null = null;
  let failed: Error | null = null;
  const sock = await Bun.connect({
    hostname: "127.0.0.1", port, tls: opts.tls,
    socket: {
      data(_s, chunk) {
        const next = new Uint8Array(buf.length + chunk.length);
        next.set(buf);
        next.set(chunk, buf.length);
        buf = next;
        let at = 0;
        for (;;) {
          const n = scanReply(buf, at, buf.length, scan);
          if (n === NEED_MORE) break;
          if (n < 0) { failed = new Error("protocol error in reply"); break; }
          replies.push(Buffer.from(buf.subarray(at, at + n)).toString("latin1"));
          at += n;
        }
        buf = buf.slice(at);
        waiting?.();
      },
      close() { failed ??= new Error("connection closed"); waiting?.(); },
      error(_s, e) { failed = e; waiting?.(); },
    },
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  try {
    for (let i = 0; i < commands.length; i += 500) {
      const batch = commands.slice(i, i + 500).map((c) => encodeCommand(c));
      sock.write(Buffer.concat(batch));
      const want = Math.min(commands.length, i + 500);
      while (replies.length < want) {
        if (failed) throw failed;
        if (Date.now() > deadline) throw new Error(`timeout: ${replies.length}/${want} replies`);
        await new Promise<void>((r) => { waiting = r; setTimeout(r, 100); });
        waiting = null;
      }
    }
    return replies;
  } finally {
    sock.end();
  }
}

/** Starts a standalone redis-server on `port` (loopback, no persistence); `extra` are more flags. */
export async function startRedis(port: number, dir: string, extra: string[] = []): Promise<{ stop(): Promise<void> }> {
  const proc = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", dir, ...extra], { stdout: "pipe", stderr: "pipe" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const [pong] = await rawPipeline(port, [["PING"]], { timeoutMs: 1000 });
      if (pong.startsWith("+PONG") || pong.startsWith("-NOAUTH")) break;
    } catch {
      if (proc.exitCode !== null) throw new Error(`redis-server on ${port} exited: ${await new Response(proc.stdout).text()}`);
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await Bun.sleep(50);
    }
  }
  return {
    async stop() {
      proc.kill();
      await proc.exited;
    },
  };
}
