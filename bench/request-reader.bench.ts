// Parser microbenchmarks: framing pipelined client commands and backend replies (mitata).

import { bench, do_not_optimize, group, run, summary } from "mitata";
import { Frame, readCommand } from "../src/resp/request-reader.ts";
import { ReplyScan, scanReply } from "../src/resp/reply-reader.ts";
import { ByteQueue } from "../src/util/byte-queue.ts";
import { command } from "../test/helpers/fake-node.ts";

const enc = new TextEncoder();
const value = "x".repeat(64);

/** `n` redis-benchmark-style commands in one chunk, built once. */
function pipelined(n: number, cmd: "GET" | "SET"): Uint8Array {
  let s = "";
  for (let i = 0; i < n; i++) {
    const key = `key:${String(i * 7919).padStart(12, "0")}`;
    s += cmd === "GET" ? command("GET", key) : command("SET", key, value);
  }
  return enc.encode(s);
}

function readAll(wire: Uint8Array, f: Frame): number {
  let at = 0, count = 0;
  while (at < wire.length) {
    const n = readCommand(wire, at, wire.length, f);
    if (n <= 0) break;
    at += n;
    count += f.argc;
  }
  return count;
}

function scanAll(wire: Uint8Array, s: ReplyScan): number {
  let at = 0, count = 0;
  while (at < wire.length) {
    const n = scanReply(wire, at, wire.length, s);
    if (n <= 0) break;
    at += n;
    count++;
  }
  return count;
}

const gets = pipelined(100, "GET");
const sets = pipelined(100, "SET");
const bulkReplies = enc.encode(`$64\r\n${value}\r\n`.repeat(100));
const okReplies = enc.encode("+OK\r\n".repeat(100));
const arrayReply = enc.encode(`*100\r\n${`$64\r\n${value}\r\n`.repeat(100)}`);
const frame = new Frame();
const scan = new ReplyScan();

group("100 pipelined commands (redis-benchmark shapes)", () => {
  bench("readCommand: GET key", () => do_not_optimize(readAll(gets, frame)));
  bench("readCommand: SET key 64B", () => do_not_optimize(readAll(sets, frame)));
});

group("100 backend replies", () => {
  bench("scanReply: +OK", () => do_not_optimize(scanAll(okReplies, scan)));
  bench("scanReply: 64B bulk", () => do_not_optimize(scanAll(bulkReplies, scan)));
  bench("scanReply: one 100-element array", () => do_not_optimize(scanAll(arrayReply, scan)));
});

// How commands/replies are copied into an output buffer: byte loop vs a view + set().
const q = new ByteQueue(1 << 20);
summary(() => {
  group("copy 100 x 71-byte replies into an output queue", () => {
    bench("appendRange (byte loop <= threshold)", () => {
      q.clear();
      for (let at = 0; at < bulkReplies.length; at += 71) q.appendRange(bulkReplies, at, at + 71);
      return q.size;
    });
    bench("append(subarray)", () => {
      q.clear();
      for (let at = 0; at < bulkReplies.length; at += 71) q.append(bulkReplies.subarray(at, at + 71));
      return q.size;
    });
  });
});

await run();
