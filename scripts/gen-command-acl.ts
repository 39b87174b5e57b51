// Regenerates src/acl/command-acl.json from a local redis-server's COMMAND reply (categories, key specs).
//
//   bun scripts/gen-command-acl.ts [--server /usr/bin/redis-server] [--out src/acl/command-acl.json]
//
// Starts a throwaway standalone redis-server on a free loopback port, asks it COMMAND, stops it.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fromCommandReply, type CommandAclData } from "../src/acl/command-info.ts";
import { query } from "../src/cluster/control-client.ts";
import { RespError } from "../src/resp/reply-value.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    server: { type: "string", default: "redis-server" },
    out: { type: "string", default: resolve(import.meta.dir, "../src/acl/command-acl.json") },
  },
});

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

const port = freePort();
const dir = mkdtempSync(join(tmpdir(), "predixy-gen-"));
const proc = Bun.spawn([values.server!, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
  stdout: "pipe", stderr: "pipe",
});
try {
  let reply: unknown = null, version = "";
  for (let i = 0; i < 100 && reply === null; i++) {
    try {
      const [cmds, info] = await query("127.0.0.1", port, [["COMMAND"], ["INFO", "server"]], null, 2000);
      if (cmds instanceof RespError) throw new Error(cmds.message);
      reply = cmds;
      version = /redis_version:(\S+)/.exec(String(info))?.[1] ?? "?";
    } catch {
      await Bun.sleep(50);
    }
  }
  if (reply === null) throw new Error(`${values.server} did not answer on port ${port}`);
  const data = fromCommandReply(reply);
  const sortByName = (d: Record<string, CommandAclData>) => {
    const out: Record<string, CommandAclData> = {};
    for (const name of Object.keys(d).sort()) {
      const { subcommands, ...rest } = d[name];
      out[name] = subcommands ? { ...rest, subcommands: sortByName(subcommands) } : rest;
    }
    return out;
  };
  const sorted = sortByName(data);
  // One command per line: reviewable diffs when the Redis version changes.
  const lines = Object.entries(sorted).map(([n, d]) => `    ${JSON.stringify(n)}: ${JSON.stringify(d)}`);
  writeFileSync(values.out!, `{\n  "source": ${JSON.stringify(`redis-server ${version} COMMAND`)},\n  "commands": {\n${lines.join(",\n")}\n  }\n}\n`);
  console.error(`wrote ${Object.keys(sorted).length} commands from redis ${version} to ${values.out}`);
} finally {
  proc.kill();
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
}
