// The README documents every Prometheus metric, and contrib/ only uses metrics that exist.

import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exposition } from "../../../src/admin/prometheus.ts";
import { hotKeys } from "../../../src/metrics/hot-keys.ts";
import { ProcessSampler } from "../../../src/metrics/process-sampler.ts";
import { mergeSnapshots, takeSnapshot } from "../../../src/metrics/snapshot.ts";
import { Stats } from "../../../src/metrics/stats.ts";

const ROOT = join(import.meta.dir, "../../..");
const stats = new Stats();
hotKeys.configure(2, 1);
const view = mergeSnapshots([takeSnapshot({
  worker: 0, stats, sampler: new ProcessSampler(stats), nodes: () => [],
  topology: () => ({ ok: true, refreshes: 0, refreshFailures: 0, changes: 0, coveredSlots: 0 }),
  clients: () => ({ connected: 0, blocked: 0, pending: 0, outputBytes: 0, inputBytes: 0 }), draining: () => false,
})]);
const families = [...exposition(view, { ready: true }).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
afterAll(() => hotKeys.configure(0, 100));

test("every metric family is in the README's table", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  expect(families.length).toBeGreaterThan(40);
  for (const f of families) expect(readme).toContain(`| \`${f}\` |`);
});

test("the Grafana dashboard and the alert rules use only metrics that exist", () => {
  const dashboard = readFileSync(join(ROOT, "contrib/grafana/predixy-dashboard.json"), "utf8");
  const exprs = (JSON.parse(dashboard) as { panels: { targets?: { expr: string }[] }[] }).panels
    .flatMap((p) => p.targets ?? []).map((t) => t.expr);
  const alerts = readFileSync(join(ROOT, "contrib/prometheus/predixy-alerts.yml"), "utf8");
  const used = [...(exprs.join("\n") + alerts).matchAll(/\b((?:predixy|process)_[a-z_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ""));
  expect(used.length).toBeGreaterThan(20);
  for (const name of used) expect(families).toContain(name);
});
