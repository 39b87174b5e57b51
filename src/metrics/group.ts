// The worker group's view: the first process gathers every worker's snapshot over IPC on demand.

import type { Snapshot } from "./snapshot.ts";

/** A change every process applies (CONFIG SET, SLOWLOG RESET, CONFIG RESETSTAT). */
export type GroupOp =
  | { op: "config"; name: string; value: string }
  | { op: "slowlog-reset" }
  | { op: "resetstat" };

/** Messages on the IPC channel between the first process and each worker. */
export type GroupMessage =
  | { t: "snap"; id: number; detail: boolean }
  | { t: "snapped"; id: number; snap: Snapshot }
  | { t: "gather"; id: number; detail: boolean }
  | { t: "gathered"; id: number; snaps: Snapshot[] }
  | { t: "apply"; op: GroupOp };

/** The first process' side of the channels: one per running worker. */
export interface WorkerChannels {
  ids(): number[];
  send(worker: number, msg: GroupMessage): void;
}

/** A worker that has not answered in this long is left out of the view (it may be restarting). */
const GATHER_TIMEOUT_MS = 1000;

/**
 * With `worker_threads` = 1 every view is the process' own snapshot, taken synchronously. With
 * more, the first process asks each worker for its snapshot and sums them; a worker asked for
 * a view (a client's INFO landed on it) asks the first process, which gathers for it. Views are
 * read once a second at most by scrapers and dashboards, so this costs the data path nothing.
 */
export class Group {
  private workers: WorkerChannels | null = null;
  private inWorker = false;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: GroupMessage) => void>();

  constructor(
    private readonly local: (detail: boolean) => Snapshot,
    private readonly applyLocal: (op: GroupOp) => void,
  ) {}

  /** In the first process, once workers are started. */
  attachWorkers(w: WorkerChannels): void {
    this.workers = w;
  }

  /** In a worker process: talk to the first process over process.send. */
  attachParent(): void {
    this.inWorker = true;
    process.on("message", (m: GroupMessage) => this.onParentMessage(m));
  }

  /** Every process' snapshot, this one's first when it is the first process (see takeSnapshot's `detail`). */
  async gather(detail: boolean): Promise<Snapshot[]> {
    if (this.inWorker) {
      const reply = await this.ask((id) => process.send!({ t: "gather", id, detail } satisfies GroupMessage));
      return reply?.t === "gathered" ? reply.snaps : [this.local(detail)];
    }
    const snaps = [this.local(detail)];
    if (this.workers === null) return snaps;
    const w = this.workers;
    const replies = await Promise.all(w.ids().map((worker) => this.ask((id) => w.send(worker, { t: "snap", id, detail }))));
    for (const r of replies) if (r?.t === "snapped") snaps.push(r.snap);
    return snaps;
  }

  /** Applies `op` here and in every other process of the group. */
  apply(op: GroupOp): void {
    this.applyLocal(op);
    if (this.inWorker) process.send!({ t: "apply", op } satisfies GroupMessage);
    else this.broadcast(op, -1);
  }

  /** In the first process: a message from worker `from`. */
  onWorkerMessage(from: number, m: GroupMessage): void {
    switch (m.t) {
      case "snapped":
        this.waiting.get(m.id)?.(m);
        return;
      case "gather":
        void this.gather(m.detail).then((snaps) => this.workers?.send(from, { t: "gathered", id: m.id, snaps }));
        return;
      case "apply":
        this.applyLocal(m.op);
        this.broadcast(m.op, from);
        return;
    }
  }

  private onParentMessage(m: GroupMessage): void {
    switch (m.t) {
      case "snap":
        process.send!({ t: "snapped", id: m.id, snap: this.local(m.detail) } satisfies GroupMessage);
        return;
      case "gathered":
        this.waiting.get(m.id)?.(m);
        return;
      case "apply":
        this.applyLocal(m.op);
        return;
    }
  }

  private broadcast(op: GroupOp, except: number): void {
    if (this.workers === null) return;
    for (const id of this.workers.ids()) if (id !== except) this.workers.send(id, { t: "apply", op });
  }

  /** Sends a request made with a fresh id; resolves with the answer, or null after the timeout. */
  private ask(send: (id: number) => void): Promise<GroupMessage | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting.delete(id); resolve(null); }, GATHER_TIMEOUT_MS);
      this.waiting.set(id, (m) => { clearTimeout(timer); this.waiting.delete(id); resolve(m); });
      try {
        send(id);
      } catch {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(null);
      }
    });
  }
}
