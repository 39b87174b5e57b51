// A pipelining RESP client that keeps replies as the exact bytes the server sent (for byte-for-byte comparisons).

import type { TLSOptions } from "bun";
import { encodeCommand } from "../../src/resp/reply-value.ts";
import { RespConn } from "./resp-client.ts";

export type Arg = string | Uint8Array;

/**
 * Sends every command on one connection, pipelined in batches, and returns each raw reply as
 * text (latin1, so any byte survives). Rejects after `timeoutMs` or if the server closes early.
 */
export async function rawPipeline(port: number, commands: Arg[][], opts: { tls?: TLSOptions; timeoutMs?: number } = {}): Promise<string[]> {
  const conn = await RespConn.open(port, opts.tls);
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  try {
    for (let i = 0; i < commands.length; i += 500) {
      conn.send(Buffer.concat(commands.slice(i, i + 500).map((c) => encodeCommand(c))));
      await conn.waitReplies(Math.min(commands.length, i + 500), Math.max(0, deadline - Date.now()));
    }
    return conn.replies.map((r) => Buffer.from(r).toString("latin1"));
  } finally {
    conn.destroy();
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
