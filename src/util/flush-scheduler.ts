// Coalesces socket writes: whoever has output marks itself once; all are flushed together a turn later.

/** Something with queued output (a backend or a client connection). */
export interface Flushable {
  flushQueued: boolean;
  flush(): void;
}

/**
 * Backend writes wait up to this many more event-loop turns. Each turn polls the sockets again
 * without blocking, so commands from clients whose data lands meanwhile join the same write:
 * fewer, larger writes mean fewer wake-ups of the Redis nodes and fewer syscalls here (measured:
 * ~2.6 → ~4 commands per write at pipeline 1, ~50 at 16; 8–16% less CPU per request over all
 * processes; bench/RESULTS.md), for a few microseconds of latency. A turn is taken only while
 * they pay: when the turn before brought commands (BUSY_MARKS for the first, whose own command
 * is one). Under a light load one command comes per turn, and the turns found nothing but cost an
 * epoll_wait each (twice C++ Predixy's per command at 40,000/s). Client writes get no extra
 * turns: more turns would not add to them (what a client's write waits for is decided per
 * read, in ClientConn.waitsForSiblings).
 */
const BACKEND_EXTRA_TURNS = 2;
const BUSY_MARKS = 2;

const backends: Flushable[] = [];
const clients: Flushable[] = [];
let backendTurns = -1;
/** markBackendDirty calls since the last turn: commands queued for nodes meanwhile. */
let marks = 0;
let clientsScheduled = false;

/** Queues `x` to flush once this and BACKEND_EXTRA_TURNS more event-loop turns have run. */
export function markBackendDirty(x: Flushable): void {
  marks++;
  if (x.flushQueued) return;
  x.flushQueued = true;
  backends.push(x);
  if (backendTurns < 0) {
    backendTurns = 0;
    setImmediate(flushBackends);
  }
}

/** Queues `x` to flush at the end of this event-loop turn (after all pending I/O callbacks). */
export function markClientDirty(x: Flushable): void {
  if (x.flushQueued) return;
  x.flushQueued = true;
  clients.push(x);
  if (!clientsScheduled) {
    clientsScheduled = true;
    setImmediate(flushClients);
  }
}

function flushBackends(): void {
  const busy = marks >= (backendTurns === 0 ? BUSY_MARKS : 1);
  marks = 0;
  if (busy && backendTurns++ < BACKEND_EXTRA_TURNS) {
    setImmediate(flushBackends);
    return;
  }
  backendTurns = -1;
  drainList(backends);
}

function flushClients(): void {
  clientsScheduled = false;
  drainList(clients);
}

function drainList(list: Flushable[]): void {
  // A flush may mark more work (a failed write completing requests): the loop picks it up.
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    x.flushQueued = false;
    x.flush();
  }
  list.length = 0;
}
