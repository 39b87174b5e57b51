import { describe, expect, test } from "bun:test";
import { arityOk, COMMANDS, CommandTable, Merge, Route } from "../../../src/commands/command-table.ts";

const enc = new TextEncoder();
const find = (name: string) => { const b = enc.encode(name); return COMMANDS.lookup(b, 0, b.length); };

describe("command table", () => {
  test("looks names up case-insensitively without allocating strings", () => {
    expect(find("get")?.name).toBe("get");
    expect(find("GeT")?.name).toBe("get");
    expect(find("gets")).toBeNull();
    expect(find("")).toBeNull();
  });

  test("single-key commands route by their first key", () => {
    for (const name of ["get", "set", "incr", "hset", "lpush", "sadd", "zadd", "xadd", "expire", "getex"]) {
      const s = find(name)!;
      expect(s.route).toBe(Route.KEY);
      expect(s.keyAt).toBe(1);
    }
    expect(find("set")!.write).toBe(true);
    expect(find("get")!.readonly).toBe(true);
  });

  test("commands whose key comes later know its position", () => {
    expect(find("bitop")!.keyAt).toBe(2);
    expect(find("object")!.subcommands!.get("encoding")!.keyAt).toBe(2);
    expect(find("xinfo")!.route).toBe(Route.SUBCOMMAND);
  });

  test("key-count commands name where the count is", () => {
    expect(find("eval")!.route).toBe(Route.NUMKEYS);
    expect(find("eval")!.keyAt).toBe(2);
    expect(find("zunion")!.keyAt).toBe(1);
    expect(find("xread")!.route).toBe(Route.STREAMS);
  });

  test("connection-state and blocking commands are not sent to shared connections", () => {
    for (const name of ["multi", "exec", "watch", "blpop", "brpoplpush", "bzmpop", "wait"]) expect(find(name)!.route).toBe(Route.SESSION);
    expect(find("blpop")!.keyAt).toBe(1);
    expect(find("blmpop")!.keyAt).toBe(3); // BLMPOP timeout numkeys key …
    for (const name of ["subscribe", "psubscribe", "publish"]) expect(find(name)!.route).toBe(Route.PUBSUB);
    for (const name of ["monitor", "waitaof"]) {
      expect(find(name)!.route).toBe(Route.UNSUPPORTED);
      expect(find(name)!.reason).not.toBe("");
    }
    for (const name of ["ping", "auth", "select", "quit", "hello", "asking", "role"]) expect(find(name)!.route).toBe(Route.LOCAL);
  });

  test("multi-key commands that Redis answers per key are split; those that need one node are not", () => {
    for (const [name, merge, step] of [["mget", Merge.VALUES, 1], ["mset", Merge.ALL_OK, 2], ["del", Merge.SUM, 1],
      ["unlink", Merge.SUM, 1], ["exists", Merge.SUM, 1], ["touch", Merge.SUM, 1]] as const) {
      expect([find(name)!.route, find(name)!.merge, find(name)!.keyStep]).toEqual([Route.MULTI_KEY, merge, step]);
    }
    // Atomic or single-node meanings keep the same-slot rule (the node answers CROSSSLOT).
    for (const name of ["msetnx", "rename", "smove", "lmove", "sunionstore", "zunionstore", "bitop", "pfmerge", "copy"]) expect(find(name)!.route).toBe(Route.KEY);
    expect(find("sintercard")!.route).toBe(Route.NUMKEYS);
  });

  test("cluster-wide commands fan out; the façade and slot queries have routes of their own", () => {
    for (const name of ["keys", "dbsize", "randomkey", "flushall", "flushdb", "lastsave", "scan", "info"]) expect(find(name)!.route).toBe(Route.FAN_OUT);
    const sub = (a: string, b: string) => find(a)!.subcommands!.get(b)!;
    for (const s of ["load", "exists", "flush", "kill"]) expect(sub("script", s).route).toBe(Route.FAN_OUT);
    for (const s of ["load", "delete", "flush", "restore", "kill"]) expect(sub("function", s).route).toBe(Route.FAN_OUT);
    for (const s of ["list", "dump", "stats"]) expect(sub("function", s).route).toBe(Route.ANY);
    for (const s of ["slots", "shards", "nodes", "info", "myid", "keyslot"]) expect(sub("cluster", s).route).toBe(Route.FACADE);
    expect(sub("cluster", "countkeysinslot").route).toBe(Route.SLOT_ARG);
    // Commands about one node are refused with the reason.
    expect(sub("cluster", "meet").route).toBe(Route.UNSUPPORTED);
    expect(sub("cluster", "meet").reason).toContain("send it to the nodes");
    expect(sub("config", "rewrite").reason).toContain("per node");
    // CONFIG GET/SET/RESETSTAT, LATENCY and SLOWLOG are about the proxy itself.
    for (const [a, b] of [["config", "get"], ["config", "set"], ["config", "resetstat"], ["latency", "histogram"], ["slowlog", "get"]]) {
      expect(sub(a, b).route).toBe(Route.LOCAL);
    }
    expect(find("save")!.reason).toContain("per node");
  });

  test("arity follows Redis' convention", () => {
    expect(arityOk(2, 2)).toBe(true);
    expect(arityOk(2, 3)).toBe(false);
    expect(arityOk(-3, 3)).toBe(true);
    expect(arityOk(-3, 5)).toBe(true);
    expect(arityOk(-3, 2)).toBe(false);
  });
});

describe("learning from a node's COMMAND reply", () => {
  test("adds unknown commands with their key positions and keeps known ones as they are", () => {
    const table = new CommandTable({ get: { arity: 2, flags: ["readonly"], keyStart: 1, keyStop: 1, step: 1 } });
    const added = table.learn([
      ["GET", 99, ["write"], 0, 0, 0],                       // known: ignored
      ["json.get", -2, ["readonly"], 1, 1, 1],               // a module command
      ["mod.blockpop", -3, ["write", "blocking"], 1, 1, 1],  // blocking: refused like BLPOP
      ["bogus"],                                             // malformed: skipped
      "not an entry",
    ]);
    expect(added).toEqual(["json.get", "mod.blockpop"]);
    const look = (n: string) => { const b = enc.encode(n); return table.lookup(b, 0, b.length); };
    expect(look("GET")!.arity).toBe(2);
    expect(look("JSON.GET")!.route).toBe(Route.KEY);
    expect(look("json.get")!.keyAt).toBe(1);
    expect(look("mod.blockpop")!.route).toBe(Route.SESSION); // a pinned connection, like BLPOP
    expect(look("bogus")).toBeNull();
    expect(table.size).toBe(3);
  });

  test("a reply that is not an array teaches nothing", () => {
    const table = new CommandTable({});
    expect(table.learn(null)).toEqual([]);
    expect(table.learn("ERR")).toEqual([]);
  });
});
