/**
 * A pool of Python workers for one application: what the rest of gatehouse
 * uses. The supervisor keeps the workers alive (supervisor.ts); the scheduler
 * decides which worker gets which request (scheduler.ts). Each pool owns all
 * of its state, so several pools (or several fronts, each with its share of
 * workers) can live side by side.
 */
import type { Logger } from '../log/logger.js';
import type { Exchange } from './exchange.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { shutdownLongLived } from './retirement.js';
import { Supervisor } from './supervisor.js';
import type { SupervisorOptions } from './supervisor-options.js';
import type { WorkerProcess } from './worker-process.js';

/** How long exchanges told to shut down (open WebSockets) have to end before the workers are stopped (ms). */
const SHUTDOWN_MS = 1000;

export type PoolOptions = SupervisorOptions &
  SchedulerOptions & {
    /** Each client's requests go to one worker (worker-slots.ts): the front gives them its affinity. */
    sticky: boolean;
  };

export class WorkerPool {
  private readonly list: WorkerProcess[] = [];
  private readonly scheduler: Scheduler;
  private readonly supervisor: Supervisor;

  constructor(
    private readonly opts: PoolOptions,
    logger: Logger,
  ) {
    this.scheduler = new Scheduler(this.list, opts);
    this.supervisor = new Supervisor(this.list, this.scheduler, opts, logger);
  }

  /** The workers, booting, serving or on their way out. */
  get workers(): readonly WorkerProcess[] {
    return this.list;
  }

  /** Workers wanted (changed by SIGTTIN / SIGTTOU). */
  get target(): number {
    return this.supervisor.target;
  }

  /** Requests are to carry their client's affinity (Exchange.affinity, affinityOf()). */
  get sticky(): boolean {
    return this.opts.sticky;
  }

  /** Whether the app is ASGI; null until the first worker has told (interface "auto"). */
  get asgi(): boolean | null {
    const i = this.opts.interface;
    return i === 'auto' ? null : i === 'asgi';
  }

  /** Runs `fn` once the app's interface is known. */
  whenInterfaceKnown(fn: () => void): void {
    this.supervisor.whenInterfaceKnown(fn);
  }

  /** Requests held by workers or waiting in the queue. */
  get pending(): number {
    return this.scheduler.pending;
  }

  /** Spawns the workers; resolves when all have imported the app, rejects if one cannot. */
  start(): Promise<void> {
    return this.supervisor.start();
  }

  dispatch(x: Exchange): void {
    this.scheduler.dispatch(x);
  }

  /** The client went away. */
  cancel(x: Exchange): void {
    this.scheduler.cancel(x);
  }

  /** Graceful reload: new workers with the code now on disk, then the old ones retire. */
  reload(reason: string): void {
    this.supervisor.reload(reason);
  }

  /** SIGTTIN / SIGTTOU: one worker more or fewer (never fewer than one). */
  resize(delta: 1 | -1): void {
    this.supervisor.resize(delta);
    this.scheduler.setSlots(this.supervisor.target);
  }

  /**
   * Stops the pool: waits up to `graceMs` for queued and running requests,
   * then closes open WebSockets (1012), then asks workers to exit, killing
   * those that do not.
   */
  async stop(graceMs: number): Promise<void> {
    this.supervisor.halt();
    const deadline = performance.now() + graceMs;
    while (this.pending > 0 && performance.now() < deadline) await sleep(50);
    // What is still open at the deadline and can end cleanly (a WebSocket: 1012) does, and gets a moment to.
    if (shutdownLongLived(this.list)) {
      const until = performance.now() + SHUTDOWN_MS;
      while (this.pending > 0 && performance.now() < until) await sleep(20);
    }
    this.scheduler.failWaiting('server shutting down');
    await this.supervisor.terminate(deadline - performance.now());
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
