// ACL users: rules as ACL SETUSER takes them, their errors, descriptions and passwords.

import { describe, expect, test } from "bun:test";
import { AclTable } from "../../../src/acl/acl-table.ts";
import { AclUser, hashPassword } from "../../../src/acl/user.ts";
import { COMMANDS } from "../../../src/commands/command-table.ts";

const table = new AclTable(COMMANDS.all());
const user = (...rules: string[]) => {
  const u = new AclUser("u", table);
  const err = u.setRules(rules);
  if (err !== null) throw new Error(err);
  return u;
};
const id = (name: string) => table.lookup(name)!.id;

describe("rules", () => {
  test("a new user is off, without passwords or permissions", () => {
    const u = new AclUser("u", table);
    expect(u.describe()).toBe("off resetchannels -@all");
    expect(u.accepts("")).toBe(false);
  });

  test("categories, commands and subcommands set the command bits", () => {
    const u = user("+@read", "-get", "+config|get", "+set");
    const s = u.selectors[0];
    expect(s.can(id("get"))).toBe(false);
    expect(s.can(id("mget"))).toBe(true);
    expect(s.can(id("set"))).toBe(true);
    expect(s.can(id("config|get"))).toBe(true);
    expect(s.can(id("config|set"))).toBe(false);
    expect(s.describeCommands()).toBe("-@all +@read -get +config|get +set");
  });

  test("+cmd for a container allows its subcommands; -@all after +@all clears everything", () => {
    const s = user("+config").selectors[0];
    expect(s.can(id("config|set"))).toBe(true);
    const t = user("+@all", "-@all", "+get").selectors[0];
    expect(t.can(id("set"))).toBe(false);
    expect(t.describeCommands()).toBe("-@all +get");
  });

  test("key and channel patterns, with read/write flags merged per pattern", () => {
    const u = user("%R~a*", "%W~a*", "~b*", "&c*", "&c*");
    expect(u.selectors[0].describeKeys()).toBe("~a* ~b*");
    expect(u.selectors[0].describeChannels()).toBe("&c*");
    expect(user("%R~a*").selectors[0].describeKeys()).toBe("%R~a*");
  });

  test("errors are Redis' own, and leave the user unchanged", () => {
    const u = user("on", ">pw");
    const cases: [string[], string][] = [
      [["+nosuch"], "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"],
      [["+@nosuch"], "Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL"],
      [["bogus"], "Error in ACL SETUSER modifier 'bogus': Syntax error"],
      [["~*", "~x"], "Error in ACL SETUSER modifier '~x': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"],
      [["#abc"], "Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"],
      [["<nope"], "Error in ACL SETUSER modifier '<nope': The password you are trying to remove from the user does not exist"],
      [["+config|get|x"], "Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported"],
      [["(~x", "+nosuch)"], "Error in ACL SETUSER modifier '(~x +nosuch)': Unknown command or category name in ACL"],
      [["(~x"], "Unmatched parenthesis in acl selector starting at '(~x'."],
    ];
    for (const [rules, message] of cases) {
      expect(u.setRules(["off", ...rules])).toBe(message);
      expect(u.enabled).toBe(true);
    }
  });

  test("selectors are kept apart from the root permissions", () => {
    const u = user("on", "~x", "+get", "(~y +set)");
    expect(u.selectors).toHaveLength(2);
    expect(u.describe()).toBe("on ~x resetchannels -@all +get (~y resetchannels -@all +set)");
    expect(user("(~y +set)", "clearselectors").selectors).toHaveLength(1);
  });
});

describe("passwords", () => {
  test("> and # store SHA-256 hashes; < and ! remove them; nopass takes anything; off takes nothing", () => {
    const u = user("on", ">one", `#${hashPassword("two")}`);
    expect(u.passwords).toEqual([hashPassword("one"), hashPassword("two")]);
    expect(u.accepts("one")).toBe(true);
    expect(u.accepts("two")).toBe(true);
    expect(u.accepts("three")).toBe(false);
    expect(u.setRules(["<one", `!${hashPassword("two")}`])).toBeNull();
    expect(u.accepts("one")).toBe(false);
    expect(u.setRules(["nopass"])).toBeNull();
    expect(u.accepts("anything")).toBe(true);
    expect(u.setRules(["off"])).toBeNull();
    expect(u.accepts("anything")).toBe(false);
  });

  test("the description shows hashes, never passwords", () => {
    expect(user("on", ">secret").describe()).toBe(`on #${hashPassword("secret")} resetchannels -@all`);
  });
});

describe("unrestricted", () => {
  test("only +@all with every key and channel skips the per-command check", () => {
    expect(user("+@all", "~*", "&*").unrestricted).toBe(true);
    expect(user("+@all", "~*").unrestricted).toBe(false);
    expect(user("+@all", "~*", "&*", "-flushall").unrestricted).toBe(false);
    expect(user("+@all", "%RW~*", "&*").unrestricted).toBe(false);
  });
});
