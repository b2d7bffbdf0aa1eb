/**
 * A supervised pool of Python workers for one application.
 *
 * Dispatch: an idle worker first. When none is idle a request may wait on a
 * busy worker's stream (up to PIPELINE_DEPTH requests in all) if that
 * worker's running request started less than SHORT_MS ago, so frames travel
 * in batches under load. If the running request then takes longer than
 * RESCUE_MS, the ones behind it are revoked and sent elsewhere, so nothing
 * stays queued behind a long-running request. Otherwise a request waits in
 * the pool's bounded queue (503 when full or past the queue timeout).
 *
 * Supervision is a reconciliation loop (gunicorn's arbiter): events only
 * record what happened; `reconcile()` reaps, kills the hung and moves the pool
 * toward its target size. A worker that fails to import the app at start
 * stops the server; later boot failures are retried with backoff.
 */
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Exchange } from './exchange.js';
import { WorkerProcess, type WorkerSpawnOptions } from './worker-process.js';

export interface PoolOptions {
  spawn: WorkerSpawnOptions;
  workers: number;
  /** Seconds a request may run before its worker is killed (0: no limit). */
  timeout: number;
  queueSize: number;
  /** Seconds a request may wait for a worker (0: no limit). */
  queueTimeout: number;
}

const TICK_MS = 25;
/**
 * Requests one worker may hold at once. Deeper queues mean fewer wake-ups
 * and system calls per request on both sides (hello world on 2 workers:
 * ~6k req/s at 1, ~15k at 4, ~19k at 16); see README "Performance".
 */
const PIPELINE_DEPTH = 16;
/** A busy worker is topped up to PIPELINE_DEPTH once it holds this few: one write per batch, not per request. */
const REFILL_AT = PIPELINE_DEPTH / 2;
/** A busy worker takes more only if its running request started less than this long ago (ms). */
const SHORT_MS = 5;
/** Requests queued behind one running longer than this (ms) are taken back and sent elsewhere. */
const RESCUE_MS = 50;
const KILL_GRACE_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

export class WorkerPool {
  readonly workers: WorkerProcess[] = [];
  private queue: Exchange[] = [];
  private queueHead = 0;
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private stopping = false;
  private bootFailures = 0;
  private respawnAt = 0;
  private startWaiter: { resolve(): void; reject(err: Error): void } | null = null;

  constructor(
    private readonly opts: PoolOptions,
    private readonly logger: Logger,
  ) {}

  /** Spawns the workers; resolves when all have imported the app, rejects if one cannot. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.startWaiter = { resolve, reject };
      for (let i = 0; i < this.opts.workers; i++) this.spawnWorker();
      this.timer = setInterval(() => this.reconcile(), TICK_MS);
      this.timer.unref();
    });
  }

  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Requests held by workers or waiting in the queue. */
  get pending(): number {
    let n = this.queued;
    for (const w of this.workers) n += w.inflight.length;
    return n;
  }

  dispatch(x: Exchange): void {
    const now = performance.now();
    if (this.queued === 0) {
      const w = this.pick(now);
      if (w !== null) {
        w.send(x, this.takeId(), now);
        return;
      }
    }
    if (this.queued >= this.opts.queueSize) {
      x.fail(503, 'queue full');
      return;
    }
    x.queuedAt = now;
    this.queue.push(x);
  }

  /** The client went away. */
  cancel(x: Exchange): void {
    if (x.worker !== null) {
      x.worker.cancel(x);
      return;
    }
    const i = this.queue.indexOf(x, this.queueHead);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /**
   * Stops the pool: waits up to `graceMs` for queued and running requests,
   * then asks workers to exit, killing those that do not.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const deadline = performance.now() + graceMs;
    while (this.pending > 0 && performance.now() < deadline) await sleep(50);
    if (this.timer) clearInterval(this.timer);
    for (const x of this.queue.splice(this.queueHead)) x.fail(503, 'server shutting down');
    this.queueHead = 0;
    const alive = this.workers.filter((w) => w.state !== 'dead');
    for (const w of alive) {
      w.closeStream();
      w.kill('SIGTERM');
    }
    const killAt = performance.now() + KILL_GRACE_MS;
    while (alive.some((w) => w.state !== 'dead') && performance.now() < killAt) await sleep(20);
    for (const w of alive) w.kill('SIGKILL');
    while (alive.some((w) => w.state !== 'dead')) await sleep(10);
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  private pick(now: number): WorkerProcess | null {
    let best: WorkerProcess | null = null;
    for (const w of this.workers) {
      if (w.state !== 'ready') continue;
      const n = w.inflight.length;
      if (n === 0) return w;
      if (n <= REFILL_AT && now - w.headStartedAt < SHORT_MS && (best === null || n < best.inflight.length)) best = w;
    }
    return best;
  }

  private drain(): void {
    if (this.queued === 0) return;
    const now = performance.now();
    while (this.queueHead < this.queue.length) {
      const w = this.pick(now);
      if (w === null) break;
      do {
        const x = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as Exchange;
        w.send(x, this.takeId(), now);
      } while (this.queueHead < this.queue.length && w.inflight.length < PIPELINE_DEPTH);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Puts requests that never started back at the head of the queue, in order. */
  private requeue(xs: Exchange[]): void {
    if (xs.length === 0) return;
    this.queue = [...xs, ...this.queue.slice(this.queueHead)];
    this.queueHead = 0;
  }

  private spawnWorker(): void {
    const w = new WorkerProcess(this.opts.spawn, this.workerEvents, this.logger);
    this.workers.push(w);
    this.logger.debug(`booting worker with pid ${w.pid}`);
  }

  private readonly workerEvents = {
    ready: (w: WorkerProcess) => {
      this.logger.info(`Booting worker with pid: ${w.pid}`);
      if (!this.started && this.workers.every((o) => o.state === 'ready')) {
        this.started = true;
        this.startWaiter?.resolve();
        this.startWaiter = null;
      }
      this.drain();
    },
    bootError: (w: WorkerProcess, traceback: string) => {
      w.state = 'dead';
      if (!this.started) {
        this.failStart(new GatehouseError('GH_ERR_APP_IMPORT', `cannot load the application: ${lastLine(traceback)}`, traceback));
        return;
      }
      this.logger.error(`worker ${w.pid} failed to boot; retrying with backoff:\n${traceback.trimEnd()}`);
    },
    done: () => {
      this.bootFailures = 0;
      this.drain();
    },
    revoked: (_w: WorkerProcess, x: Exchange) => {
      this.requeue([x]);
      this.drain();
    },
    closed: (w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null) => {
      if (!this.forget(w)) return;
      const lost = w.takeAll();
      if (!this.stopping && w.retiredFor === null) {
        const cause = signal ? `signal ${signal}${signal === 'SIGKILL' ? ' (killed: out of memory?)' : ''}` : `exit code ${code}`;
        this.logger.error(`Worker (pid:${w.pid}) died: ${cause}`);
        // Dying before or right after boot counts toward the respawn backoff.
        if (w.readyAt === 0 || performance.now() - w.readyAt < 1000) this.bootFailures++;
      }
      if (!this.started && !this.stopping && w.readyAt === 0) {
        this.failStart(
          new GatehouseError('GH_ERR_WORKER_BOOT', `worker ${w.pid} exited (${code ?? signal}) before loading the application; its output is above`),
        );
      }
      // A worker that exited by itself (code 0) finished its request and handed the rest back.
      if (code !== 0) lost.shift()?.fail(502, 'worker died');
      this.requeue(lost);
      this.reconcile();
    },
    spawnError: (w: WorkerProcess, err: Error) => {
      w.state = 'dead';
      if (!this.forget(w)) return;
      this.bootFailures++;
      const error = new GatehouseError(
        'GH_ERR_PYTHON',
        `cannot start the Python interpreter ${JSON.stringify(this.opts.spawn.python)}: ${(err as NodeJS.ErrnoException).code ?? err.message} (set --python or --venv)`,
      );
      if (this.startWaiter) this.failStart(error);
      else this.logger.error(error.message);
    },
  };

  /** Removes a worker from the pool; false if it was already gone. */
  private forget(w: WorkerProcess): boolean {
    const i = this.workers.indexOf(w);
    if (i < 0) return false;
    this.workers.splice(i, 1);
    return true;
  }

  /** The first failure while booting decides why start() fails. */
  private failStart(error: GatehouseError): void {
    this.startWaiter?.reject(error);
    this.startWaiter = null;
  }

  /** Moves the pool toward its target: fail stale queued requests, kill the hung, replace the dead. */
  private reconcile(): void {
    if (this.stopping) return;
    const now = performance.now();
    const { timeout, queueTimeout } = this.opts;
    if (queueTimeout > 0) {
      while (this.queued > 0 && now - this.queue[this.queueHead]!.queuedAt > queueTimeout * 1000) {
        const x = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as Exchange;
        x.fail(503, `waited more than ${queueTimeout}s for a worker`);
      }
    }
    for (const w of this.workers) {
      if (w.inflight.length > 1 && now - w.headStartedAt > RESCUE_MS) w.revokeQueued();
    }
    if (timeout > 0) {
      for (const w of this.workers) {
        if (w.state !== 'ready' || w.inflight.length === 0 || now - w.headStartedAt < timeout * 1000) continue;
        const hung = w.inflight[0]!;
        this.logger.error(
          `Worker (pid:${w.pid}) timed out after ${((now - w.headStartedAt) / 1000).toFixed(1)}s on ${hung.label}; killing it`,
        );
        w.retire('timeout');
        const lost = w.takeAll();
        lost.shift()!.fail(504, 'worker timeout');
        this.requeue(lost);
        w.kill('SIGABRT'); // the worker dumps its stack to the error log, then dies
        setTimeout(() => w.kill('SIGKILL'), KILL_GRACE_MS).unref();
      }
    }
    const live = this.workers.filter((w) => w.state === 'booting' || w.state === 'ready').length;
    if (live < this.opts.workers && this.started) {
      const backoff = this.bootFailures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.bootFailures - 1));
      if (this.respawnAt === 0) this.respawnAt = now + backoff;
      if (now >= this.respawnAt) {
        this.respawnAt = 0;
        for (let i = live; i < this.opts.workers; i++) this.spawnWorker();
      }
    }
    this.drain();
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
