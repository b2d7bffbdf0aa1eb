/**
 * Which worker gets which request.
 *
 * An idle worker first. When none is idle a sync worker may hold up to
 * PIPELINE_DEPTH requests if its running request started less than SHORT_MS
 * ago, so frames travel in batches under load. If the running request then
 * takes longer than RESCUE_MS, the ones behind it are revoked and sent
 * elsewhere, so nothing stays queued behind a long request. A threaded worker
 * gets at most as many requests as it has threads, an ASGI worker at most
 * --max-concurrency, and none while its heartbeats say its event loop is
 * blocked. Otherwise a request waits in a bounded queue (503 when full or
 * waiting too long). A request with an affinity (a sticky app's) goes only
 * to the worker in its slot (worker-slots.ts), and waits for it when it is
 * busy or booting, as nginx's `ip_hash` waits on its one upstream: another
 * worker would not know the client's session. Only when no worker holds
 * the slot (it died and its replacement is not spawned yet) does it go to
 * any other. Each slot's requests wait in a queue of their own
 * (waiting-requests.ts), so they hold up no other slot's.
 *
 * The scheduler only reads the worker list; the supervisor adds and removes
 * workers and tells the scheduler when requests come back or room appears.
 */
import type { Exchange } from './exchange.js';
import { lateAfter } from './heartbeat.js';
import { WaitingRequests } from './waiting-requests.js';
import type { WorkerProcess } from './worker-process.js';

export interface SchedulerOptions {
  /** Requests a worker runs at once (1: a sync worker). */
  threads: number;
  /** An ASGI worker starts every request it is sent at once, so it is never sent more than `threads`, even 1. */
  interface: 'auto' | 'wsgi' | 'asgi';
  queueSize: number;
  /** Seconds a request may wait for a worker (0: no limit). */
  queueTimeout: number;
  /** --timeout in seconds: an ASGI worker silent past its heartbeat (heartbeat.ts) is sent nothing. */
  timeout: number;
  /** The pool's size at start: sticky requests are spread over that many slots (setSlots() after a resize). */
  workers: number;
}

/**
 * Requests one sync worker may hold at once. Deeper queues mean fewer
 * wake-ups and system calls per request on both sides (hello world on 2
 * workers: ~6k req/s at 1, ~15k at 4, ~19k at 16).
 */
const PIPELINE_DEPTH = 16;
/** A busy sync worker is topped up to PIPELINE_DEPTH once it holds this few: one write per batch. */
const REFILL_AT = PIPELINE_DEPTH / 2;
/** A busy sync worker takes more only if its running request started less than this long ago (ms). */
const SHORT_MS = 5;
/** Requests queued behind one running longer than this (ms) are taken back and sent elsewhere. */
const RESCUE_MS = 50;

export class Scheduler {
  private nextId = 1;
  private sync: boolean;
  private capacity: number;
  private refillAt: number;
  /** Heartbeat silence (ms) after which a worker is passed over: its event loop is blocked. */
  private lateMs = Infinity;
  private readonly waiting: WaitingRequests;

  constructor(
    /** The pool's workers, kept by the supervisor. */
    private readonly workers: readonly WorkerProcess[],
    private readonly opts: SchedulerOptions,
  ) {
    this.sync = true;
    this.capacity = this.refillAt = 0;
    this.waiting = new WaitingRequests(opts.workers);
    this.setConcurrency(opts.threads, opts.interface === 'asgi');
  }

  /** Requests a worker runs at once: 1 (sync: pipelined), its threads, or an ASGI worker's --max-concurrency. */
  setConcurrency(n: number, asgi: boolean): void {
    this.sync = n === 1 && !asgi;
    this.capacity = this.sync ? PIPELINE_DEPTH : n;
    this.refillAt = this.sync ? REFILL_AT : n - 1;
    this.lateMs = asgi ? lateAfter(this.opts.timeout * 1000) : Infinity;
  }

  /** The pool's target size changed (sticky dispatch maps clients over that many slots). */
  setSlots(n: number): void {
    this.waiting.setSlots(n);
  }

  /** Requests held by workers or waiting in the queue. */
  get pending(): number {
    let n = this.waiting.length;
    for (const w of this.workers) n += w.inflight.length;
    return n;
  }

  dispatch(x: Exchange): void {
    const now = performance.now();
    // From now on it waits for a worker: also if a worker gives it back unstarted (requeue()).
    x.queuedAt = now;
    const queue = this.waiting.queueOf(x);
    if (queue.length === 0) {
      const w = this.pickFor(x, now);
      if (w !== null) {
        w.send(x, this.takeId(), now);
        return;
      }
    }
    if (this.waiting.length >= this.opts.queueSize) {
      x.fail(503, 'queue full');
      return;
    }
    queue.push(x);
  }

  /** The client went away. */
  cancel(x: Exchange): void {
    if (x.worker !== null) {
      x.worker.cancel(x);
      return;
    }
    this.waiting.remove(x);
  }

  /** Requests taken back from a worker before they started: they go first, in their order. */
  requeue(xs: Exchange[]): void {
    this.waiting.unshift(xs);
  }

  /** Hands waiting requests to workers with room. */
  drain(): void {
    if (this.waiting.length === 0) return;
    const now = performance.now();
    for (const queue of this.waiting.queues) {
      while (queue.length > 0) {
        const w = this.pickFor(queue.peek()!, now);
        if (w === null) break;
        // A sync worker is filled in one batch; the others take one each, so each request goes to the least busy.
        do w.send(queue.shift()!, this.takeId(), now);
        while (this.sync && queue.length > 0 && w.inflight.length < Math.min(this.capacity, w.requestLimit - w.requests));
      }
    }
  }

  /** A pass of the supervisor's loop: fail requests that waited too long, rescue those stuck behind a long one. */
  tick(now: number): void {
    this.expireQueued(now);
    if (!this.sync) return;
    for (const w of this.workers) if (w.inflight.length > 1 && now - w.headStartedAt > RESCUE_MS) w.revokeQueued();
  }

  /** Fails every waiting request (the pool is stopping). */
  failWaiting(reason: string): void {
    for (const x of this.waiting.takeAll()) x.fail(503, reason);
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  private pick(now: number): WorkerProcess | null {
    let best: WorkerProcess | null = null;
    for (const w of this.workers) {
      if (!this.takes(w, now)) continue;
      if (w.inflight.length === 0) return w;
      if (best === null || w.inflight.length < best.inflight.length) best = w;
    }
    return best;
  }

  /**
   * For `x`: with an affinity, the worker in its slot if that one can take it now, none while the
   * slot's worker is busy or booting, any (pick()) when no worker holds the slot; else pick().
   */
  private pickFor(x: Exchange, now: number): WorkerProcess | null {
    if (x.affinity === undefined) return this.pick(now);
    const slot = this.waiting.slotOf(x.affinity);
    let held = false;
    for (const w of this.workers) {
      if (w.slot !== slot || (w.state !== 'ready' && w.state !== 'booting')) continue;
      if (this.takes(w, now)) return w;
      held = true;
    }
    return held ? null : this.pick(now);
  }

  /** Whether `w` may be sent a request now. */
  private takes(w: WorkerProcess, now: number): boolean {
    // A blocked ASGI loop would start nothing: what it was sent would wait, then fail when it is killed.
    if (w.state !== 'ready' || w.hasExited || now - w.beatAt > this.lateMs) return false;
    const n = w.inflight.length;
    if (n >= w.requestLimit - w.requests) return false; // --max-requests: no more than it may still serve
    return n === 0 || (n <= this.refillAt && !(this.sync && now - w.headStartedAt >= SHORT_MS));
  }

  private expireQueued(now: number): void {
    const { queueTimeout } = this.opts;
    if (queueTimeout <= 0) return;
    for (const queue of this.waiting.queues) {
      while (queue.length > 0 && now - queue.peek()!.queuedAt > queueTimeout * 1000) {
        queue.shift()!.fail(503, `waited more than ${queueTimeout}s for a worker`);
      }
    }
  }
}
