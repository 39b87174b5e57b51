// Router microbenchmarks: command lookup, key slot and slot-table lookup for pipelined commands (mitata).

import { bench, do_not_optimize, group, run } from "mitata";
import calculateSlot from "cluster-key-slot";
import { AclTable } from "../src/acl/acl-table.ts";
import { check } from "../src/acl/check.ts";
import { AclUser } from "../src/acl/user.ts";
import { COMMANDS } from "../src/commands/command-table.ts";
import { slotOf } from "../src/cluster/key-slot.ts";
import { Frame, readCommand } from "../src/resp/request-reader.ts";
import { command } from "../test/helpers/fake-node.ts";

const enc = new TextEncoder();
const names = ["GET", "SET", "HGET", "ZADD", "LPUSH", "INCR", "EXPIRE", "XADD"];
let text = "";
for (let i = 0; i < 100; i++) text += command(names[i % names.length], `key:${String(i * 7919).padStart(12, "0")}`, "v");
const wire = enc.encode(text);
const frame = new Frame();
const owner = new Uint16Array(16384);
for (let s = 0; s < 16384; s++) owner[s] = Math.floor(s / 1821);

/** What Router.dispatch does before handing a command to a backend: parse, look up, hash, pick node. */
function routeAll(hash: (buf: Uint8Array, start: number, end: number) => number): number {
  let at = 0, acc = 0;
  while (at < wire.length) {
    const n = readCommand(wire, at, wire.length, frame);
    if (n <= 0) break;
    at += n;
    const spec = COMMANDS.lookup(frame.src, frame.base + frame.argStart[0], frame.base + frame.argEnd[0]);
    const k = spec!.keyAt;
    acc += owner[hash(frame.src, frame.base + frame.argStart[k], frame.base + frame.argEnd[k])];
  }
  return acc;
}

group("route 100 pipelined commands (parse + lookup + slot + owner)", () => {
  bench("slotOf over offsets", () => do_not_optimize(routeAll(slotOf)));
  bench("cluster-key-slot over a view", () =>
    do_not_optimize(routeAll((b, s, e) => calculateSlot(b.subarray(s, e) as Buffer))));
});

const key = enc.encode("key:000000012345");
group("slot of one 16-byte key", () => {
  bench("slotOf", () => do_not_optimize(slotOf(key, 0, key.length)));
  bench("cluster-key-slot", () => do_not_optimize(calculateSlot(key as Buffer)));
});

const get = enc.encode("GET"), unknown = enc.encode("NOSUCHCOMMAND");
group("command table lookup", () => {
  bench("GET", () => do_not_optimize(COMMANDS.lookup(get, 0, get.length)));
  bench("unknown name", () => do_not_optimize(COMMANDS.lookup(unknown, 0, unknown.length)));
});

// The ACL check a restricted user pays per command, over the same 100 commands (all allowed).
const aclTable = new AclTable(COMMANDS.all());
const users = {
  "one pattern (~key:*)": ["on", "+@all", "&*", "~key:*"],
  "three patterns, the last matching": ["on", "+@all", "&*", "~other:*", "~{tag}:*", "~key:*"],
  "read/write patterns, categories": ["on", "+@read", "+@write", "-@dangerous", "&*", "%R~key:0*", "%W~key:*", "~key:*"],
};
function checkAll(u: AclUser | null): number {
  let at = 0, acc = 0;
  while (at < wire.length) {
    const n = readCommand(wire, at, wire.length, frame);
    if (n <= 0) break;
    at += n;
    const spec = COMMANDS.lookup(frame.src, frame.base + frame.argStart[0], frame.base + frame.argEnd[0])!;
    if (u !== null) acc += check(u, aclTable.byId[spec.id]!, frame);
    acc += spec.keyAt;
  }
  return acc;
}
group("100 pipelined commands: parse + lookup, then the ACL check", () => {
  bench("no check (unrestricted user)", () => do_not_optimize(checkAll(null)));
  for (const [name, rules] of Object.entries(users)) {
    const u = new AclUser("bench", aclTable);
    if (u.setRules(rules) !== null) throw new Error(name);
    if (checkAll(u) !== checkAll(null)) throw new Error(`${name}: some command refused`);
    bench(name, () => do_not_optimize(checkAll(u)));
  }
});

await run();
