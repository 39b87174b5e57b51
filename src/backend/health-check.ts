// Watching nodes between commands: PING on idle connections, nodes that stop answering, probes of nodes that are down.

import { PING_REQUEST, type BackendNode } from "./backend-node.ts";

export interface HealthOptions {
  /** PING a shared connection with nothing in flight for this long; 0 = never. */
  intervalMs: number;
  /** A command or PING unanswered this long marks its node as not answering. */
  timeoutMs: number;
  /** A connection with commands waiting and no reply at all for this long is closed. */
  commandTimeoutMs: number;
}

export interface HealthEvents {
  /** `node` has left a command or PING unanswered past timeoutMs (it is now unavailable). */
  onStalled(node: BackendNode): void;
  /** Time for replica state (INFO replication) to be asked again. */
  onPoll(): void;
  /**
   * Some node is unavailable: time to ask the cluster again whether its slots have moved.
   * Commands waiting for it ask as well, but clients whose commands are all at the silent node
   * (up to batch_size each) send none.
   */
  onNodeDown(): void;
}

/** While a node is unavailable, the topology is asked again this often. */
const DOWN_REFRESH_MS = 250;

/**
 * A node is found silent (SIGSTOP, a network partition, a saturated host) by what it fails
 * to answer, without waiting for TCP: a command or a health-check PING unanswered for
 * `health_check_timeout_ms` makes it unavailable (new commands for it wait instead of piling
 * onto it), and any reply makes it available again; a connection silent for
 * `command_timeout_ms` is closed (its reads are retried elsewhere, its writes fail with "may
 * or may not have run"). A node that is unavailable is probed with a PING on a connection of
 * its own, within its connect backoff, so that its return is seen even while nothing is sent
 * to it.
 */
export class HealthCheck {
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastPoll = 0;
  private lastDownRefresh = 0;

  constructor(
    private readonly nodes: () => Iterable<BackendNode>,
    private opts: HealthOptions,
    private readonly events: HealthEvents,
  ) {}

  start(): void {
    this.stop();
    const { intervalMs, timeoutMs, commandTimeoutMs } = this.opts;
    const finest = Math.min(intervalMs || Infinity, timeoutMs, commandTimeoutMs);
    this.timer = setInterval(tick, Math.max(50, Math.min(250, finest / 4)), this);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  configure(opts: HealthOptions): void {
    this.opts = opts;
    if (this.timer !== null) this.start();
  }

  /** @internal timer target. */
  tick(now = performance.now()): void {
    const { intervalMs, timeoutMs, commandTimeoutMs } = this.opts;
    let down = false;
    for (const n of this.nodes()) {
      n.forEachConn((c) => {
        c.checkStalled(now, commandTimeoutMs);
        if (!n.stalled && c.waitedLongerThan(now, timeoutMs)) {
          n.noteStalled(true);
          this.events.onStalled(n);
        } else if (intervalMs > 0 && c.idleLongerThan(now, intervalMs)) {
          c.enqueue(PING_REQUEST);
        }
      });
      // Connections lent to sessions: only the command deadline (a blocking call is exempt).
      n.pinned.forEachLent((c) => c.checkStalled(now, commandTimeoutMs));
      if (!n.available) {
        down = true;
        n.probe(now);
      }
    }
    if (down && now - this.lastDownRefresh >= DOWN_REFRESH_MS) {
      this.lastDownRefresh = now;
      this.events.onNodeDown();
    }
    const pollMs = intervalMs || 1000;
    if (now - this.lastPoll >= pollMs) {
      this.lastPoll = now;
      this.events.onPoll();
    }
  }
}

function tick(h: HealthCheck): void {
  h.tick();
}
