/**
 * The pool's first start, which decides whether the server runs at all.
 *
 * start() resolves once no worker is still booting and at least one is
 * ready: the generation serves. A worker that could not boot meanwhile (the
 * code changed on disk during start-up) is then reported and retried with
 * backoff, as after a failed reload; it is not worth stopping a server that
 * can serve. Only if every worker failed does start() fail, with the first
 * failure as the reason: the server stops instead of respawning workers in a
 * loop. Until then a failure is held back, since it is either retried (and
 * reported then) or the reason the server stops (and reported by it).
 */
import type { GatehouseError } from '../errors.js';
import type { WorkerProcess } from './worker-process.js';

export class FirstStart {
  /** start() has resolved: from now on a boot failure is retried, never fatal. */
  done = false;
  private waiter: { resolve(): void; reject(err: Error): void } | null = null;
  /** Workers that could not boot while none was ready yet. */
  private readonly failures = new Map<WorkerProcess, GatehouseError>();

  constructor(
    /** The pool's workers. */
    private readonly workers: readonly WorkerProcess[],
    /** Logs a failure that will be retried. */
    private readonly report: (w: WorkerProcess, error: GatehouseError) => void,
  ) {}

  begin(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** start() has neither resolved nor failed yet. */
  get waiting(): boolean {
    return this.waiter !== null;
  }

  /** A worker could not boot before start() resolved (once per worker: its exit may follow its boot error). */
  workerFailed(w: WorkerProcess, error: GatehouseError): void {
    if (this.waiter === null || this.failures.has(w)) return;
    this.failures.set(w, error);
    this.settle();
  }

  /** Nothing can serve (the --preload template failed): start() fails now. */
  fail(error: GatehouseError): void {
    this.waiter?.reject(error);
    this.waiter = null;
  }

  /** A worker became ready or failed: resolve, fail, or keep waiting for those still booting. */
  settle(): void {
    if (this.waiter === null) return;
    const serving = this.workers.some((w) => w.state === 'ready');
    if (serving) {
      for (const [w, error] of this.failures) this.report(w, error);
      this.failures.clear();
    }
    if (this.workers.some((w) => w.state === 'booting')) return;
    if (serving) {
      this.done = true;
      this.waiter.resolve();
      this.waiter = null;
      return;
    }
    const first = this.failures.values().next();
    if (!first.done) this.fail(first.value);
  }
}
