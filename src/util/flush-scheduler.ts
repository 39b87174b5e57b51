// Coalesces socket writes: whoever has output marks itself once, and all flush once per event-loop turn.

/** Something with queued output (a backend or a client connection). */
export interface Flushable {
  flushQueued: boolean;
  flush(): void;
}

// Backends flush before clients so requests leave before replies are written back.
const backends: Flushable[] = [];
const clients: Flushable[] = [];
let scheduled = false;

/** Queues `x` to flush at the end of this event-loop turn (after all pending I/O callbacks). */
export function markBackendDirty(x: Flushable): void {
  if (x.flushQueued) return;
  x.flushQueued = true;
  backends.push(x);
  schedule();
}

export function markClientDirty(x: Flushable): void {
  if (x.flushQueued) return;
  x.flushQueued = true;
  clients.push(x);
  schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(flushAll);
}

function flushAll(): void {
  scheduled = false;
  drainList(backends);
  drainList(clients);
}

function drainList(list: Flushable[]): void {
  // A flush may mark more work (e.g. a failed write completing requests): the loop picks it up.
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    x.flushQueued = false;
    x.flush();
  }
  list.length = 0;
}
