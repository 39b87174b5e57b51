// Users, AUTH/HELLO, ACL commands, command policy, per-user backend credentials and secrets,
// through a running predixy in front of a real cluster.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashPassword } from "../../src/acl/user.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { rawExchange, startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { rawPipeline, type Arg } from "../helpers/raw-client.ts";

const BASE = 8320;
const PORT = 8395;
const ROOT = join(import.meta.dir, "../..");
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let dir: string;

/** The users, as predixy's config and as ACL SETUSER on a real node (the oracle) see them. */
const USERS: Record<string, { password: string; rules: string[] }> = {
  reader: { password: "rpw", rules: ["on", "~pub:*", "%R~shared:*", "&news.*", "+@read", "+@pubsub", "-@dangerous", "+ping"] },
  hashed: { password: "hpw", rules: ["on", "~h:*", "+get", "+set", "+del"] },
  sel: { password: "spw", rules: ["on", "~x:*", "+get", "(~y:* +set +get)", "(%R~z:* +@read &z*)"] },
  app: { password: "apw", rules: ["on", "allkeys", "+@all", "-@dangerous", "&*"] },
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "predixy-sec-"));
  cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster") });
  // The cluster's own ACL user for "app": it may touch app:* keys only.
  for (const n of cluster.nodes) await redisCli(n.port, ["acl", "setuser", "app-backend", "on", ">bpw", "~app:*", "+@all"]);
  // The oracle: the same users on a real node, asked with ACL DRYRUN.
  for (const [name, u] of Object.entries(USERS)) await redisCli(BASE, ["acl", "setuser", name, `>${u.password}`, ...u.rules]);
  writeFileSync(join(dir, "app.pw"), "apw\n");
  proxy = await startProxy(PORT, [cluster.entryPoints[0]], {
    env: { PREDIXY_TEST_DEFAULT_PW: "defpw" },
    server: `password = { env = "PREDIXY_TEST_DEFAULT_PW" }`,
    rest: [
      "[commands]", `deny = ["flushall", "keys", "config|set"]`, `rename = { echo = "say", time = "" }`,
      "[[users]]", `name = "reader"`, `password = "rpw"`, `rules = ${JSON.stringify(USERS.reader.rules.join(" "))}`,
      "[[users]]", `name = "hashed"`, `password_sha256 = "${hashPassword("hpw")}"`, `rules = ${JSON.stringify(USERS.hashed.rules)}`,
      "[[users]]", `name = "sel"`, `password = "spw"`, `rules = ${JSON.stringify(USERS.sel.rules)}`,
      "[[users]]", `name = "app"`, `password = { file = "${join(dir, "app.pw")}" }`, `rules = ${JSON.stringify(USERS.app.rules.join(" "))}`,
      `cluster_username = "app-backend"`, `cluster_password = "bpw"`,
      "[[users]]", `name = "disabled"`, `rules = "off >dpw +@all ~*"`,
    ].join("\n"),
  });
}, 90_000);

afterAll(async () => {
  await proxy?.stop();
  await cluster?.stop();
});

const AUTH_DEFAULT: Arg[] = ["AUTH", "defpw"];

describe("authentication", () => {
  test("server.password (from an environment variable) is the default user's; users log in with AUTH user pass", async () => {
    const r = await rawPipeline(PORT, [
      ["PING"], ["AUTH", "wrong"], ["AUTH", "default", "defpw"], ["ACL", "WHOAMI"],
      ["AUTH", "reader", "rpw"], ["ACL", "WHOAMI"], ["AUTH", "hashed", "hpw"], ["GET", "h:1"],
      ["AUTH", "app", "apw"], ["AUTH", "disabled", "dpw"], ["AUTH", "nosuch", "x"], ["ACL", "WHOAMI"],
    ]);
    expect(r).toEqual([
      "-NOAUTH Authentication required.\r\n",
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
      "+OK\r\n", "$7\r\ndefault\r\n",
      "+OK\r\n", "-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n",
      "+OK\r\n", "$-1\r\n",
      "+OK\r\n", // the password came from a file
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
      "$3\r\napp\r\n", // failed logins leave the session as it was
    ]);
  });

  test("HELLO 2 AUTH logs in; bad credentials and malformed HELLO/AUTH are refused", async () => {
    const r = await rawPipeline(PORT, [
      ["HELLO", "2", "AUTH", "reader", "bad"], ["HELLO", "2", "AUTH", "reader"], ["AUTH", "a", "b", "c"],
      ["HELLO", "2", "AUTH", "reader", "rpw", "SETNAME", "r1"], ["CLIENT", "GETNAME"],
    ]);
    expect(r[0]).toBe("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    expect(r[1]).toBe("-ERR Syntax error in HELLO option 'AUTH'\r\n");
    expect(r[2]).toBe("-ERR syntax error\r\n");
    expect(r[3]).toStartWith("*14\r\n$6\r\nserver\r\n");
    expect(r[4]).toBe("-NOPERM this user has no permissions to run the 'client|getname' command\r\n");
  });

  test("a storm of wrong passwords is refused one by one, logged as one grouped entry, and other clients are not disturbed", async () => {
    const before = Number(/acl_access_denied_auth:(\d+)/.exec((await rawPipeline(PORT, [AUTH_DEFAULT, ["INFO", "stats"]]))[1])?.[1]);
    await rawPipeline(PORT, [AUTH_DEFAULT, ["ACL", "LOG", "RESET"]]);
    const storm = rawPipeline(PORT, Array.from({ length: 2000 }, (_, i): Arg[] => ["AUTH", "reader", `guess${i}`]));
    const work = rawPipeline(PORT, [AUTH_DEFAULT, ...Array.from({ length: 200 }, (_, i): Arg[] => ["SET", `calm:${i}`, String(i)]), ["GET", "calm:199"]]);
    const [denied, done] = await Promise.all([storm, work]);
    expect(new Set(denied)).toEqual(new Set(["-WRONGPASS invalid username-password pair or user is disabled.\r\n"]));
    expect(done.at(-1)).toBe("$3\r\n199\r\n");
    const [, log, info] = await rawPipeline(PORT, [AUTH_DEFAULT, ["ACL", "LOG"], ["INFO", "stats"]]);
    expect(log).toStartWith("*1\r\n*14\r\n$5\r\ncount\r\n:2000\r\n$6\r\nreason\r\n$4\r\nauth\r\n");
    expect(log).toContain("$6\r\nobject\r\n$4\r\nAUTH\r\n$8\r\nusername\r\n$6\r\nreader\r\n");
    expect(log).toContain("addr=127.0.0.1:");
    expect(Number(/acl_access_denied_auth:(\d+)/.exec(info)?.[1])).toBe(before + 2000);
  });

  test("before AUTH, Redis' small request limits hold: an oversized HELLO/AUTH closes that client only", async () => {
    const big = await rawExchange(PORT, `*3\r\n$4\r\nAUTH\r\n$6\r\nreader\r\n$20000\r\n${"x".repeat(20000)}\r\n`, (s) => s.includes("\r\n"));
    expect(big.text).toBe("-ERR Protocol error: unauthenticated bulk length\r\n");
    expect(big.closed).toBe(true);
    const many = await rawExchange(PORT, `*11\r\n${"$5\r\nHELLO\r\n".repeat(11)}`, (s) => s.includes("\r\n"));
    expect(many.text).toBe("-ERR Protocol error: unauthenticated multibulk length\r\n");
    expect(many.closed).toBe(true);
    expect((await rawPipeline(PORT, [AUTH_DEFAULT, ["PING"]]))[1]).toBe("+PONG\r\n");
  });
});

describe("permissions", () => {
  const K = ["pub:1", "shared:1", "h:1", "x:1", "y:1", "z:1", "app:1", "other", "{pub:1}b", "news.eu"];
  const C = ["news.eu", "news", "zed", "n*", "news.*"];
  const v = fc.constantFrom("v", "1", "0");
  const k = fc.constantFrom(...K), c = fc.constantFrom(...C);
  // Commands through predixy's router: single-key, multi-key, keyless, local, refused and pub/sub ones.
  const command: fc.Arbitrary<Arg[]> = fc.oneof(
    fc.tuple(k).map(([a]) => ["GET", a]), fc.tuple(k, v).map(([a, b]) => ["SET", a, b]),
    fc.tuple(k, v).map(([a, b]) => ["SET", a, b, "GET"]), fc.tuple(k).map(([a]) => ["INCR", a]),
    fc.tuple(k, k).map(([a, b]) => ["DEL", a, b]), fc.tuple(k, k).map(([a, b]) => ["MGET", a, b]),
    fc.tuple(k, v).map(([a, b]) => ["HSET", a, "f", b]), fc.tuple(k).map(([a]) => ["HGETALL", a]),
    fc.tuple(k, v).map(([a, b]) => ["LPUSH", a, b]), fc.tuple(k).map(([a]) => ["LRANGE", a, "0", "-1"]),
    fc.tuple(k, k).map(([a, b]) => ["COPY", a, b]), fc.tuple(k).map(([a]) => ["OBJECT", "ENCODING", a]),
    fc.tuple(k, k).map(([a, b]) => ["SORT", a, "STORE", b]), fc.tuple(k).map(([a]) => ["EVAL", "return 1", "1", a]),
    fc.tuple(k, k).map(([a, b]) => ["ZUNIONSTORE", a, "1", b]), fc.tuple(k).map(([a]) => ["BITFIELD", a, "GET", "u8", "0"]),
    fc.tuple(k).map(([a]) => ["XADD", a, "*", "f", "v"]), fc.tuple(k).map(([a]) => ["XREAD", "STREAMS", a, "0"]),
    fc.tuple(c).map(([a]) => ["PUBLISH", a, "m"]), fc.tuple(c).map(([a]) => ["SUBSCRIBE", a]),
    fc.tuple(c).map(([a]) => ["PSUBSCRIBE", a]), fc.tuple(k).map(([a]) => ["EXISTS", a]),
    fc.constantFrom<Arg[]>(["PING"], ["INFO"], ["KEYS", "*"], ["DBSIZE"], ["CLIENT", "ID"], ["CONFIG", "GET", "x"],
      ["SELECT", "0"], ["ACL", "WHOAMI"], ["ACL", "LIST"], ["COMMAND", "COUNT"], ["FLUSHDB"], ["RANDOMKEY"]),
  );

  test("predixy refuses exactly what a real Redis node refuses the same users, with Redis' NOPERM messages", async () => {
    const cases = fc.sample(command, { numRuns: 400, seed: 2014 });
    const mismatches: string[] = [];
    let refusals = 0;
    // (Not "app": the cluster's own ACL refuses it more, which the next tests show.)
    for (const [name, u] of Object.entries(USERS).filter(([n]) => n !== "app")) {
      const verdicts = await rawPipeline(BASE, cases.map((cmd) => ["ACL", "DRYRUN", name, ...cmd]));
      // A (P)SUBSCRIBE that is allowed puts the connection in subscribed mode, where other commands
      // are refused: those go on a connection of their own and must answer with a confirmation.
      const subscribes = (cmd: Arg[], i: number) => /^P?SUBSCRIBE$/.test(String(cmd[0])) && verdicts[i] === "+OK\r\n";
      const mixed = cases.filter((cmd, i) => !subscribes(cmd, i));
      const subs = cases.filter(subscribes);
      const mixedReplies = (await rawPipeline(PORT, [["AUTH", name, u.password], ...mixed])).slice(1);
      const subReplies = (await rawPipeline(PORT, [["AUTH", name, u.password], ...subs])).slice(1);
      subs.forEach((cmd, i) => {
        const confirmation = `*3\r\n$${String(cmd[0]).length}\r\n${String(cmd[0]).toLowerCase()}\r\n$${String(cmd[1]).length}\r\n${cmd[1]}\r\n:`;
        if (!subReplies[i].startsWith(confirmation)) mismatches.push(`${name}: ${cmd.join(" ")}: allowed by redis, predixy answered ${JSON.stringify(subReplies[i])}`);
      });
      let m = 0, sub = 0;
      const replies = cases.map((cmd, i) => (subscribes(cmd, i) ? subReplies[sub++] : mixedReplies[m++]));
      cases.forEach((cmd, i) => {
        const verdict = verdicts[i];
        let expected: string | null = null; // null: allowed, so anything but NOPERM from the ACL
        if (verdict.includes("permissions to run the")) expected = `-NOPERM this user has no permissions to run the '${/the '(.*)' command/.exec(verdict)![1]}' command\r\n`;
        else if (verdict.endsWith("' key\r\n")) expected = "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
        else if (verdict.endsWith("' channel\r\n")) expected = "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n";
        else if (verdict !== "+OK\r\n") throw new Error(`unexpected DRYRUN reply ${verdict} for ${cmd.join(" ")}`);
        const got = replies[i];
        const ok = expected === null ? !got.startsWith("-NOPERM this user") : got === expected;
        if (expected !== null) refusals++;
        if (!ok) mismatches.push(`${name}: ${cmd.join(" ")}: redis says ${JSON.stringify(verdict)}, predixy answered ${JSON.stringify(got)}`);
      });
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    // Both verdicts are well represented.
    expect(refusals).toBeGreaterThan(300);
    expect(1200 - refusals).toBeGreaterThan(50);
  }, 60_000);

  test("ACL LIST, USERS and GETUSER show password hashes, never passwords, and no backend credentials", async () => {
    const [, list, users, get] = await rawPipeline(PORT, [AUTH_DEFAULT, ["ACL", "LIST"], ["ACL", "USERS"], ["ACL", "GETUSER", "app"]]);
    for (const secret of ["rpw", "hpw", "spw", "apw", "bpw", "defpw", "app-backend"]) {
      for (const text of [list, users, get]) expect(text).not.toContain(`${secret}\r`);
      expect(list).not.toContain(` >${secret}`);
    }
    expect(list).toContain(`user reader on #${hashPassword("rpw")} ~pub:* %R~shared:* resetchannels &news.* -@all +@read +@pubsub -@dangerous +ping`);
    expect(list).toContain(`user default on #${hashPassword("defpw")} ~* &* +@all`);
    expect(list).toContain("user sel on #");
    expect(list).toContain(" (~y:* resetchannels -@all +set +get) (%R~z:* resetchannels &z* -@all +@read)");
    expect(users).toBe("*6\r\n$3\r\napp\r\n$7\r\ndefault\r\n$8\r\ndisabled\r\n$6\r\nhashed\r\n$6\r\nreader\r\n$3\r\nsel\r\n");
    expect(get).toContain(`$9\r\npasswords\r\n*1\r\n$64\r\n${hashPassword("apw")}\r\n`);
  });

  test("ACL LOG records denials with the key, the user and the client's address; ACL CAT and DRYRUN answer", async () => {
    await rawPipeline(PORT, [AUTH_DEFAULT, ["ACL", "LOG", "RESET"]]);
    await rawPipeline(PORT, [["AUTH", "reader", "rpw"], ["GET", "other"], ["HSET", "nope", "f", "v"]]);
    const [, log, cat, dry] = await rawPipeline(PORT, [AUTH_DEFAULT, ["ACL", "LOG", "1"], ["ACL", "CAT"], ["ACL", "DRYRUN", "reader", "GET", "pub:9"]]);
    expect(log).toStartWith("*1\r\n*14\r\n$5\r\ncount\r\n:1\r\n$6\r\nreason\r\n$7\r\ncommand\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$4\r\nhset\r\n$8\r\nusername\r\n$6\r\nreader\r\n");
    expect(log).toMatch(/client-info\r\n\$\d+\r\nid=\d+ addr=127\.0\.0\.1:\d+ .*cmd=hset user=reader/);
    const [, all] = await rawPipeline(PORT, [AUTH_DEFAULT, ["ACL", "LOG"]]);
    expect(all).toContain("$3\r\nkey\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$5\r\nother\r\n");
    expect(cat).toStartWith("*21\r\n$8\r\nkeyspace\r\n$4\r\nread\r\n");
    expect(dry).toBe("+OK\r\n");
  });
});

describe("command policy", () => {
  test("denied commands are refused to everyone, renamed ones answer to their new name only", async () => {
    const r = await rawPipeline(PORT, [AUTH_DEFAULT, ["FLUSHALL"], ["KEYS", "*"], ["SAY", "hi"], ["ECHO", "hi"], ["TIME"]]);
    expect(r.slice(1)).toEqual([
      "-NOPERM command 'flushall' is denied by the proxy's command policy\r\n",
      "-NOPERM command 'keys' is denied by the proxy's command policy\r\n",
      "$2\r\nhi\r\n",
      "-ERR unknown command 'ECHO', with args beginning with: 'hi' \r\n",
      "-ERR unknown command 'TIME', with args beginning with: \r\n",
    ]);
  });
});

describe("backend credentials", () => {
  test("a user mapped to its own cluster user runs under the cluster's ACL for it, on connections of its own", async () => {
    const app = await rawPipeline(PORT, [["AUTH", "app", "apw"], ["SET", "app:1", "a"], ["SET", "other", "o"], ["GET", "app:1"]]);
    expect(app.slice(1)).toEqual(["+OK\r\n", "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n", "$1\r\na\r\n"]);
    const def = await rawPipeline(PORT, [AUTH_DEFAULT, ["SET", "other", "o"]]);
    expect(def[1]).toBe("+OK\r\n");
    // On the node serving app:1, predixy holds connections as app-backend (the app user's) and as default.
    const lists = await Promise.all(cluster.nodes.map((n) => redisCli(n.port, ["client", "list"])));
    expect(lists.some((l) => /user=app-backend/.test(l))).toBe(true);
    expect(lists.every((l) => /user=default/.test(l))).toBe(true);
  });
});

describe("RESP3", () => {
  test("HELLO 3 AUTH logs in; ACL answers in RESP3; a user's backend credentials hold on RESP3 connections too", async () => {
    const r = await rawPipeline(PORT, [
      ["HELLO", "3", "AUTH", "default", "defpw"], ["ACL", "GETUSER", "sel"], ["ACL", "LOG", "0"],
      ["AUTH", "app", "apw"], ["SET", "app:3", "x"], ["SET", "other3", "y"], ["GET", "app:3"],
    ]);
    expect(r[0]).toStartWith("%7\r\n$6\r\nserver\r\n");
    expect(r[1]).toStartWith("%6\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n");
    expect(r[1]).toContain("$9\r\nselectors\r\n*2\r\n%3\r\n$8\r\ncommands\r\n");
    expect(r[2]).toBe("*0\r\n");
    expect(r.slice(3)).toEqual(["+OK\r\n", "+OK\r\n",
      "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n", "$1\r\nx\r\n"]);
  });
});

describe("--check", () => {
  test("warns when a config holding secrets is readable by others, and about users that are off", async () => {
    const file = join(dir, "check.toml");
    writeFileSync(file, `[server]\npassword = "inline"\n[cluster]\nentry_points = ["127.0.0.1:1"]\n[[users]]\nname = "u"\nrules = ">x ~* +@all"\n`);
    const check = async () => {
      const p = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "-c", file, "--check"], { stdout: "pipe", stderr: "pipe" });
      const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
      return { out, code };
    };
    chmodSync(file, 0o644);
    const open = await check();
    expect(open.code).toBe(0);
    expect(open.out).toContain(`warning: ${file} is readable by other users and holds secrets (server.password, users[0].rules)`);
    expect(open.out).toContain(`warning: user "u" is off`);
    chmodSync(file, 0o600);
    const closed = await check();
    expect(closed.out).not.toContain("readable by other users");
    expect(closed.out).toContain("OK");
    writeFileSync(file, `[cluster]\nentry_points = ["127.0.0.1:1"]\n[[users]]\nname = "u"\nrules = "on +nosuchcommand ~x ~* +@nocategory"\n`);
    const bad = await check();
    expect(bad.out).toContain("Unknown command or category name in ACL");
  });
});
