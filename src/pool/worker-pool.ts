/**
 * A supervised pool of Python workers for one application.
 *
 * Dispatch: an idle worker first. When none is idle a sync worker may hold
 * up to PIPELINE_DEPTH requests if its running request started less than
 * SHORT_MS ago, so frames travel in batches under load. If the running
 * request then takes longer than RESCUE_MS, the ones behind it are revoked
 * and sent elsewhere, so nothing stays queued behind a long request. A
 * threaded worker gets at most as many requests as it has threads. Otherwise
 * a request waits in the pool's bounded queue (503 when full or too long).
 *
 * Supervision is a reconciliation loop (gunicorn's arbiter): events only
 * record what happened; `reconcile()` kills the hung, replaces the dead and
 * the retired, and moves the pool toward its target size. A worker that
 * fails to import the app at start stops the server; later boot failures are
 * retried with backoff. A reload boots a new generation first and retires the
 * old one only once every new worker has imported the app.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Exchange } from './exchange.js';
import { RequestQueue } from './request-queue.js';
import { TemplateProcess } from './template-process.js';
import { WorkerProcess, type WorkerSpawnOptions } from './worker-process.js';

export interface PoolOptions {
  spawn: WorkerSpawnOptions;
  workers: number;
  /** Requests a worker runs at once (1: a sync worker). */
  threads: number;
  /** Seconds a request may run before its worker is killed (0: no limit). */
  timeout: number;
  queueSize: number;
  /** Seconds a request may wait for a worker (0: no limit). */
  queueTimeout: number;
  /** Replace a worker after this many requests, plus 0..maxRequestsJitter (0: never). */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Replace a worker whose resident memory exceeds this many bytes (0: no limit). */
  maxRss: number;
  /** Import the app once in a template process and fork the workers from it. */
  preload: boolean;
}

const TICK_MS = 25;
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
const KILL_GRACE_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const RSS_CHECK_MS = 1000;

export class WorkerPool {
  readonly workers: WorkerProcess[] = [];
  /** Workers wanted (changed by SIGTTIN / SIGTTOU). */
  target: number;
  private readonly queue = new RequestQueue();
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private stopping = false;
  private bootFailures = 0;
  private respawnAt = 0;
  private rssCheckedAt = 0;
  private startWaiter: { resolve(): void; reject(err: Error): void } | null = null;
  /** Workers spawned now belong to this generation; a reload starts the next. */
  private generation = 0;
  /** The generation a reload is booting, while it does. */
  private reloading: number | null = null;
  private reloadAgain = false;
  /** --preload: the template new workers are forked from, and older ones still parents of live workers. */
  private template: TemplateProcess | null = null;
  private oldTemplates: TemplateProcess[] = [];
  private readonly capacity: number;
  private readonly refillAt: number;

  constructor(
    private readonly opts: PoolOptions,
    private readonly logger: Logger,
  ) {
    this.target = opts.workers;
    this.capacity = opts.threads > 1 ? opts.threads : PIPELINE_DEPTH;
    this.refillAt = opts.threads > 1 ? opts.threads - 1 : REFILL_AT;
  }

  /** Spawns the workers; resolves when all have imported the app, rejects if one cannot. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.startWaiter = { resolve, reject };
      if (this.opts.preload) this.template = this.startTemplate();
      else for (let i = 0; i < this.target; i++) this.spawnWorker();
      this.timer = setInterval(() => this.reconcile(), TICK_MS);
      this.timer.unref();
    });
  }

  /** Requests held by workers or waiting in the queue. */
  get pending(): number {
    let n = this.queue.length;
    for (const w of this.workers) n += w.inflight.length;
    return n;
  }

  dispatch(x: Exchange): void {
    const now = performance.now();
    if (this.queue.length === 0) {
      const w = this.pick(now);
      if (w !== null) {
        w.send(x, this.takeId(), now);
        return;
      }
    }
    if (this.queue.length >= this.opts.queueSize) {
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
    this.queue.remove(x);
  }

  /**
   * Graceful reload: boot a new generation of workers (importing the code as
   * it is now on disk); once all of them are ready, retire the old ones after
   * their current requests. If the new code fails to import, the old workers
   * keep serving and the traceback is logged.
   */
  reload(reason: string): void {
    if (!this.started || this.stopping) return;
    if (this.reloading !== null) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = ++this.generation;
    this.logger.info(`Reloading (${reason}): booting ${this.target} new worker(s)`);
    if (this.opts.preload) {
      // The new template imports the new code; its workers are forked once it is ready.
      if (this.template) this.oldTemplates.push(this.template);
      this.template = this.startTemplate();
    } else {
      for (let i = 0; i < this.target; i++) this.spawnWorker();
    }
  }

  /** SIGTTIN / SIGTTOU: one worker more or fewer (never fewer than one). */
  resize(delta: 1 | -1): void {
    if (this.stopping || this.target + delta < 1) return;
    this.target += delta;
    this.logger.info(`Number of workers: ${this.target}`);
    if (delta < 0) {
      const newest = this.workers.filter((w) => w.state === 'ready' || w.state === 'booting').pop();
      if (newest) this.retire(newest, 'fewer workers');
    }
    this.reconcile();
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
    for (const x of this.queue.takeAll()) x.fail(503, 'server shutting down');
    const alive = this.workers.filter((w) => w.state !== 'dead');
    for (const w of alive) {
      w.closeStream();
      w.kill('SIGTERM');
    }
    const killAt = performance.now() + KILL_GRACE_MS;
    while (alive.some((w) => w.state !== 'dead') && performance.now() < killAt) await sleep(20);
    for (const w of alive) w.kill('SIGKILL');
    while (alive.some((w) => w.state !== 'dead')) await sleep(10);
    for (const t of [this.template, ...this.oldTemplates]) t?.stop();
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  private pick(now: number): WorkerProcess | null {
    let best: WorkerProcess | null = null;
    const sync = this.opts.threads === 1;
    for (const w of this.workers) {
      if (w.state !== 'ready') continue;
      const n = w.inflight.length;
      if (n >= w.requestLimit - w.requests) continue; // --max-requests: no more than it may still serve
      if (n === 0) return w;
      if (n > this.refillAt || (sync && now - w.headStartedAt >= SHORT_MS)) continue;
      if (best === null || n < best.inflight.length) best = w;
    }
    return best;
  }

  private drain(): void {
    if (this.queue.length === 0) return;
    const now = performance.now();
    while (this.queue.length > 0) {
      const w = this.pick(now);
      if (w === null) break;
      do w.send(this.queue.shift()!, this.takeId(), now);
      while (this.queue.length > 0 && w.inflight.length < Math.min(this.capacity, w.requestLimit - w.requests));
    }
  }

  /** Starts a worker: a new process, or with --preload a fork of the ready template (else nothing yet). */
  private spawnWorker(): void {
    if (this.opts.preload && this.template?.state !== 'ready') return;
    const { maxRequests, maxRequestsJitter } = this.opts;
    const limit = maxRequests > 0 ? maxRequests + randomInt(maxRequestsJitter + 1) : Infinity;
    const w = new WorkerProcess(this.workerEvents, this.logger, this.generation, limit);
    this.workers.push(w);
    if (this.template) {
      this.template.fork(w);
      this.logger.debug(`forking a worker from template process ${this.template.pid}`);
    } else {
      w.spawn(this.opts.spawn);
      this.logger.debug(`booting worker with pid ${w.pid}`);
    }
  }

  private startTemplate(): TemplateProcess {
    return new TemplateProcess(this.opts.spawn, this.generation, this.templateEvents, this.logger);
  }

  /** An old template whose workers are all gone is stopped (stopping it earlier would kill them). */
  private stopIdleTemplates(): void {
    this.oldTemplates = this.oldTemplates.filter((t) => {
      if (t.forked.size > 0 && t.state !== 'dead') return true;
      t.stop();
      return false;
    });
  }

  private readonly templateEvents = {
    ready: (t: TemplateProcess) => {
      this.logger.info(`Application preloaded in template process ${t.pid}`);
      if (t === this.template) for (let i = 0; i < this.target; i++) this.spawnWorker();
    },
    bootError: (t: TemplateProcess, traceback: string) => {
      t.stop();
      // A failed reload goes back to the previous template; any other failure counts toward the backoff.
      if (t.generation === this.reloading) this.template = this.oldTemplates.pop() ?? null;
      else if (this.started) this.bootFailures++;
      this.bootFailed(t.generation, traceback, 'the template process');
    },
    closed: (t: TemplateProcess, code: number | null, signal: NodeJS.Signals | null) => {
      if (t.stopped || this.stopping) return;
      this.logger.error(`Template process (pid:${t.pid}) died (${signal ?? `exit code ${code}`}); its workers go with it`);
      if (!this.started) {
        this.failStart(new GatehouseError('GH_ERR_WORKER_BOOT', `the template process exited (${code ?? signal}) before loading the application`));
      }
    },
  };

  /**
   * Takes a worker out of service without losing a request: it gets no new
   * ones, those queued on it and not started come back, and its stream is
   * closed (it then exits by itself) once its running requests are answered.
   */
  private retire(w: WorkerProcess, reason: string): void {
    if (w.state === 'retiring' || w.state === 'dead') return;
    w.retire(reason);
    if (this.opts.threads === 1) w.revokeQueued();
    this.closeIfIdle(w);
  }

  private closeIfIdle(w: WorkerProcess): void {
    if (w.state === 'retiring' && w.inflight.length === 0) w.closeStream();
  }

  /** Removes a worker from the pool; false if it was already gone. */
  private forget(w: WorkerProcess): boolean {
    const i = this.workers.indexOf(w);
    if (i < 0) return false;
    this.workers.splice(i, 1);
    return true;
  }

  /** The app did not import: at start the server stops, in a reload the old workers stay, else we retry. */
  private bootFailed(generation: number, traceback: string, who: string): void {
    if (!this.started) {
      this.failStart(new GatehouseError('GH_ERR_APP_IMPORT', `cannot load the application: ${lastLine(traceback)}`, traceback));
    } else if (generation === this.reloading) {
      this.abortReload(`the new code does not import:\n${traceback.trimEnd()}`);
    } else {
      this.logger.error(`${who} failed to boot; retrying with backoff:\n${traceback.trimEnd()}`);
    }
  }

  /** The first failure while booting decides why start() fails. */
  private failStart(error: GatehouseError): void {
    this.startWaiter?.reject(error);
    this.startWaiter = null;
  }

  /** A worker of the generation being reloaded failed to boot: keep the old generation. */
  private abortReload(why: string): void {
    const failed = this.reloading;
    this.reloading = null;
    this.reloadAgain = false;
    this.logger.error(`Reload failed, the running workers keep serving: ${why}`);
    for (const w of this.workers.filter((o) => o.generation === failed)) {
      w.retire('failed reload');
      w.kill('SIGKILL');
    }
  }

  private readonly workerEvents = {
    ready: (w: WorkerProcess) => {
      this.logger.info(`Booting worker with pid: ${w.pid}`);
      if (!this.started && this.workers.every((o) => o.state === 'ready')) {
        this.started = true;
        this.startWaiter?.resolve();
        this.startWaiter = null;
      }
      const fresh = this.workers.filter((o) => o.generation === this.reloading);
      if (this.reloading !== null && fresh.length > 0 && fresh.every((o) => o.state === 'ready')) {
        const generation = this.reloading;
        this.reloading = null;
        for (const old of this.workers.filter((o) => o.generation < generation)) this.retire(old, 'reload');
        this.logger.info(`Reload complete: ${fresh.length} new worker(s) serving`);
        if (this.reloadAgain) {
          this.reloadAgain = false;
          this.reload('changed again during the reload');
        }
      }
      this.drain();
    },
    bootError: (w: WorkerProcess, traceback: string) => {
      w.state = 'dead';
      if (w.retiredFor !== null) return; // a failed reload's sibling, already reported
      this.bootFailed(w.generation, traceback, `worker ${w.pid}`);
    },
    done: (w: WorkerProcess) => {
      this.bootFailures = 0;
      if (w.requests >= w.requestLimit && w.state === 'ready') {
        this.logger.info(`Worker (pid:${w.pid}) served ${w.requests} requests: replacing it (--max-requests)`);
        this.retire(w, 'max-requests');
      }
      this.closeIfIdle(w);
      this.drain();
    },
    revoked: (w: WorkerProcess, x: Exchange) => {
      this.queue.unshift([x]);
      this.closeIfIdle(w);
      this.drain();
    },
    closed: (w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null) => {
      if (!this.forget(w)) return;
      const lost = w.takeAll();
      if (this.stopping) {
        // nothing to report
      } else if (w.retiredFor !== null) {
        this.logger.info(`Worker (pid:${w.pid}) exited (${w.retiredFor})`);
      } else {
        const cause = signal ? `signal ${signal}${signal === 'SIGKILL' ? ' (killed: out of memory?)' : ''}` : `exit code ${code}`;
        this.logger.error(`Worker (pid:${w.pid}) died: ${cause}`);
        // Dying before or right after boot counts toward the respawn backoff.
        if (w.readyAt === 0 || performance.now() - w.readyAt < 1000) this.bootFailures++;
        if (w.readyAt === 0 && w.generation === this.reloading) this.abortReload(`worker ${w.pid} died while booting (${cause})`);
      }
      if (!this.started && !this.stopping && w.readyAt === 0) {
        this.failStart(
          new GatehouseError('GH_ERR_WORKER_BOOT', `worker ${w.pid} exited (${code ?? signal}) before loading the application; its output is above`),
        );
      }
      // Lost with the worker: what it was running (a sync worker runs one; the rest never started).
      if (code !== 0) for (const x of lost.splice(0, this.opts.threads)) x.fail(502, 'worker died');
      this.queue.unshift(lost);
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

  /** Moves the pool toward its target: fail stale queued requests, kill the hung, replace the dead and retired. */
  private reconcile(): void {
    if (this.stopping) return;
    const now = performance.now();
    this.expireQueued(now);
    if (this.opts.threads === 1) {
      for (const w of this.workers) if (w.inflight.length > 1 && now - w.headStartedAt > RESCUE_MS) w.revokeQueued();
    }
    if (this.opts.timeout > 0) this.killHung(now);
    if (this.opts.maxRss > 0 && now - this.rssCheckedAt >= RSS_CHECK_MS) {
      this.rssCheckedAt = now;
      this.retireOversized();
    }
    this.stopIdleTemplates();
    const live = this.workers.filter((w) => w.state === 'booting' || w.state === 'ready').length;
    if (live < this.target && this.started) {
      const backoff = this.bootFailures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.bootFailures - 1));
      if (this.respawnAt === 0) this.respawnAt = now + backoff;
      if (now >= this.respawnAt) {
        this.respawnAt = 0;
        if (this.template?.state === 'dead') this.template = this.startTemplate();
        for (let i = live; i < this.target; i++) this.spawnWorker();
      }
    }
    this.drain();
  }

  private expireQueued(now: number): void {
    const { queueTimeout } = this.opts;
    if (queueTimeout <= 0) return;
    while (this.queue.length > 0 && now - this.queue.peek()!.queuedAt > queueTimeout * 1000) {
      this.queue.shift()!.fail(503, `waited more than ${queueTimeout}s for a worker`);
    }
  }

  /** A request past --timeout: 504 for it, SIGABRT (Python dumps its stack to the log), then SIGKILL. */
  private killHung(now: number): void {
    const limit = this.opts.timeout * 1000;
    for (const w of this.workers) {
      if (w.state === 'dead' || w.retiredFor === 'timeout' || w.inflight.length === 0) continue;
      // A sync worker runs its oldest request; a threaded one runs them all, the oldest first.
      const startedAt = this.opts.threads === 1 ? w.headStartedAt : w.inflight[0]!.sentAt;
      if (now - startedAt < limit) continue;
      const hung = w.inflight[0]!;
      this.logger.error(`Worker (pid:${w.pid}) timed out after ${((now - startedAt) / 1000).toFixed(1)}s on ${hung.label}; killing it`);
      w.retire('timeout');
      const lost = w.takeAll();
      lost.shift()!.fail(504, 'worker timeout');
      // The other requests of a threaded worker were running too.
      if (this.opts.threads > 1) for (const x of lost.splice(0)) x.fail(502, 'its worker was killed after a timeout');
      this.queue.unshift(lost);
      w.kill('SIGABRT');
      setTimeout(() => w.kill('SIGKILL'), KILL_GRACE_MS).unref();
    }
  }

  private retireOversized(): void {
    for (const w of this.workers) {
      if (w.state !== 'ready') continue;
      const rss = residentBytes(w.pid);
      if (rss <= this.opts.maxRss) continue;
      this.logger.warning(
        `Worker (pid:${w.pid}) uses ${Math.round(rss / 2 ** 20)} MB, over --max-rss ${Math.round(this.opts.maxRss / 2 ** 20)}: replacing it after its current request`,
      );
      this.retire(w, 'max-rss');
    }
  }
}

/** Resident memory of a process (VmRSS), 0 if it is gone. */
function residentBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
