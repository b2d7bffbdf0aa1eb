/**
 * The pool's requests waiting for a worker: one FIFO (request-queue.ts) for
 * requests without an affinity, and one per slot for a sticky app's
 * (worker-slots.ts), so that clients whose worker is busy hold up only each
 * other, never the clients of a worker with room.
 */
import type { Exchange } from './exchange.js';
import { RequestQueue } from './request-queue.js';

export class WaitingRequests {
  /**
   * Every queue, the common one (requests without an affinity) first, then one per slot as sticky
   * requests come for it. Kept, not made for each look: drain() goes through them after every answer.
   */
  readonly queues: RequestQueue[] = [new RequestQueue()];

  constructor(
    /** The pool's target size: the slots a sticky request's affinity is taken modulo. */
    private slots: number,
  ) {}

  get length(): number {
    let n = 0;
    for (const q of this.queues) n += q.length;
    return n;
  }

  /** The slot a sticky request's affinity maps to. */
  slotOf(affinity: number): number {
    return affinity % this.slots;
  }

  /** The queue `x` waits in. */
  queueOf(x: Exchange): RequestQueue {
    if (x.affinity === undefined) return this.queues[0]!;
    const at = 1 + this.slotOf(x.affinity);
    while (this.queues.length <= at) this.queues.push(new RequestQueue());
    return this.queues[at]!;
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

  /** Empties every queue: the requests, oldest first. */
  takeAll(): Exchange[] {
    return this.queues.flatMap((q) => q.takeAll()).sort((a, b) => a.queuedAt - b.queuedAt);
  }

  /** The pool's target size changed: a sticky app's requests wait for the slots they now map to. */
  setSlots(n: number): void {
    const sticky = this.queues.splice(1).flatMap((q) => q.takeAll()).sort((a, b) => a.queuedAt - b.queuedAt);
    this.slots = n;
    for (const x of sticky) this.push(x);
  }
}
