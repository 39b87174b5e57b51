// Short-lived connections for the control path: topology queries, not client traffic.

import type { Socket } from "bun";
import { NEED_MORE, ReplyScan, scanReply } from "../resp/reply-reader.ts";
import { decodeReply, encodeCommand, RespError, type RespValue } from "../resp/reply-value.ts";
import { peerRefusal, type BackendTls } from "../tls/backend-tls.ts";

export interface ControlAuth {
  username: string;
  password: string;
}

interface Pending {
  chunks: Uint8Array[];
  need: number;
  replies: RespValue[];
  resolve: (v: RespValue[]) => void;
  reject: (e: Error) => void;
  settled: boolean;
}

/**
 * Sends `commands` to host:port on a fresh connection (after AUTH when `auth` has a password;
 * over TLS when `tls` is set, once the node's certificate is accepted) and resolves with their
 * replies, in order. Rejects on connect failure, a refused certificate, protocol error, AUTH
 * failure or timeout; error replies to `commands` are returned as RespError values.
 */
export async function query(
  host: string, port: number, commands: string[][], auth: ControlAuth | null, timeoutMs: number, tls: BackendTls | null = null,
): Promise<RespValue[]> {
  const all = auth?.password
    ? [auth.username ? ["AUTH", auth.username, auth.password] : ["AUTH", auth.password], ...commands]
    : commands;
  const p: Pending = { chunks: [], need: all.length, replies: [], resolve: () => {}, reject: () => {}, settled: false };
  const done = new Promise<RespValue[]>((resolve, reject) => { p.resolve = resolve; p.reject = reject; });
  let sock: Socket<Pending> | null = null;
  const fail = (e: Error) => {
    if (p.settled) return;
    p.settled = true;
    sock?.terminate();
    p.reject(e);
  };
  const timer = setTimeout(() => fail(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
  const send = (s: Socket<Pending>) => s.write(concat(all.map((c) => encodeCommand(c))));
  // Not awaited: a connect to a host that drops SYNs hangs for minutes, and the timeout must
  // end the query meanwhile (a topology refresh waits on it).
  Bun.connect<Pending>({
    hostname: host, port, data: p, tls: tls?.options,
    socket: {
      handshake(s, ok, err) {
        const refusal = peerRefusal(tls!.verify, ok, err);
        if (refusal !== null) fail(new Error(refusal));
        else if (!p.settled) send(s);
      },
      data(_s, chunk) {
        p.chunks.push(chunk);
        const buf = concat(p.chunks);
        p.chunks = [buf];
        const scan = new ReplyScan();
        let at = 0;
        const replies: RespValue[] = [];
        while (at < buf.length) {
          const n = scanReply(buf, at, buf.length, scan);
          if (n === NEED_MORE) break;
          if (n < 0) return fail(new Error("protocol error in reply"));
          replies.push(decodeReply(buf, at).value);
          at += n;
        }
        if (replies.length < p.need) return;
        if (auth?.password && replies[0] instanceof RespError) {
          return fail(new Error(`AUTH failed: ${replies[0].message}`));
        }
        p.settled = true;
        _s.end();
        p.resolve(auth?.password ? replies.slice(1) : replies);
      },
      close() { fail(new Error("connection closed before all replies arrived")); },
      error(_s, err) { fail(err); },
      connectError(_s, err) { fail(err); },
    },
  }).then((s) => {
    if (p.settled) { s.terminate(); return; }
    sock = s;
    if (tls === null) send(s);
  }, (err: Error) => fail(err));
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const part of parts) { out.set(part, o); o += part.length; }
  return out;
}
