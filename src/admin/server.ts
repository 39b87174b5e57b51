// The admin HTTP server (Bun.serve): /metrics, /healthz, /readyz, /cluster, /info and the dashboard.

import type { Server } from "bun";
import { getLogger } from "@logtape/logtape";
import { percentile, totalCount } from "../metrics/histogram.ts";
import { buildInfo, selectSections, type InfoContext } from "../metrics/info.ts";
import { ERROR_KIND_NAMES as ERROR_NAMES } from "../metrics/recorder.ts";
import type { GroupView } from "../metrics/snapshot.ts";
import { VERSION } from "../version.ts";
import dashboardFile from "./dashboard.html" with { type: "text" };
import { History } from "./history.ts";
import { exposition } from "./prometheus.ts";

const log = getLogger(["predixy", "admin"]);
/** Imported as text (the types know .html only as a bundle): embedded in the executable. */
const DASHBOARD = dashboardFile as unknown as string;

export interface AdminOptions {
  bind: string;
  port: number;
  /** The group's figures, fresh. */
  view(): Promise<GroupView>;
  /** Why the proxy is not ready (topology unknown, draining), or null when it is. */
  notReady(): string | null;
  info: InfoContext;
}

export interface AdminServer {
  readonly port: number;
  stop(): void;
}

/** The dashboard's history is sampled this often, from start-up, so the page has minutes to show at once. */
const SAMPLE_MS = 1000;

export function startAdmin(opts: AdminOptions): AdminServer {
  const history = new History();
  let sampling = false;
  const sample = async () => {
    if (sampling) return;
    sampling = true;
    try {
      history.add(await opts.view());
    } catch (err) {
      log.warn("admin: could not sample the metrics: {err}", { err: (err as Error).message });
    } finally {
      sampling = false;
    }
  };
  void sample();
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref?.();

  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body, jsonReplacer), { status, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" } });

  const server: Server<undefined> = Bun.serve({
    hostname: opts.bind,
    port: opts.port,
    // Scrapes and the page are small; anything else is refused early.
    maxRequestBodySize: 1024,
    routes: {
      "/": () => new Response(DASHBOARD, { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } }),
      "/healthz": () => new Response("ok\n", { headers: { "content-type": "text/plain" } }),
      "/readyz": () => {
        const why = opts.notReady();
        return why === null
          ? new Response("ready\n", { headers: { "content-type": "text/plain" } })
          : new Response(`not ready: ${why}\n`, { status: 503, headers: { "content-type": "text/plain" } });
      },
      "/metrics": async () => new Response(exposition(await opts.view(), { ready: opts.notReady() === null }), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      }),
      "/cluster": async () => json(clusterJson(await opts.view())),
      "/info": async (req) => {
        const sections = new URL(req.url).searchParams.get("sections");
        const v = await opts.view();
        return json(infoJson(v, opts.info, sections ? sections.toLowerCase().split(",") : ["everything"]));
      },
      "/api/dashboard": async (req) => {
        const since = Number(new URL(req.url).searchParams.get("since") ?? 0) || 0;
        // Every open page polls once a second: they share the sampler's view while it is fresh.
        const latest = history.latest;
        const v = latest !== null && Date.now() - latest.takenAt < 2 * SAMPLE_MS ? latest : await opts.view();
        return json({
          version: VERSION, ready: opts.notReady(), now: v.takenAt, points: history.since(since),
          processes: v.processes, clients: v.clients, topology: v.topology, nodes: clusterJson(v).nodes,
          slowlog: v.slowlog.slice(0, 10), hotkeys: v.hotkeys,
        });
      },
    },
    fetch: () => new Response("not found\n", { status: 404 }),
    error(err) {
      log.error("admin: {err}", { err: err.stack ?? err.message });
      return new Response("internal error\n", { status: 500 });
    },
  });
  return {
    port: server.port ?? opts.port,
    stop() {
      clearInterval(timer);
      void server.stop(true);
    },
  };
}

/** Nodes with roles, slot ranges, health and per-node figures. */
export function clusterJson(v: GroupView) {
  return {
    state: v.topology.ok && v.topology.coveredSlots === 16384 ? "ok" : "fail",
    topology: v.topology,
    nodes: v.nodes.map((n) => {
      const total = totalCount(n.hist);
      return {
        addr: n.addr, role: n.role, master: n.master || null, slots: n.slots,
        slotCount: n.slots.reduce((a, [x, y]) => a + y - x + 1, 0),
        state: n.up ? "up" : "down", connections: n.conns, pinned: n.pinned, inFlight: n.inFlight,
        calls: n.calls, bytesIn: n.bytesIn, bytesOut: n.bytesOut, ups: n.ups, downs: n.downs,
        errors: Object.fromEntries(n.errors.map((x, k) => [ERROR_NAMES[k], x]).filter(([k, x]) => k !== "none" && (x as number) > 0)),
        latencyUs: { p50: percentile(n.hist, 50, total), p99: percentile(n.hist, 99, total), p999: percentile(n.hist, 99.9, total) },
      };
    }),
  };
}

/** INFO's sections as JSON objects: `{ server: { redis_version: "7.0.0", … }, … }`, numbers as numbers. */
export function infoJson(v: GroupView, ctx: InfoContext, args: string[]): Record<string, Record<string, string | number>> {
  const out: Record<string, Record<string, string | number>> = {};
  const text = buildInfo(v, ctx, selectSections(args));
  let section: Record<string, string | number> = {};
  for (const line of text.split("\r\n")) {
    if (line.startsWith("# ")) out[line.slice(2).toLowerCase()] = section = {};
    else if (line.includes(":")) {
      const i = line.indexOf(":");
      const val = line.slice(i + 1);
      section[line.slice(0, i)] = /^-?\d+(\.\d+)?$/.test(val) ? Number(val) : val;
    }
  }
  return out;
}

/** Typed arrays (histograms) are left out of JSON. */
function jsonReplacer(_k: string, v: unknown): unknown {
  return ArrayBuffer.isView(v) ? undefined : v;
}
