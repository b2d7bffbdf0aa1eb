/** What a pool's supervisor (supervisor.ts) is given: its settings, and the scheduler it tells of its workers. */
import type { Interface } from './app-interface.js';
import type { Exchange } from './exchange.js';
import type { WorkerSpawnOptions } from './worker-process.js';

export interface SupervisorOptions {
  spawn: WorkerSpawnOptions;
  workers: number;
  /** Requests a worker runs at once (1: a sync worker). */
  threads: number;
  /** Seconds a request may run before its worker is killed (0: no limit). */
  timeout: number;
  /** Replace a worker after this many requests, plus 0..maxRequestsJitter (0: never). */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Replace a worker whose resident memory exceeds this many bytes (0: no limit). */
  maxRss: number;
  /** Import the app once in a template process and fork the workers from it. */
  preload: boolean;
  /**
   * WSGI or ASGI; "auto" until the first worker that boots says which (its
   * READY frame), then that for good. An ASGI pool's `threads` becomes
   * `maxConcurrency` once known (runAsgi()): its workers run that many requests at once.
   */
  interface: 'auto' | Interface;
  /** ASGI: requests a worker runs at once on its event loop. */
  maxConcurrency: number;
  /** maxConcurrency was set, not the default: a WSGI app says it ignores it. */
  maxConcurrencyGiven: boolean;
  /** Seconds a retiring worker's long-lived exchanges (open WebSockets) may go on before they are ended (1012). */
  gracefulTimeout: number;
}

/** What the supervisor tells the scheduler. */
export interface Dispatcher {
  /** Requests a worker gave back before running them: they go first. */
  requeue(xs: Exchange[]): void;
  /** A worker may have room for waiting requests. */
  drain(): void;
  /** A pass of the loop, before the supervisor's own work. */
  tick(now: number): void;
  /** Workers now run this many requests at once (an app found to be ASGI). */
  setConcurrency(n: number, asgi: boolean): void;
}
