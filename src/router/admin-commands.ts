// Commands about the proxy itself: LATENCY, SLOWLOG, CONFIG and INFO's own sections, for the whole worker group.

import type { LiveSettings } from "../config/live-settings.ts";
import type { GroupOp } from "../metrics/group.ts";
import { powerOfTwoCdf, totalCount } from "../metrics/histogram.ts";
import { buildInfo, selectSections, type InfoContext } from "../metrics/info.ts";
import type { GroupView } from "../metrics/snapshot.ts";
import type { Frame } from "../resp/request-reader.ts";
import * as R from "../resp/replies.ts";
import { encodeReply, ReplyMap, Simple, type Proto, type ReplyValue } from "../resp/reply-writer.ts";

/** What these commands read and change; wired by main.ts. */
export interface AdminContext {
  /** The group's figures (a promise when workers must be asked); `detail`: see takeSnapshot. */
  view(detail?: boolean): GroupView | Promise<GroupView>;
  /** Applies a change in every process. */
  apply(op: GroupOp): void;
  settings: LiveSettings;
  info: InfoContext;
  /**
   * INFO's text for the proxy's own sections selected by `args` (INFO's arguments, lower-cased).
   * The `keyspace` section is the masters' (router/fan-out.ts appends it).
   */
  infoText(args: string[]): string | Promise<string>;
}

const decoder = new TextDecoder();
const text = (f: Frame, i: number) => decoder.decode(f.arg(i));
const enc = (s: string) => new TextEncoder().encode(s);

/** The reply to an admin command (`name` as in the command table), in the client's protocol. */
export function answerAdmin(name: string, f: Frame, ctx: AdminContext, proto: Proto): Uint8Array | Promise<Uint8Array> {
  switch (name) {
    case "latency|histogram": {
      const names = Array.from({ length: f.argc - 2 }, (_, i) => text(f, i + 2).toLowerCase());
      return withView(ctx, (v) => encodeReply(latencyHistogram(v, names), proto));
    }
    case "latency|latest":
    case "latency|history":
      // predixy keeps no latency-monitor events (its figures are the histograms): nothing to list.
      return EMPTY_ARRAY;
    case "latency|reset":
      return R.intReply(0);
    case "latency|help":
      return help(LATENCY_HELP, proto);
    case "slowlog|get": {
      let count = 10;
      if (f.argc > 2) {
        const arg = text(f, 2);
        if (!/^-?\d{1,18}$/.test(arg) || Number(arg) < -1) return ERR_SLOWLOG_COUNT;
        count = Number(arg);
      }
      return withView(ctx, (v) => encodeReply((count === -1 ? v.slowlog : v.slowlog.slice(0, count)).map((e) =>
        [e.id, e.time, e.durationUs, e.args, e.client, e.clientName, e.node]), proto));
    }
    case "slowlog|len":
      return withView(ctx, (v) => R.intReply(v.slowlog.length));
    case "slowlog|reset":
      ctx.apply({ op: "slowlog-reset" });
      return R.OK;
    case "slowlog|help":
      return help(SLOWLOG_HELP, proto);
    case "config|get": {
      const pairs = ctx.settings.get(Array.from({ length: f.argc - 2 }, (_, i) => text(f, i + 2)));
      return encodeReply(new ReplyMap(pairs), proto);
    }
    case "config|set":
      return configSet(f, ctx);
    case "config|resetstat":
      ctx.apply({ op: "resetstat" });
      return R.OK;
    case "config|help":
      return help(CONFIG_HELP, proto);
    default:
      return R.errorReply(`ERR command '${name}' is not supported by proxy`);
  }
}

function withView(ctx: AdminContext, fn: (v: GroupView) => Uint8Array): Uint8Array | Promise<Uint8Array> {
  const v = ctx.view();
  return v instanceof Promise ? v.then(fn) : fn(v);
}

/** INFO's own sections (see AdminContext.infoText), from the group's view. */
export function infoText(ctx: Pick<AdminContext, "view" | "info">, args: string[]): string | Promise<string> {
  const sections = selectSections(args);
  const v = ctx.view(sections.includes("latencystats") || sections.includes("hotkeys"));
  return v instanceof Promise ? v.then((x) => buildInfo(x, ctx.info, sections)) : buildInfo(v, ctx.info, sections);
}

/**
 * Redis 7's LATENCY HISTOGRAM: per command, its calls and the cumulative count of calls at or
 * under each power-of-two µs bound where the count grows. No names: every command called; a
 * container name (CLIENT) stands for its subcommands.
 */
function latencyHistogram(v: GroupView, names: string[]): ReplyMap {
  const out: [string, ReplyValue][] = [];
  for (const c of v.commands) {
    const calls = totalCount(c.hist);
    if (calls === 0) continue;
    if (names.length > 0 && !names.some((n) => c.name === n || c.name.startsWith(`${n}|`))) continue;
    const buckets: [number, ReplyValue][] = [];
    let prev = 0;
    for (const [bound, count] of powerOfTwoCdf(c.hist)) {
      if (count > prev) buckets.push([bound, count]);
      prev = count;
    }
    out.push([c.name, new ReplyMap([["calls", calls], ["histogram_usec", new ReplyMap(buckets)]])]);
  }
  return new ReplyMap(out);
}

/** CONFIG SET name value [name value …]: all or nothing, as Redis 7 does. */
function configSet(f: Frame, ctx: AdminContext): Uint8Array {
  if ((f.argc - 2) % 2 !== 0) return R.errorReply("ERR wrong number of arguments for 'config|set' command");
  const pairs: [string, string][] = [];
  for (let i = 2; i < f.argc; i += 2) pairs.push([text(f, i).toLowerCase(), text(f, i + 1)]);
  for (const [name] of pairs) {
    if (!ctx.settings.settable(name)) return R.errorReply(ctx.settings.set(name, "")!);
  }
  // Tried here first; on a refusal the ones already set get their old values back.
  const old = pairs.map(([name]) => ctx.settings.get([name])[0][1]);
  for (let i = 0; i < pairs.length; i++) {
    const why = ctx.settings.set(pairs[i][0], pairs[i][1]);
    if (why !== null) {
      for (let j = 0; j < i; j++) ctx.settings.set(pairs[j][0], old[j]);
      return R.errorReply(why);
    }
  }
  for (const [name, value] of pairs) ctx.apply({ op: "config", name, value });
  return R.OK;
}

function help(lines: string[], proto: Proto): Uint8Array {
  return encodeReply(lines.map((l) => new Simple(l)), proto);
}

const EMPTY_ARRAY = enc("*0\r\n");
const ERR_SLOWLOG_COUNT = R.errorReply("ERR count should be greater than or equal to -1");
const LATENCY_HELP = [
  "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "HISTOGRAM [COMMAND ...]",
  "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
  "    If no commands are specified then all histograms are replied.",
  "LATEST, HISTORY <event>, RESET",
  "    Latency-monitor events: predixy records none (its latencies are the histograms).",
];
const SLOWLOG_HELP = [
  "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "GET [<count>]",
  "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
  "    Entries are made of: id, timestamp, time in microseconds, arguments array, client IP and port, client name,",
  "    and (predixy) the node that answered.",
  "LEN",
  "    Return the length of the slowlog.",
  "RESET",
  "    Reset the slowlog.",
];
const CONFIG_HELP = [
  "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "GET <pattern>",
  "    Return parameters matching the glob-like <pattern> and their values.",
  "SET <directive> <value>",
  "    Set the configuration <directive> to <value> (loglevel, slowlog-log-slower-than, slowlog-max-len,",
  "    latency-tracking, latency-tracking-info-percentiles), in every worker process.",
  "RESETSTAT",
  "    Reset statistics reported by the INFO command.",
];
