/**
 * Ending workers without losing requests: a worker taken out of service
 * (reload, --max-requests, --max-rss, a timeout) gives back what it has not
 * started and closes its stream once its running requests are answered; its
 * open WebSockets end (1012) after --graceful-timeout. And the pool's last
 * act: every worker asked to exit, killed after a grace time.
 */
import type { WorkerProcess } from './worker-process.js';

/** The least time a stopping worker gets before SIGKILL: an ASGI worker runs its lifespan shutdown. */
const KILL_GRACE_MS = 1000;

export interface RetirementOptions {
  /** Requests a worker runs at once (1: a sync worker, whose queued requests can be taken back). */
  threads: number;
  /** Seconds a retiring worker's long-lived exchanges (open WebSockets) may go on. */
  gracefulTimeout: number;
}

/** Takes a worker out of service after its running requests. */
export function retire(w: WorkerProcess, reason: string, opts: RetirementOptions): void {
  if (w.state === 'retiring' || w.state === 'dead') return;
  w.retire(reason);
  if (opts.threads === 1) w.revokeQueued();
  closeIfIdle(w);
  if ([...w.inflight].some((x) => x.shutdown !== undefined)) {
    setTimeout(() => w.state === 'retiring' && shutdownLongLived([w]), opts.gracefulTimeout * 1000).unref();
  }
}

/** A retiring worker with nothing left to answer closes its stream (it then exits by itself). */
export function closeIfIdle(w: WorkerProcess): void {
  if (w.state === 'retiring' && w.inflight.length === 0) w.closeStream();
}

/** Tells the workers' long-lived exchanges (open WebSockets) to end now; false if there were none. */
export function shutdownLongLived(workers: readonly WorkerProcess[]): boolean {
  let any = false;
  for (const w of workers) {
    for (const x of [...w.inflight]) {
      if (x.shutdown === undefined) continue;
      any = true;
      x.shutdown();
    }
  }
  return any;
}

/** Asks every live worker to exit; those still alive after `graceMs` (at least KILL_GRACE_MS) are killed. */
export async function stopAll(workers: readonly WorkerProcess[], graceMs: number): Promise<void> {
  const alive = workers.filter((w) => w.state !== 'dead');
  for (const w of alive) {
    w.closeStream();
    w.kill('SIGTERM');
  }
  const killAt = performance.now() + Math.max(KILL_GRACE_MS, graceMs);
  while (alive.some((w) => w.state !== 'dead') && performance.now() < killAt) await sleep(20);
  for (const w of alive) w.kill('SIGKILL');
  while (alive.some((w) => w.state !== 'dead')) await sleep(10);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
