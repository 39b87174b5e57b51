// Split and merge of multi-key commands: MGET over keys in many slots, as the router does it (mitata).

import { bench, do_not_optimize, group, run } from "mitata";
import { COMMANDS } from "../src/commands/command-table.ts";
import { Frame, readCommand } from "../src/resp/request-reader.ts";
import { encodeCommand } from "../src/resp/reply-value.ts";
import { keysSlot, split } from "../src/router/multi-key.ts";
import { acquire, release, setReply } from "../src/router/request.ts";

const enc = new TextEncoder();
const mget = COMMANDS.lookup(enc.encode("mget"), 0, 4)!;
const mset = COMMANDS.lookup(enc.encode("mset"), 0, 4)!;
const value = "x".repeat(64);
const element = enc.encode(`*1\r\n$64\r\n${value}\r\n`);
const ok = enc.encode("+OK\r\n");

function framed(args: string[]): Frame {
  const wire = encodeCommand(args);
  const f = new Frame();
  readCommand(wire, 0, wire.length, f);
  return f;
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => `key:${String(i * 7919).padStart(12, "0")}`);
const mget10 = framed(["MGET", ...keys(10)]);
const mget10k = framed(["MGET", ...keys(10_000)]);
const mset10 = framed(["MSET", ...keys(10).flatMap((k) => [k, value])]);

/** keysSlot + split, every part answered, merge: the proxy's work for one command, no I/O. */
function splitMerge(f: Frame, spec: typeof mget, reply: Uint8Array): Uint8Array {
  keysSlot(f, spec.keyStep);
  const parent = acquire();
  parent.spec = spec;
  const g = split(parent, f, spec);
  for (const p of g.parts) setReply(p, reply, 0, reply.length);
  const out = g.merge();
  g.releaseParts();
  release(parent);
  return out;
}

group("split + merge", () => {
  bench("MGET of 10 keys", () => do_not_optimize(splitMerge(mget10, mget, element)));
  bench("MSET of 10 keys", () => do_not_optimize(splitMerge(mset10, mset, ok)));
  bench("MGET of 10,000 keys", () => do_not_optimize(splitMerge(mget10k, mget, element)));
});

await run();
