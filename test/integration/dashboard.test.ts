// The dashboard in a real browser (Debian's chromium, driven by playwright-core): loads clean, shows the nodes, moves under load.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { chromium, type Browser } from "playwright-core";
import { startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";
import { startProxy, type ProxyHandle } from "../helpers/proxy.ts";
import { waitFor } from "../helpers/scripted.ts";

// Ports: cluster 8410-8415 (bus 18410-18415), proxy 8496, admin 8486.
const ADMIN = 8486;
let cluster: ClusterHandle;
let proxy: ProxyHandle;
let browser: Browser;

/** Flags for a root, offline, headless chromium (see the machine notes: no sandbox, no background networking). */
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

beforeAll(async () => {
  cluster = await startCluster({ basePort: 8410, masters: 3, replicasPerMaster: 1, dir: "/tmp/predixy-test-8410" });
  proxy = await startProxy(8496, [cluster.entryPoints[0]], { cluster: "refresh_interval_ms = 500", rest: `[admin]\nport = ${ADMIN}` });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await proxy?.stop();
  await cluster?.stop();
});

test("the page loads without errors, lists every node of the cluster, and its numbers move under load", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("requestfailed", (r) => problems.push(`${r.url()} ${r.failure()?.errorText}`));
  const requested = new Set<string>();
  page.on("request", (r) => requested.add(new URL(r.url()).host));

  await page.goto(`http://127.0.0.1:${ADMIN}/`);
  // The proxy learns the replicas from a refresh: all six nodes end up listed.
  const rows = page.locator("#nodes tbody tr");
  await waitFor(async () => (await rows.count()) === 6, "six nodes in the table", 15_000);
  const addrs = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-addr")));
  expect(addrs.slice().sort()).toEqual(cluster.entryPoints.slice().sort());
  expect(await page.locator("#nodes tbody tr.master").count()).toBe(3);
  expect(await page.locator("#nodes tbody tr.replica").count()).toBe(3);
  expect(await page.locator("#ready").textContent()).toBe("ready");
  expect(await page.locator("#masters").textContent()).toBe("3 / 3");

  const opsNow = async () => Number((await page.locator("#ops-total").textContent())!.replace(/[^\d.]/g, "")) || 0;
  const client = new Redis({ port: 8496, host: "127.0.0.1" });
  let running = true;
  const load = (async () => {
    const deadline = Date.now() + 20_000;
    while (running && Date.now() < deadline) {
      const p = client.pipeline();
      for (let i = 0; i < 50; i++) p.set(`dash:${i}`, "v");
      await p.exec();
    }
  })();
  try {
    await waitFor(async () => (await opsNow()) > 0, "ops/s above 0 under load", 15_000);
    // Every master takes part of the load: its replies/s cell moves off 0.
    await waitFor(async () => (await page.locator("#nodes tbody tr.master td.rate").allTextContents()).every((t) => t !== "0"),
      "every master's replies/s above 0", 15_000);
  } finally {
    running = false;
    await load;
    client.disconnect();
  }
  if (process.env.PREDIXY_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.PREDIXY_DASHBOARD_SCREENSHOT, fullPage: true });
  // Nothing but the proxy itself was asked for anything.
  expect([...requested]).toEqual([`127.0.0.1:${ADMIN}`]);
  expect(problems).toEqual([]);
  await page.close();
}, 60_000);
