import { describe, expect, test } from "bun:test";
import type { BackendNode } from "../../../src/backend/backend-node.ts";
import { COMMANDS } from "../../../src/commands/command-table.ts";
import { NO_NODE, SLOT_COUNT, SlotTable } from "../../../src/cluster/slot-table.ts";
import { Frame, readCommand } from "../../../src/resp/request-reader.ts";
import { encodeCommand } from "../../../src/resp/reply-value.ts";
import { FanOutGather, InfoGather } from "../../../src/router/fan-out.ts";
import type { Gather } from "../../../src/router/gather.ts";
import { acquire, setReply } from "../../../src/router/request.ts";
import { ERR_INVALID_CURSOR, scanOrder, startScan, type ScanGather } from "../../../src/router/scan.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const node = (addr: string) => ({ addr }) as BackendNode;
const masters = [node("m0:1"), node("m1:1"), node("m2:1")];

function parentFor(args: string[]) {
  const wire = encodeCommand(args);
  const f = new Frame();
  readCommand(wire, 0, wire.length, f);
  const sub = args.length > 1 ? `${args[0]}|${args[1]}`.toLowerCase() : "";
  const top = enc.encode(args[0].toLowerCase());
  let spec = COMMANDS.lookup(top, 0, top.length)!;
  if (spec.subcommands?.has(args[1]?.toLowerCase())) spec = spec.subcommands.get(args[1].toLowerCase())!;
  expect(sub === "" || spec.name === sub || spec.name === args[0].toLowerCase()).toBe(true);
  const p = acquire();
  p.spec = spec;
  p.src = wire;
  p.start = 0;
  p.end = wire.length;
  return { p, f };
}

function answer(g: Gather, replies: string[]): string {
  g.parts.forEach((part, i) => {
    const r = enc.encode(replies[i]);
    setReply(part, r, 0, r.length);
  });
  return dec.decode(g.merge());
}

const fanOut = (args: string[], replies: string[]) => {
  const { p } = parentFor(args);
  const g = new FanOutGather(p, p.spec!, masters);
  expect(g.parts.map((x) => x.target)).toEqual(masters);
  expect(g.parts.every((x) => dec.decode(x.src.subarray(x.start, x.end)) === dec.decode(encodeCommand(args)))).toBe(true);
  return answer(g, replies);
};

describe("fan-out merges", () => {
  test("DBSIZE sums; LASTSAVE takes the oldest", () => {
    expect(fanOut(["DBSIZE"], [":3\r\n", ":0\r\n", ":39\r\n"])).toBe(":42\r\n");
    expect(fanOut(["LASTSAVE"], [":1700000300\r\n", ":1700000100\r\n", ":1700000200\r\n"])).toBe(":1700000100\r\n");
  });

  test("KEYS concatenates", () => {
    expect(fanOut(["KEYS", "*"], ["*1\r\n$1\r\na\r\n", "*0\r\n", "*2\r\n$1\r\nb\r\n$0\r\n\r\n"])).toBe("*3\r\n$1\r\na\r\n$1\r\nb\r\n$0\r\n\r\n");
  });

  test("RANDOMKEY picks a key a master has; nil only when every master is empty", () => {
    for (let i = 0; i < 20; i++) expect(["$1\r\nx\r\n", "$1\r\ny\r\n"]).toContain(fanOut(["RANDOMKEY"], ["$-1\r\n", "$1\r\nx\r\n", "$1\r\ny\r\n"]));
    expect(fanOut(["RANDOMKEY"], ["$-1\r\n", "$-1\r\n", "$-1\r\n"])).toBe("$-1\r\n");
  });

  test("FLUSHALL is OK only if every master said OK", () => {
    expect(fanOut(["FLUSHALL", "ASYNC"], ["+OK\r\n", "+OK\r\n", "+OK\r\n"])).toBe("+OK\r\n");
    expect(fanOut(["FLUSHALL"], ["+OK\r\n", "-READONLY You can't write against a read only replica.\r\n", "+OK\r\n"]))
      .toBe("-READONLY You can't write against a read only replica. (FLUSHALL was sent to 3 masters; 1 failed, the first on m1:1; 2 succeeded)\r\n");
  });

  test("SCRIPT LOAD answers the SHA every master gave; a disagreement is an error", () => {
    const sha = "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n";
    expect(fanOut(["SCRIPT", "LOAD", "return 1"], [sha, sha, sha])).toBe(sha);
    expect(fanOut(["SCRIPT", "LOAD", "return 1"], [sha, sha, "$3\r\nabc\r\n"])).toStartWith("-ERR the masters answered SCRIPT LOAD differently");
  });

  test("SCRIPT EXISTS is true only where every master has the script", () => {
    expect(fanOut(["SCRIPT", "EXISTS", "a", "b", "c"], ["*3\r\n:1\r\n:1\r\n:0\r\n", "*3\r\n:1\r\n:0\r\n:0\r\n", "*3\r\n:1\r\n:1\r\n:1\r\n"]))
      .toBe("*3\r\n:1\r\n:0\r\n:0\r\n");
  });
});

test("INFO keyspace sums the masters' db lines, avg_ttl weighted by keys with an expiry", () => {
  const { p } = parentFor(["INFO"]);
  const g = new InfoGather(p, "# Server\r\nredis_version:7.0.0\r\n", masters);
  expect(dec.decode(g.parts[0].src)).toBe("*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n");
  const bulk = (s: string) => `$${s.length}\r\n${s}\r\n`;
  const out = answer(g, [
    bulk("# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=100\r\n"),
    bulk("# Keyspace\r\n"),
    bulk("# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=300\r\n"),
  ]);
  expect(out).toBe(bulk("# Server\r\nredis_version:7.0.0\r\n\r\n# Keyspace\r\ndb0:keys=15,expires=4,avg_ttl=200\r\n"));
});

describe("SCAN cursors", () => {
  // Masters own, in slot order: m2 first, then m0, then m1.
  const owner = new Uint16Array(SLOT_COUNT).fill(NO_NODE);
  owner.fill(2, 0, 100);
  owner.fill(0, 100, 9000);
  owner.fill(1, 9000, SLOT_COUNT);
  const table = new SlotTable(masters, owner, [[], [], []]);

  const scan = (cursor: string, reply: string, extra: string[] = []) => {
    const { p, f } = parentFor(["SCAN", cursor, ...extra]);
    const g = startScan(p, f, table);
    if (g instanceof Uint8Array) return { target: null, sent: [], out: dec.decode(g) };
    const part = (g as ScanGather).parts[0];
    const sent = (() => { const pf = new Frame(); readCommand(part.src, part.start, part.end, pf); return Array.from({ length: pf.argc }, (_, i) => dec.decode(pf.arg(i))); })();
    return { target: part.target!.addr, sent, out: answer(g, [reply]) };
  };

  test("masters are walked in the order of the slots they serve", () => {
    expect(scanOrder(table).map((n) => n.addr)).toEqual(["m2:1", "m0:1", "m1:1"]);
  });

  test("the cursor carries the master and its own cursor; options pass through", () => {
    const a = scan("0", "*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n", ["MATCH", "k*", "COUNT", "5", "TYPE", "string"]);
    expect(a.target).toBe("m2:1");
    expect(a.sent).toEqual(["SCAN", "0", "MATCH", "k*", "COUNT", "5", "TYPE", "string"]);
    expect(a.out).toBe(`*2\r\n$5\r\n${17 * 1024}\r\n*1\r\n$1\r\nk\r\n`);
    const b = scan(String(17 * 1024), "*2\r\n$1\r\n0\r\n*0\r\n");
    expect(b.target).toBe("m2:1");
    expect(b.sent).toEqual(["SCAN", "17"]);
    expect(b.out).toBe("*2\r\n$1\r\n1\r\n*0\r\n"); // on to the second master
    const c = scan("2", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nz\r\n");
    expect(c.target).toBe("m1:1");
    expect(c.out).toBe("*2\r\n$1\r\n0\r\n*1\r\n$1\r\nz\r\n"); // the last master: done
  });

  test("a cursor past the last master ends the scan; a malformed one is Redis' error", () => {
    expect(scan("7", "").out).toBe("*2\r\n$1\r\n0\r\n*0\r\n");
    for (const bad of ["-1", "abc", "18446744073709551616", ""]) expect(scan(bad, "").out).toBe(dec.decode(ERR_INVALID_CURSOR));
  });
});
