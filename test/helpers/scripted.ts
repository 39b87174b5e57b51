// Per-file scaffolding for tests against scripted fake nodes: ports, cleanup, proxies, clients.

import { afterEach } from "bun:test";
import { Redis } from "ioredis";
import { startFakeNode, type FakeHandler, type FakeNode, type FakeNodeOptions } from "./fake-node.ts";
import { startProxy, type ProxyExtra, type ProxyHandle } from "./proxy.ts";

/**
 * Hands out ports `from`–`to`, each once per run (so a test never meets a previous test's
 * lingering socket), and undoes everything a test started after it. With `proxyPorts`,
 * proxies take theirs from that range instead, in turn.
 */
export function scripted(from: number, to: number, proxyPorts?: [number, number]) {
  let next = from;
  const port = (): number => {
    if (next > to) throw new Error(`out of test ports ${from}-${to}`);
    return next++;
  };
  let nextProxy = proxyPorts?.[0] ?? 0;
  const proxyPort = (): number => {
    if (proxyPorts === undefined) return port();
    const p = nextProxy;
    nextProxy = p >= proxyPorts[1] ? proxyPorts[0] : p + 1;
    return p;
  };
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  return {
    port,
    proxyPort,
    cleanups,
    fake(handler?: FakeHandler, opts?: FakeNodeOptions): FakeNode {
      const node = startFakeNode(port(), handler, opts);
      cleanups.push(() => node.stop());
      return node;
    },
    async proxyFor(nodes: FakeNode[], extra: ProxyExtra = {}): Promise<ProxyHandle> {
      const p = await startProxy(proxyPort(), nodes.map((n) => `127.0.0.1:${n.port}`), extra);
      cleanups.push(() => p.stop());
      return p;
    },
    client(p: ProxyHandle): Redis {
      const c = new Redis({ port: p.port, host: "127.0.0.1", maxRetriesPerRequest: 0 });
      cleanups.push(() => c.disconnect());
      return c;
    },
  };
}

/** Polls `cond` until true; fails after `ms` (generous: this bounds a wait, it times nothing). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}
