// Wakes a generator's event loop when its next tick is due: a worker thread sleeping on a futex, finer than a 1 ms timer.
//
// The generator stores its next due time in shared memory; the worker sleeps until then
// (Atomics.wait takes fractions of a ms) and posts a message, at most one per `gapMs` and none
// while the last is unhandled. Replies wake the generator anyway, and it sends what is due then:
// this fills the quiet gaps (pipelined runs, where ticks are few), at a bounded cost.

declare const self: Worker;

/** `shared` (16 bytes): f64[0] next due time (ms, generator clock; NaN = stop); i32[2] 1 while a wake-up is unhandled; i32[3] stays 0, slept on. */
export interface PacerInit { shared: SharedArrayBuffer; origin: number; gapMs: number }

self.onmessage = (e: MessageEvent<PacerInit>) => {
  const { shared, origin, gapMs } = e.data;
  const due = new Float64Array(shared, 0, 1);
  const ctl = new Int32Array(shared, 8, 2);
  // performance.now() counts from each thread's own origin: convert to the generator's.
  const shift = performance.timeOrigin - origin;
  for (;;) {
    const at = due[0];
    if (Number.isNaN(at)) break;
    const wait = at - (shift + performance.now());
    if (wait > 0.005) { Atomics.wait(ctl, 1, 0, Math.min(wait, 1)); continue; }
    if (Atomics.compareExchange(ctl, 0, 0, 1) === 0) postMessage(0);
    Atomics.wait(ctl, 1, 0, gapMs);
  }
};
