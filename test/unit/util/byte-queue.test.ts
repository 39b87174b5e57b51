import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { Socket } from "bun";
import { ByteQueue } from "../../../src/util/byte-queue.ts";
import { Ring } from "../../../src/util/ring.ts";

/** A socket that accepts at most `room` bytes per write, like a full kernel buffer. */
function stingySocket(room: number[]) {
  const got: number[] = [];
  const sock = {
    // Bun's signature: write(data, byteOffset?, byteLength?) → bytes accepted.
    write(data: Uint8Array, offset = 0, length = data.length - offset) {
      const n = Math.min(length, room.shift() ?? 0);
      got.push(...data.subarray(offset, offset + n));
      return n;
    },
  } as unknown as Socket<unknown>;
  return { sock, got };
}

describe("ByteQueue", () => {
  test("keeps what a partial write did not take, and sends it next time in order", () => {
    const q = new ByteQueue(4);
    q.append(Uint8Array.of(1, 2, 3));
    q.appendRange(Uint8Array.of(9, 4, 5, 6, 9), 1, 4);
    const { sock, got } = stingySocket([2, 0, 3, 10]);
    expect(q.writeTo(sock)).toBe(false);
    expect(q.size).toBe(4);
    expect(q.writeTo(sock)).toBe(false);          // nothing accepted: nothing lost
    expect(q.writeTo(sock)).toBe(false);
    q.append(Uint8Array.of(7));                    // more output while blocked goes behind
    expect(q.writeTo(sock)).toBe(true);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(q.size).toBe(0);
  });

  test("past its segment size it queues further segments, written out in order across writes", () => {
    const q = new ByteQueue(4, 16);
    const bytes = Array.from({ length: 100 }, (_, i) => i);
    for (let i = 0; i < 100; i += 10) q.appendRange(Uint8Array.from(bytes), i, i + 10);
    expect(q.size).toBe(100);
    const { sock, got } = stingySocket([7, 30, 0, 5, ...Array(20).fill(1000)]);
    expect(q.writeTo(sock)).toBe(false);
    expect(q.writeTo(sock)).toBe(false);
    q.appendRange(Uint8Array.of(100, 101), 0, 2);
    for (let i = 0; i < 20 && !q.writeTo(sock); i++);
    expect(got).toEqual([...bytes, 100, 101]);
    expect(q.size).toBe(0);
  });

  test("grows past its initial size for large output and copies long ranges intact", () => {
    const q = new ByteQueue(8);
    const big = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    q.appendRange(big, 10, 990);
    const { sock, got } = stingySocket([5000]);
    expect(q.writeTo(sock)).toBe(true);
    expect(got).toEqual(Array.from(big.subarray(10, 990)));
  });

  test("any mix of appends and partial writes over queues sharing spare buffers sends every byte once, in order", () => {
    const step = fc.oneof(
      fc.record({ q: fc.nat(2), append: fc.integer({ min: 0, max: 600 }) }),
      fc.record({ q: fc.nat(2), write: fc.integer({ min: 0, max: 900 }) }),
    );
    // Segments as small as the buffers, so that appends and writes cross their edges all the time;
    // three queues of one size, so that a buffer handed back while still in use would show.
    fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 700 }), fc.array(step, { maxLength: 120 }), (initial, segment, steps) => {
      const qs = [0, 1, 2].map(() => ({ q: new ByteQueue(initial, segment), queued: [] as number[], sent: [] as number[] }));
      for (const s of steps) {
        const { q, queued, sent } = qs[s.q];
        if ("append" in s) {
          // A range inside a larger buffer: short ranges take the byte loop, long ones append().
          const src = Uint8Array.from({ length: s.append + 2 }, (_, i) => (queued.length + i * 7 + s.q) & 0xff);
          q.appendRange(src, 1, src.length - 1);
          queued.push(...src.subarray(1, src.length - 1));
        } else {
          const { sock, got } = stingySocket([s.write]);
          q.writeTo(sock);
          sent.push(...got);
        }
        expect(q.size).toBe(queued.length - sent.length);
      }
      for (const { q, queued, sent } of qs) {
        // A socket with room for everything, over as many writes as there are segments.
        const { sock, got } = stingySocket(Array(queued.length + 1).fill(1 << 30));
        expect(q.writeTo(sock)).toBe(true);
        sent.push(...got);
        expect(sent).toEqual(queued);
      }
    }));
  });
});

describe("Ring", () => {
  test("is a FIFO across growth and wrap-around", () => {
    const r = new Ring<number>();
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) r.push(next++);
      for (let i = 0; i < 5; i++) out.push(r.shift()!);
    }
    while (r.size > 0) out.push(r.shift()!);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(r.shift()).toBeUndefined();
  });
});
