/**
 * The pool's requests waiting for a worker: one FIFO (request-queue.ts) for
 * requests without an affinity, and one per slot for a sticky app's
 * (worker-slots.ts), so that clients whose worker is busy hold up only each
 * other, never the clients of a worker with room.
 */
import type { Exchange } from './exchange.js';
import { RequestQueue } from './request-queue.js';

export class WaitingRequests {
  /** Requests without an affinity. */
  readonly common = new RequestQueue();
  /** A sticky app's requests, by slot: their affinity modulo `slots`. */
  private bySlot: RequestQueue[] = [];

  constructor(private slots: number) {}

  get length(): number {
    let n = this.common.length;
    for (const q of this.bySlot) n += q.length;
    return n;
  }

  /** The queue `x` waits in. */
  queueOf(x: Exchange): RequestQueue {
    if (x.affinity === undefined) return this.common;
    const slot = x.affinity % this.slots;
    while (this.bySlot.length <= slot) this.bySlot.push(new RequestQueue());
    return this.bySlot[slot]!;
  }

  push(x: Exchange): void {
    this.queueOf(x).push(x);
  }

  /** Puts requests that never started back in front of their queues, in their order. */
  unshift(xs: readonly Exchange[]): void {
    const groups = new Map<RequestQueue, Exchange[]>();
    for (const x of xs) {
      const q = this.queueOf(x);
      const group = groups.get(q);
      if (group === undefined) groups.set(q, [x]);
      else group.push(x);
    }
    for (const [q, group] of groups) q.unshift(group);
  }

  /** Removes a request (its client went away); false if it was not waiting. */
  remove(x: Exchange): boolean {
    return this.queueOf(x).remove(x);
  }

  /** The queues with requests in them, the common one first. */
  *nonEmpty(): IterableIterator<RequestQueue> {
    if (this.common.length > 0) yield this.common;
    for (const q of this.bySlot) if (q.length > 0) yield q;
  }

  /** Empties every queue: the requests, oldest first. */
  takeAll(): Exchange[] {
    const all = [this.common, ...this.bySlot].flatMap((q) => q.takeAll());
    return all.sort((a, b) => a.queuedAt - b.queuedAt);
  }

  /** The pool's target size changed: a sticky app's requests wait for the slots they now map to. */
  setSlots(n: number): void {
    const sticky = this.bySlot.flatMap((q) => q.takeAll()).sort((a, b) => a.queuedAt - b.queuedAt);
    this.slots = n;
    this.bySlot = [];
    for (const x of sticky) this.push(x);
  }
}
