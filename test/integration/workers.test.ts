// worker_threads > 1: several proxy processes share the port, each serving its share of clients.

import { afterAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { bulk, DEFAULT, startFakeNode } from "../helpers/fake-node.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";

const node = startFakeNode(7800, (args) => (args[0] === "GET" ? bulk(`from-fake:${args[1]}`) : DEFAULT));
let proxy: ProxyHandle | null = null;

afterAll(async () => {
  await proxy?.stop();
  node.stop();
});

test("two workers share the listening port and both serve commands", async () => {
  proxy = await startProxy(7890, ["127.0.0.1:7800"], { rest: "[performance]\nworker_threads = 2" });
  const pids = new Set<string>();
  // SO_REUSEPORT spreads connections by hash: with 30 connections both workers get some.
  for (let i = 0; i < 30 && pids.size < 2; i++) {
    const c = new Redis({ port: 7890, host: "127.0.0.1" });
    try {
      pids.add(/worker_process_id:(\d+)/.exec(await c.info("server"))![1]);
      expect(await c.get(`k${i}`)).toBe(`from-fake:k${i}`);
    } finally {
      c.disconnect();
    }
  }
  expect(pids.size).toBe(2);
});

test("stopping the first process stops its workers", async () => {
  // This proxy's processes only: other test runs on the machine have proxies of their own.
  const file = proxy!.configFile;
  const count = async () => Number((await Bun.$`pgrep -fc -- ${`-c ${file}$`}`.nothrow().text()).trim() || "0");
  const before = await count();
  expect(before).toBe(2);
  await proxy!.stop();
  proxy = null;
  let left = before;
  for (let i = 0; i < 100 && left > 0; i++) {
    left = await count();
    if (left > 0) await Bun.sleep(50);
  }
  expect(left).toBe(0);
});
