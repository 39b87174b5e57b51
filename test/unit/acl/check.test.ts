// The per-command verdict on request bytes: key specs and their fallbacks, channels, selectors, first args.

import { describe, expect, test } from "bun:test";
import { AclTable } from "../../../src/acl/acl-table.ts";
import { check, refusedArg, Verdict } from "../../../src/acl/check.ts";
import { AclUser } from "../../../src/acl/user.ts";
import { COMMANDS } from "../../../src/commands/command-table.ts";
import { encodeCommand } from "../../../src/resp/reply-value.ts";
import { Frame, readCommand } from "../../../src/resp/request-reader.ts";

const table = new AclTable(COMMANDS.all());

function user(...rules: string[]): AclUser {
  const u = new AclUser("u", table);
  const err = u.setRules(["on", ...rules]);
  if (err) throw new Error(err);
  return u;
}

/** The verdict for `args`, framed as the router frames it: inside a larger buffer, at an offset. */
function verdict(u: AclUser, ...args: string[]): [Verdict, string] {
  const wire = encodeCommand(args);
  const buf = new Uint8Array(wire.length + 7);
  buf.set(wire, 7);
  const f = new Frame();
  readCommand(buf, 7, buf.length, f);
  let name = args[0].toLowerCase();
  if (table.lookup(name)?.subcommands.length && args.length > 1) name = `${name}|${args[1].toLowerCase()}`;
  const v = check(u, table.lookup(name)!, f);
  return [v, v === Verdict.KEY || v === Verdict.CHANNEL ? args[refusedArg] : ""];
}

describe("check", () => {
  test("every key of a multi-key command is checked, whatever node it routes to", () => {
    const u = user("+@all", "~a:*");
    expect(verdict(u, "MSET", "a:1", "x", "a:2", "y")).toEqual([Verdict.OK, ""]);
    expect(verdict(u, "MSET", "a:1", "x", "b:2", "y")).toEqual([Verdict.KEY, "b:2"]);
    expect(verdict(u, "DEL", "a:1", "a:2", "c")).toEqual([Verdict.KEY, "c"]);
  });

  test("read and write permissions follow the key specs' flags", () => {
    const u = user("+@all", "%R~r:*", "%W~w:*");
    expect(verdict(u, "GET", "r:1")[0]).toBe(Verdict.OK);
    expect(verdict(u, "SET", "r:1", "v")[0]).toBe(Verdict.KEY);
    expect(verdict(u, "SET", "w:1", "v")[0]).toBe(Verdict.OK); // SET without GET only writes
    expect(verdict(u, "SET", "w:1", "v", "GET")[0]).toBe(Verdict.KEY); // with GET it reads too
    expect(verdict(u, "COPY", "r:1", "w:1")[0]).toBe(Verdict.OK);
    expect(verdict(u, "COPY", "w:1", "r:1")[0]).toBe(Verdict.KEY);
    expect(verdict(u, "BITFIELD", "r:1", "GET", "u8", "0")[0]).toBe(Verdict.OK);
    expect(verdict(u, "BITFIELD", "r:1", "SET", "u8", "0", "1")[0]).toBe(Verdict.KEY);
  });

  test("fallbacks find the keys the specs cannot: SORT … STORE, MIGRATE … KEYS, EVAL with a loose key count", () => {
    const u = user("+@all", "~k*");
    expect(verdict(u, "SORT", "k1", "BY", "nosort", "STORE", "x")).toEqual([Verdict.KEY, "x"]);
    expect(verdict(u, "SORT", "k1", "LIMIT", "0", "1", "STORE", "k2")[0]).toBe(Verdict.OK);
    expect(verdict(u, "MIGRATE", "h", "1", "", "0", "10", "KEYS", "k1", "x")).toEqual([Verdict.KEY, "x"]);
    expect(verdict(u, "EVAL", "s", "2", "k1", "x")).toEqual([Verdict.KEY, "x"]);
    // "1x" is no key count for the key spec, but C's atoi reads 1: the fallback's keys carry no
    // read/write flags, so a read-only pattern grants what the key spec (read-write) would not.
    expect(verdict(u, "EVAL", "s", "1x", "x")).toEqual([Verdict.KEY, "x"]);
    const r = user("+@all", "%R~k*");
    expect(verdict(r, "EVAL", "s", "1", "k1")).toEqual([Verdict.KEY, "k1"]);
    expect(verdict(r, "EVAL", "s", "1x", "k1")[0]).toBe(Verdict.OK);
  });

  test("channels: PUBLISH matches patterns, PSUBSCRIBE compares patterns literally", () => {
    const u = user("+@all", "~*", "&news.*");
    expect(verdict(u, "PUBLISH", "news.eu", "m")[0]).toBe(Verdict.OK);
    expect(verdict(u, "PUBLISH", "sport", "m")).toEqual([Verdict.CHANNEL, "sport"]);
    expect(verdict(u, "PSUBSCRIBE", "news.*")[0]).toBe(Verdict.OK);
    expect(verdict(u, "PSUBSCRIBE", "news.e*")).toEqual([Verdict.CHANNEL, "news.e*"]);
  });

  test("a selector allowing the command wins; otherwise the most relevant refusal is reported", () => {
    const u = user("+get", "~x", "(+set ~y)");
    expect(verdict(u, "GET", "x")[0]).toBe(Verdict.OK);
    expect(verdict(u, "SET", "y", "1")[0]).toBe(Verdict.OK);
    expect(verdict(u, "SET", "x", "1")).toEqual([Verdict.KEY, "x"]);
    expect(verdict(u, "DEL", "x")[0]).toBe(Verdict.CMD);
  });

  test("first arguments allowed of an otherwise refused command (+select|0); AUTH and HELLO are never refused", () => {
    const u = user("+select|0");
    expect(verdict(u, "SELECT", "0")[0]).toBe(Verdict.OK);
    expect(verdict(u, "SELECT", "1")[0]).toBe(Verdict.CMD);
    expect(verdict(u, "AUTH", "a", "b")[0]).toBe(Verdict.OK);
    expect(verdict(u, "HELLO", "2")[0]).toBe(Verdict.OK);
  });
});
