// [commands] on a command table, and backend credentials shared between users.

import { describe, expect, test } from "bun:test";
import commandsJson from "@ioredis/commands/built/commands.json" with { type: "json" };
import { applyCommandPolicy, backendCredentials } from "../../../src/acl/from-config.ts";
import { CommandTable, Route } from "../../../src/commands/command-table.ts";
import { DEFAULT_DENY, defaultConfig } from "../../../src/config/config.ts";

const fresh = () => new CommandTable(commandsJson as ConstructorParameters<typeof CommandTable>[0]);
const find = (t: CommandTable, name: string) => { const b = new TextEncoder().encode(name); return t.lookup(b, 0, b.length); };

describe("command policy", () => {
  test("the default deny list names only known commands and refuses those the proxy would run", () => {
    const t = fresh();
    expect(applyCommandPolicy(t, { deny: [...DEFAULT_DENY], rename: {} })).toEqual([]);
    expect(find(t, "migrate")!.route).toBe(Route.DENIED);
    expect(find(t, "swapdb")!.route).toBe(Route.DENIED);
    // Refused anyway (node administration): it keeps its own refusal, which says why.
    expect(find(t, "shutdown")!.route).toBe(Route.UNSUPPORTED);
    // Answered by predixy about itself, but still a setting a shared gateway keeps from its clients.
    expect(find(t, "config")!.subcommands!.get("set")!.route).toBe(Route.DENIED);
    expect(find(t, "get")!.route).toBe(Route.KEY);
    const more = fresh();
    expect(applyCommandPolicy(more, { deny: ["flushall", "keys", "get"], rename: {} })).toEqual([]);
    for (const n of ["flushall", "keys", "get"]) expect(find(more, n)!.route).toBe(Route.DENIED);
  });

  test("rename: the old name is gone, the new one answers; an empty name disables; names can be swapped", () => {
    const t = fresh();
    expect(applyCommandPolicy(t, { deny: [], rename: { FLUSHALL: "wipe", keys: "", get: "set", set: "get" } })).toEqual([]);
    expect(find(t, "flushall")).toBeNull();
    expect(find(t, "WIPE")!.name).toBe("flushall");
    expect(find(t, "keys")).toBeNull();
    expect(find(t, "get")!.name).toBe("set");
    expect(find(t, "set")!.name).toBe("get");
  });

  test("unknown names and clashing renames are reported, and nothing changes", () => {
    const t = fresh();
    expect(applyCommandPolicy(t, { deny: ["nosuch", "config|nosuch"], rename: { nope: "x", echo: "get", ping: "a b" } })).toEqual([
      'commands.deny: unknown command "nosuch"',
      'commands.deny: unknown command "config|nosuch"',
      'commands.rename: unknown command "nope"',
      'commands.rename: cannot rename "echo" to "get": that name is taken',
      'commands.rename: "a b" is not a valid command name',
    ]);
    expect(find(t, "echo")!.name).toBe("echo");
  });
});

test("users with the same cluster credentials share one backend credential; others use [cluster]'s", () => {
  const cfg = defaultConfig([{ host: "h", port: 1 }]);
  cfg.cluster.password = "p0";
  cfg.users = [
    { name: "a", rules: [], clusterUsername: "x", clusterPassword: "px" },
    { name: "b", rules: [], clusterUsername: "", clusterPassword: "" },
    { name: "c", rules: [], clusterUsername: "x", clusterPassword: "px" },
    { name: "d", rules: [], clusterUsername: "y", clusterPassword: "py" },
  ];
  const { list, ofUser } = backendCredentials(cfg);
  expect(list).toEqual([{ username: "", password: "p0" }, { username: "x", password: "px" }, { username: "y", password: "py" }]);
  expect([...ofUser]).toEqual([["a", 1], ["c", 1], ["d", 2]]);
});
