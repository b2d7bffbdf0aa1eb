/**
 * Keeps a pool's Python workers alive: gunicorn's arbiter, as a
 * reconciliation loop. Events only record what happened; `reconcile()` kills
 * the hung, replaces the dead and the retired, and moves the pool toward its
 * target size.
 *
 * A worker that cannot import the app is retried with backoff; only when
 * every worker fails at first start does the server stop (first-start.ts).
 * A reload boots a new generation first and retires the old one only once
 * every new worker has imported the app. Workers are recycled after
 * --max-requests; the watchdog (watchdog.ts) kills the hung and retires
 * those past --max-rss; with --preload workers are forked from a template
 * process (preload-templates.ts).
 *
 * Which worker gets which request is the scheduler's business: the
 * supervisor hands it back the requests a worker will not run, and tells it
 * when a worker has room.
 */
import { randomInt } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { freeSlot } from './worker-slots.js';
import type { Logger } from '../log/logger.js';
import { AppInterface, concurrencyIgnored, threadsIgnored, workerLine } from './app-interface.js';
import { BootBackoff } from './boot-backoff.js';
import { bootTimeoutError, importError, reloadFailure } from './boot-errors.js';
import { FirstStart } from './first-start.js';
import { PreloadTemplates } from './preload-templates.js';
import { closeIfIdle, retire, stopAll } from './retirement.js';
import type { TemplateEvents, TemplateProcess } from './template-process.js';
import { Watchdog } from './watchdog.js';
import { WorkerProcess, type WorkerEvents } from './worker-process.js';
import type { Dispatcher, SupervisorOptions } from './supervisor-options.js';

const TICK_MS = 25;

export class Supervisor {
  /** Workers wanted (changed by SIGTTIN / SIGTTOU). */
  target: number;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly firstStart: FirstStart;
  private readonly backoff = new BootBackoff();
  /** Workers spawned now belong to this generation; a reload starts the next. */
  private generation = 0;
  /** The generation a reload is booting, while it does. */
  private reloading: number | null = null;
  private reloadAgain = false;
  private readonly templates: PreloadTemplates | null;
  private readonly watchdog: Watchdog;
  private readonly appInterface: AppInterface;

  constructor(
    /** The pool's workers: the supervisor adds and removes them, the scheduler reads them. */
    private readonly workers: WorkerProcess[],
    private readonly dispatcher: Dispatcher,
    private readonly opts: SupervisorOptions,
    private readonly logger: Logger,
  ) {
    this.target = opts.workers;
    this.firstStart = new FirstStart(workers, (w, error) => this.retrying(`worker ${w.pid}`, error.detail ?? error.message));
    this.templates = opts.preload ? new PreloadTemplates(opts.spawn, this.templateEvents, logger) : null;
    this.appInterface = new AppInterface(opts, (found) => {
      this.logger.info(workerLine(found, opts));
      if (found === 'asgi') this.runAsgi();
      else this.runWsgi();
    });
    if (opts.interface === 'asgi') this.runAsgi();
    else if (opts.interface === 'wsgi') this.runWsgi();
    this.watchdog = new Watchdog(
      opts,
      {
        retire: (w, reason) => this.retire(w, reason),
        requeue: (xs) => dispatcher.requeue(xs),
        bootTimedOut: (w, seconds) => this.bootFailed(w, bootTimeoutError(`worker ${w.pid}`, seconds, opts.timeout)),
        templateTimedOut: (t, seconds) => this.templateFailed(t, bootTimeoutError(`the template process ${t.pid}`, seconds, opts.timeout)),
      },
      logger,
    );
  }

  /** The app is ASGI (given, or found by the first worker): a worker runs --max-concurrency requests at once, and --threads means nothing. */
  private runAsgi(): void {
    if (this.opts.threads > 1) this.logger.warning(threadsIgnored(this.opts.threads));
    this.opts.threads = this.opts.maxConcurrency;
    this.dispatcher.setConcurrency(this.opts.maxConcurrency, true);
  }

  /** The app is WSGI (given, or found): --max-concurrency means nothing. */
  private runWsgi(): void {
    if (this.opts.maxConcurrencyGiven) this.logger.warning(concurrencyIgnored(this.opts.maxConcurrency));
  }

  /** Spawns the workers; resolves once none is still booting and one serves, rejects if all failed. */
  start(): Promise<void> {
    // gunicorn's "Using worker:" line; given as "auto", the interface is known once a worker has loaded the app (below).
    if (this.opts.interface !== 'auto') this.logger.info(workerLine(this.opts.interface, this.opts));
    const started = this.firstStart.begin();
    const failed = this.templates?.start(this.generation) ?? null;
    if (failed !== null) throw failed;
    if (!this.templates) for (let i = 0; i < this.target; i++) this.spawnWorker();
    this.timer = setInterval(() => this.reconcile(), TICK_MS);
    this.timer.unref();
    return started;
  }

  /**
   * Graceful reload: boot a new generation of workers (importing the code as
   * it is now on disk); once all of them are ready, retire the old ones after
   * their current requests. If the new code fails to import, the old workers
   * keep serving and the traceback is logged.
   */
  reload(reason: string): void {
    if (!this.firstStart.done || this.stopping) return;
    if (this.reloading !== null) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = ++this.generation;
    this.logger.info(`Reloading (${reason}): booting ${this.target} new worker(s)`);
    // With --preload the new template imports the new code; its workers are forked once it is ready.
    if (this.templates) {
      const failed = this.templates.replace(this.generation);
      if (failed !== null) this.abortReload(failed.message);
    } else for (let i = 0; i < this.target; i++) this.spawnWorker();
  }

  whenInterfaceKnown(fn: () => void): void {
    this.appInterface.whenKnown(fn);
  }

  /** A worker is ready: its app must speak the pool's interface (a reload may have switched it): else it goes. */
  private adopt(w: WorkerProcess): boolean {
    const mismatch = this.appInterface.check(w.interface, w.pid);
    if (mismatch === null) return true;
    w.retire('wrong interface');
    w.kill('SIGKILL');
    if (w.generation === this.reloading) {
      this.abortReload(mismatch);
    } else {
      // A replacement that imported changed code: retried with backoff, as a boot failure is.
      this.failedToBoot(`worker ${w.pid}`, mismatch);
    }
    return false;
  }

  /** SIGTTIN / SIGTTOU: one worker more or fewer (never fewer than one). */
  resize(delta: 1 | -1): void {
    if (this.stopping || this.target + delta < 1) return;
    this.target += delta;
    this.logger.info(`Number of workers: ${this.target}`);
    if (delta < 0) {
      // The one in the last slot, so that the slots left are those sticky dispatch maps clients over.
      const last = this.workers.filter((w) => w.state === 'ready' || w.state === 'booting').reduce<WorkerProcess | null>((a, w) => (a === null || w.slot >= a.slot ? w : a), null);
      if (last) this.retire(last, 'fewer workers');
    }
    this.reconcile();
  }

  /** The pool is stopping: no more reconciling, reloads or resizing; events are no longer reported. */
  halt(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Asks every worker to exit, kills those that do not within `graceMs` (retirement.ts), then ends the templates. */
  async terminate(graceMs = 0): Promise<void> {
    this.halt();
    await stopAll(this.workers, graceMs);
    this.templates?.stopAll();
  }

  /** Starts a worker: a new process, or with --preload a fork of the ready template (else nothing yet). */
  private spawnWorker(): void {
    const template = this.templates?.current ?? null;
    if (this.templates && template?.state !== 'ready') return;
    const { maxRequests, maxRequestsJitter } = this.opts;
    const limit = maxRequests > 0 ? maxRequests + randomInt(maxRequestsJitter + 1) : Infinity;
    const w = new WorkerProcess(this.workerEvents, this.logger, this.generation, limit);
    w.slot = freeSlot(this.workers, this.generation);
    this.workers.push(w);
    if (template) {
      template.fork(w);
      this.logger.debug(`forking a worker from template process ${template.pid}`);
    } else {
      w.spawn(this.opts.spawn);
      this.logger.debug(`booting worker with pid ${w.pid}`);
    }
  }

  private readonly templateEvents: TemplateEvents = {
    ready: (t) => {
      this.logger.info(`Application preloaded in template process ${t.pid}`);
      if (t === this.templates?.current) for (let i = 0; i < this.target; i++) this.spawnWorker();
    },
    bootError: (t, traceback) => this.templateFailed(t, importError(traceback)),
    closed: (t, code, signal) => {
      if (t.stopped || this.stopping) return;
      this.logger.error(`Template process (pid:${t.pid}) died (${signal ?? `exit code ${code}`}); its workers go with it`);
      if (!this.firstStart.done) {
        this.firstStart.fail(new GatehouseError('GH_ERR_WORKER_BOOT', `the template process exited (${code ?? signal}) before loading the application`));
      }
    },
  };

  /** The template could not load the app. At first start nothing can serve; a failed reload goes back to the previous template. */
  private templateFailed(t: TemplateProcess, error: GatehouseError): void {
    t.stop();
    if (!this.firstStart.done) {
      this.firstStart.fail(error);
    } else if (t.generation === this.reloading) {
      this.templates?.rollBack();
      this.abortReload(reloadFailure(error));
    } else {
      this.failedToBoot('the template process', error.detail ?? error.message);
    }
  }

  /** Takes a worker out of service without losing a request (retirement.ts). */
  private retire(w: WorkerProcess, reason: string): void {
    retire(w, reason, this.opts);
  }

  /** Removes a worker from the pool; false if it was already gone. */
  private forget(w: WorkerProcess): boolean {
    const i = this.workers.indexOf(w);
    if (i < 0) return false;
    this.workers.splice(i, 1);
    return true;
  }

  /**
   * A worker that cannot load the app (it exits, or is killed): a reload's
   * ends the reload; otherwise it is retried with backoff, or, before any
   * worker serves, it is the first start's failure.
   */
  private bootFailed(w: WorkerProcess, error: GatehouseError): void {
    if (w.retiredFor !== null) {
      w.state = 'dead'; // a failed reload's sibling, already reported
    } else if (w.generation === this.reloading) {
      this.abortReload(reloadFailure(error));
    } else {
      // Counted now, not at its exit, so that its replacement waits out the backoff.
      w.retire('boot error');
      this.backoff.failed();
      if (this.firstStart.done) this.retrying(`worker ${w.pid}`, error.detail ?? error.message);
      else this.firstStart.workerFailed(w, error);
    }
  }

  /** A worker or template that failed to boot after the first start: counted, and tried again later. */
  private failedToBoot(who: string, why: string): void {
    this.backoff.failed();
    this.retrying(who, why);
  }

  private retrying(who: string, why: string): void {
    this.logger.error(`${who} failed to boot; retrying with backoff:\n${why.trimEnd()}`);
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

  private readonly workerEvents: WorkerEvents = {
    ready: (w) => {
      if (!this.adopt(w)) return;
      this.logger.info(`Booting worker with pid: ${w.pid}`);
      this.firstStart.settle();
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
      this.dispatcher.drain();
    },
    bootError: (w, traceback) => this.bootFailed(w, importError(traceback)),
    done: (w) => {
      this.backoff.served(w);
      if (w.requests >= w.requestLimit && w.state === 'ready') {
        this.logger.info(`Worker (pid:${w.pid}) served ${w.requests} requests: replacing it (--max-requests)`);
        this.retire(w, 'max-requests');
      }
      closeIfIdle(w);
      this.dispatcher.drain();
    },
    revoked: (w, x) => {
      this.dispatcher.requeue([x]);
      closeIfIdle(w);
      this.dispatcher.drain();
    },
    leaving: (w) => {
      if (w.state === 'ready' && !this.stopping) {
        this.logger.info(`Worker (pid:${w.pid}) leaves on SIGTERM; it is sent nothing more`);
        this.retire(w, 'SIGTERM');
      }
      closeIfIdle(w);
    },
    closed: (w, code, signal) => {
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
        if (w.readyAt === 0 || performance.now() - w.readyAt < 1000) this.backoff.failed();
        if (w.readyAt === 0 && w.generation === this.reloading) this.abortReload(`worker ${w.pid} died while booting (${cause})`);
      }
      if (!this.firstStart.done && !this.stopping && w.readyAt === 0 && w.retiredFor === null) {
        const why = `worker ${w.pid} exited (${code ?? signal}) before loading the application; its output is above`;
        this.firstStart.workerFailed(w, new GatehouseError('GH_ERR_WORKER_BOOT', why));
      }
      // Lost with the worker: what it was running (a sync worker runs one; the rest never started).
      // A retired worker that exits 0 finished what it ran; any other exit, even 0 (sys.exit() in
      // a view), must not run that request again elsewhere.
      if (code !== 0 || w.retiredFor === null) for (const x of lost.splice(0, this.opts.threads)) x.fail(502, 'worker died');
      this.dispatcher.requeue(lost);
      this.reconcile();
    },
    spawnError: (w, err) => {
      w.state = 'dead';
      if (!this.forget(w)) return;
      this.backoff.failed();
      const error = new GatehouseError(
        'GH_ERR_PYTHON',
        `cannot start the Python interpreter ${JSON.stringify(this.opts.spawn.python)}: ${(err as NodeJS.ErrnoException).code ?? err.message} (set --python or --venv)`,
      );
      if (this.firstStart.waiting) this.firstStart.workerFailed(w, error);
      else this.logger.error(error.message);
    },
  };

  /** Moves the pool toward its target: kill the hung, recycle the oversized, replace the dead and retired. */
  private reconcile(): void {
    if (this.stopping) return;
    const now = performance.now();
    this.dispatcher.tick(now);
    this.watchdog.check(this.workers, this.templates?.current ?? null, now);
    this.templates?.stopIdle();
    const live = this.workers.filter((w) => w.state === 'booting' || w.state === 'ready').length;
    if (live < this.target && this.firstStart.done && this.backoff.due(now)) {
      const failed = this.templates?.restartIfDead(this.generation) ?? null;
      if (failed !== null) this.failedToBoot('the template process', failed.message);
      for (let i = live; i < this.target; i++) this.spawnWorker();
    }
    this.dispatcher.drain();
  }
}
