/**
 * The pool's first start, which decides whether the server runs at all:
 * start() resolves once every worker has imported the app, and fails on the
 * first one that cannot (that failure says why: the server stops instead of
 * respawning workers in a loop).
 */
import type { GatehouseError } from '../errors.js';
import type { WorkerProcess } from './worker-process.js';

export class FirstStart {
  /** start() has resolved: from now on a boot failure is retried, never fatal. */
  done = false;
  private waiter: { resolve(): void; reject(err: Error): void } | null = null;

  begin(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** start() has neither resolved nor failed yet. */
  get waiting(): boolean {
    return this.waiter !== null;
  }

  /** A worker became ready. */
  ready(workers: readonly WorkerProcess[]): void {
    if (this.done || !workers.every((w) => w.state === 'ready')) return;
    this.done = true;
    this.waiter?.resolve();
    this.waiter = null;
  }

  /** Something could not boot before start() resolved: the first failure decides why it fails. */
  fail(error: GatehouseError): void {
    this.waiter?.reject(error);
    this.waiter = null;
  }
}
