import { afterEach, expect, test } from "bun:test";
import { BackendNode } from "../../../src/backend/backend-node.ts";
import type { BackendEvents } from "../../../src/backend/backend-conn.ts";
import { NO_NODE, SLOT_COUNT, SlotTable } from "../../../src/cluster/slot-table.ts";
import { acquire, internalRequest, Kind, type Request } from "../../../src/router/request.ts";

const realConnect = Bun.connect;
afterEach(() => { (Bun as { connect: unknown }).connect = realConnect; });

const lost: Request[] = [];
const events: BackendEvents = { onReply() {}, onLost(req) { lost.push(req); }, onConnectionState() {}, onNodeAnswered() {} };
const bytes = new TextEncoder().encode("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");

function request(slot: number, redirects = 0): Request {
  const r = acquire();
  r.slot = slot;
  r.redirects = redirects;
  r.src = bytes;
  r.start = 0;
  r.end = bytes.length;
  return r;
}

test("requests waiting for a connection to a node that lost their slot are taken off it, in order", () => {
  // A connect that never completes: the connection stays CONNECTING with everything unsent.
  (Bun as { connect: unknown }).connect = () => new Promise(() => {});
  const opts = { poolSize: 1, bufferSize: 1024, connectTimeoutMs: 60_000, authRequests: [null], helloRequests: [internalRequest(Kind.AUTH, bytes)], tls: null, maxIdle: 4, maxPinned: 16 };
  const x = new BackendNode("127.0.0.1", 1, opts, events);
  const y = new BackendNode("127.0.0.1", 2, opts, events);
  const owner = new Uint16Array(SLOT_COUNT).fill(NO_NODE);
  owner[1] = 1; owner[2] = 0; owner[3] = 1; // slots 1 and 3 now belong to y; 4 to nobody
  const table = new SlotTable([x, y], owner, [[], []]);

  const [r1, r2, r3, r4, redirected] = [request(1), request(2), request(3), request(4), request(1, 1)];
  for (const r of [r1, r2, r3, r4, redirected]) x.send(r);
  const out: Request[] = [];
  x.movedAway(table, [], out);
  expect(out).toEqual([r1, r3]);
  let left = 0;
  x.forEachConn((c) => { left += c.inFlight; });
  expect(left).toBe(3); // r2 (still x's), r4 (no owner), the redirected one (a node's word)

  x.closeAll("test over");
  expect(lost).toEqual([r2, r4, redirected]);
});

test("a RESP3 client's commands go on the node's RESP3 connections, opened with HELLO 3 first", () => {
  const opened: unknown[] = [];
  (Bun as { connect: unknown }).connect = (o: unknown) => { opened.push(o); return new Promise(() => {}); };
  const hello = internalRequest(Kind.AUTH, new TextEncoder().encode("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"));
  const x = new BackendNode("127.0.0.1", 1, { poolSize: 2, bufferSize: 1024, connectTimeoutMs: 60_000, authRequests: [null], helloRequests: [hello], tls: null, maxIdle: 4, maxPinned: 16 }, events);
  const two = request(1), three = request(1);
  three.proto = 3;
  x.send(two);
  x.send(three);
  expect(opened.length).toBe(2);
  const queues: number[] = [];
  x.forEachConn((c) => { queues.push(c.inFlight); });
  expect(queues).toEqual([1, 2]); // RESP2: the command; RESP3: HELLO 3, then the command
  x.closeAll("test over");
});
