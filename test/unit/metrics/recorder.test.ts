// The hot-path recorder: counts per command and node, error kinds, the switch, reset.

import { expect, test } from "bun:test";
import { bucketOf, totalCount } from "../../../src/metrics/histogram.ts";
import { ErrorKind, ERROR_KINDS, Metrics, replyErrorKind } from "../../../src/metrics/recorder.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test("commandDone counts calls, µs and the histogram from the event clock", () => {
  const m = new Metrics(10);
  m.now = 1000;
  for (let i = 0; i < 1000; i++) m.commandDone(3, 1000 - 0.25, ErrorKind.NONE);
  expect(m.cmdCalls[3]).toBe(1000);
  expect(m.cmdUsec[3]).toBeCloseTo(250_000, 6);
  expect(m.cmdHist[3]![bucketOf(250)]).toBe(1000);
  expect(m.cmdHist[4]).toBeUndefined();
});

test("errors count as failed or rejected, by kind; unknown commands only in the totals", () => {
  const m = new Metrics(10);
  m.commandDone(2, m.now, ErrorKind.OTHER);
  m.commandDone(2, m.now, ErrorKind.REFUSED);
  m.commandDone(2, m.now, ErrorKind.CLUSTERDOWN);
  m.commandDone(0, m.now, ErrorKind.OTHER);
  expect(m.cmdFailed[2]).toBe(2);
  expect(m.cmdRejected[2]).toBe(1);
  expect(m.cmdErrors[2 * ERROR_KINDS + ErrorKind.CLUSTERDOWN]).toBe(1);
  expect(m.totalErrorReplies).toBe(4);
  expect(m.cmdCalls[0]).toBe(0);
});

test("the slowlog threshold: true at or over it, never when negative", () => {
  const m = new Metrics(4);
  m.now = 100;
  m.setSlowlog(10_000);
  expect(m.commandDone(1, 100 - 9.999, ErrorKind.NONE)).toBe(false);
  expect(m.commandDone(1, 100 - 10, ErrorKind.NONE)).toBe(true);
  m.setSlowlog(-1);
  expect(m.commandDone(1, 0, ErrorKind.NONE)).toBe(false);
  m.setSlowlog(0);
  expect(m.commandDone(1, 100, ErrorKind.NONE)).toBe(true);
});

test("errorReply counts errorstats by first word, keeps at most 128 prefixes, and lets the proxy's kind win", () => {
  const m = new Metrics(1);
  const r = enc("-WRONGTYPE Operation against a key\r\n");
  expect(m.errorReply(r, 0, r.length, ErrorKind.NONE)).toBe(ErrorKind.OTHER);
  const moved = enc("-MOVED 3999 127.0.0.1:7001\r\n");
  expect(m.errorReply(moved, 0, moved.length, ErrorKind.NONE)).toBe(ErrorKind.MOVED);
  const lost = enc("-ERR connection lost\r\n");
  expect(m.errorReply(lost, 0, lost.length, ErrorKind.CONN_LOST)).toBe(ErrorKind.CONN_LOST);
  const bare = enc("-NOPREFIX\r\n");
  m.errorReply(bare, 0, bare.length, ErrorKind.NONE);
  expect([...m.errorPrefixes]).toEqual([["WRONGTYPE", 1], ["MOVED", 1], ["ERR", 1], ["NOPREFIX", 1]]);
  for (let i = 0; i < 200; i++) {
    const e = enc(`-E${i} x\r\n`);
    m.errorReply(e, 0, e.length, ErrorKind.NONE);
  }
  expect(m.errorPrefixes.size).toBe(128);
});

test("replyErrorKind reads cluster errors from the bytes", () => {
  const kind = (s: string) => { const b = enc(`xx${s}\r\n`); return replyErrorKind(b, 2, b.length); };
  expect(kind("-MOVED 1 h:1")).toBe(ErrorKind.MOVED);
  expect(kind("-ASK 1 h:1")).toBe(ErrorKind.ASK);
  expect(kind("-TRYAGAIN x")).toBe(ErrorKind.TRYAGAIN);
  expect(kind("-CLUSTERDOWN x")).toBe(ErrorKind.CLUSTERDOWN);
  expect(kind("-LOADING x")).toBe(ErrorKind.LOADING);
  expect(kind("-MASTERDOWN x")).toBe(ErrorKind.MASTERDOWN);
  expect(kind("-READONLY x")).toBe(ErrorKind.READONLY);
  expect(kind("-MOVEDX")).toBe(ErrorKind.OTHER);
  expect(kind("-ASKING")).toBe(ErrorKind.OTHER);
  expect(kind("-ERR x")).toBe(ErrorKind.OTHER);
});

test("nodes get stable ids by address and their arrays grow", () => {
  const m = new Metrics(1);
  const ids = Array.from({ length: 40 }, (_, i) => m.nodeId(`10.0.0.${i}:7000`));
  expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => i));
  expect(m.nodeId("10.0.0.5:7000")).toBe(5);
  m.now = 10;
  m.nodeReply(39, 9.5, ErrorKind.MOVED);
  m.nodeReply(39, 0, ErrorKind.NONE);
  expect(m.nodeCalls[39]).toBe(2);
  expect(totalCount(m.nodeHist[39])).toBe(1);
  expect(m.nodeHist[39][bucketOf(500)]).toBe(1);
  expect(m.nodeErrors[39 * ERROR_KINDS + ErrorKind.MOVED]).toBe(1);
});

test("disabled, nothing per command or per reply is recorded", () => {
  const m = new Metrics(4);
  m.enabled = false;
  m.commandDone(1, 0, ErrorKind.OTHER);
  const id = m.nodeId("a:1");
  m.nodeReply(id, 1, ErrorKind.NONE);
  expect(m.cmdCalls[1] + m.totalErrorReplies + m.nodeCalls[id] + (m.cmdHist[1] === undefined ? 0 : 1)).toBe(0);
});

test("reset zeroes counters and histograms, keeps node ids and the pinned gauge", () => {
  const m = new Metrics(4);
  const id = m.nodeId("a:1");
  m.commandDone(1, 0, ErrorKind.OTHER);
  m.nodeReply(id, 1, ErrorKind.NONE);
  m.pinnedOpened(id);
  m.reset();
  expect(m.cmdCalls[1] + m.nodeCalls[id] + m.totalErrorReplies + totalCount(m.nodeHist[id])).toBe(0);
  expect(m.cmdHist[1]).toBeUndefined();
  expect(m.nodeId("a:1")).toBe(id);
  expect(m.nodePinned[id]).toBe(1);
});

test("ensureCommands keeps what was counted", () => {
  const m = new Metrics(2);
  m.commandDone(1, m.now, ErrorKind.NONE);
  m.ensureCommands(500);
  m.commandDone(499, m.now, ErrorKind.NONE);
  expect(m.cmdCalls[1]).toBe(1);
  expect(m.cmdCalls[499]).toBe(1);
});
