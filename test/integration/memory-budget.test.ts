// Bounded memory: a total budget for what clients make predixy hold; reading pauses first, then the biggest client goes.

import { expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { Redis } from "ioredis";
import { bulk, command, DEFAULT } from "../helpers/fake-node.ts";
import { scripted, waitFor } from "../helpers/scripted.ts";

// Fake nodes on 8620–8639, proxies on 8697.
const { fake, proxyFor, client, cleanups } = scripted(8620, 8639, [8697, 8697]);

const info = async (c: Redis, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(await c.info("everything"))![1]);

/** A raw client that sends `commands` and reads nothing until told to. */
function holdsReplies(port: number, commands: string): { sock: Socket; closed: () => boolean; port: () => number } {
  let closed = false, local = 0;
  const sock = connect({ host: "127.0.0.1", port }, () => { local = sock.localPort ?? 0; });
  cleanups.push(() => sock.destroy());
  sock.pause();
  sock.on("close", () => { closed = true; });
  sock.on("error", () => {});
  sock.write(commands);
  return { sock, closed: () => closed, port: () => local };
}

test("max_memory: clients holding the most stop being read, then the biggest is closed; INFO and the log say who", async () => {
  const value = "v".repeat(64 * 1024), big = "g".repeat(1024 * 1024);
  const a = fake((args) => (args[0] === "GET" ? bulk(args[1] === "g" ? big : value) : DEFAULT));
  // 32 MiB for all clients; no per-client limit in the way; every command of a read in flight at once.
  const p = await proxyFor([a], {
    rest: "[performance]\nmax_memory = 33554432\nmax_client_output_bytes = 1073741824\nbatch_size = 1000",
  });
  const bystander = client(p);
  // A modest client holding 13 MB of replies it has not read yet (under the 80% mark)…
  const modest = holdsReplies(p.port, command("GET", "m").repeat(200));
  // (Part of them sit in the kernel's socket buffers, several MB; the rest in predixy. Enough stay
  // here that the greedy client's replies in flight when reading stops take the total past 100%.)
  await waitFor(async () => a.count("GET") >= 200 && (await info(bystander, "mem_clients_normal")) > 1024 * 1024, "the modest client's replies to be held");
  // …and one pipelining 100 MB of replies it never reads: 100 commands in 2 KB, read at once, so
  // its replies in flight when reading stops take the total past 100% whatever the kernel's
  // socket buffers absorb (with many small replies, reading could stop early enough to stay under).
  const greedy = holdsReplies(p.port, command("GET", "g").repeat(100));
  await waitFor(greedy.closed, "the greedy client to be closed");
  const logs = p.logs();
  const paused = logs.indexOf("not reading the"), closed = logs.indexOf("closed: it held");
  expect(paused).toBeGreaterThan(0);
  expect(closed).toBeGreaterThan(paused);
  expect(logs).toContain(`addr=127.0.0.1:${greedy.port()}`);
  expect(await info(bystander, "evicted_clients")).toBe(1);
  expect(await bystander.get("k")).toBe(value);
  // The modest client was paused, not closed: it reads all its replies, in full.
  expect(modest.closed()).toBe(false);
  const chunks: Buffer[] = [];
  modest.sock.on("data", (d: Buffer) => chunks.push(d));
  modest.sock.resume();
  const want = bulk(value).repeat(200);
  await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) >= want.length, "the modest client's replies");
  expect(Buffer.concat(chunks).toString() === want).toBe(true);
  await waitFor(async () => (await info(bystander, "clients_paused_for_memory")) === 0, "reading to resume");
  // Every byte counted is uncounted again: with the others gone, the bystander (idle) holds nothing.
  modest.sock.destroy();
  await waitFor(async () => (await info(bystander, "mem_clients_normal")) === 0, "the count to return to zero");
}, 60_000);

test("one client that never reads its replies raises predixy's memory by about its output limit, no more", async () => {
  const value = "v".repeat(16 * 1024);
  const a = fake((args) => (args[0] === "GET" ? bulk(value) : DEFAULT));
  const p = await proxyFor([a], { rest: "[performance]\nmax_client_output_bytes = 33554432" });
  const other = client(p);
  const rss = async () => info(other, "used_memory_rss");
  const before = await rss();
  let peak = before;
  const sampler = setInterval(() => void rss().then((r) => { peak = Math.max(peak, r); }, () => {}), 20);
  cleanups.push(() => clearInterval(sampler));
  // 200,000 GETs of 16 KiB: 3.2 GB of replies if nothing bounded them.
  const slow = holdsReplies(p.port, command("GET", "big").repeat(200_000));
  await waitFor(slow.closed, "the client to be closed at its output limit", 30_000);
  clearInterval(sampler);
  expect(await info(other, "client_output_buffer_limit_disconnections")).toBe(1);
  expect(await other.get("big")).toBe(value);
  // Its 32 MiB of replies, plus buffers being collected: well under the 3.2 GB it asked for.
  expect(peak - before).toBeLessThan(128 * 1024 * 1024);
}, 60_000);
