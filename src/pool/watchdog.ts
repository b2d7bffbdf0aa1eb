/**
 * The supervisor's periodic look at workers that are alive but must go: one
 * whose request runs past --timeout, or that has not loaded the app within
 * --timeout (gunicorn's WORKER TIMEOUT at boot), is killed after dumping its
 * Python stack; one past --max-rss is replaced after its current request.
 *
 * A threaded worker's hung request gets 504 at once, but the worker is
 * killed only once its other requests are answered: a thread cannot be
 * stopped, and its neighbours need not fail with it.
 *
 * An ASGI worker times out its own requests (it cancels their tasks and
 * serves on); it is killed only when its event loop stops sending
 * heartbeats for --timeout: sync code is blocking every request it holds.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import type { Exchange } from './exchange.js';
import { beatInterval, lateAfter, startedBy } from './heartbeat.js';
import { StallGuard } from './stall-guard.js';
import type { TemplateProcess } from './template-process.js';
import type { WorkerProcess } from './worker-process.js';

export interface WatchdogOptions {
  /** Requests a worker runs at once (1: a sync worker). */
  threads: number;
  interface: 'auto' | 'wsgi' | 'asgi';
  /** Seconds a request may run before its worker is killed (0: no limit). */
  timeout: number;
  /** Replace a worker whose resident memory exceeds this many bytes (0: no limit). */
  maxRss: number;
}

/** What the watchdog asks of the supervisor. */
export interface WatchdogActions {
  /** Take a worker out of service after its running requests. */
  retire(w: WorkerProcess, reason: string): void;
  /** Requests a killed worker never started. */
  requeue(xs: Exchange[]): void;
  /** A worker still loading the app after --timeout: a boot failure (the watchdog kills it). */
  bootTimedOut(w: WorkerProcess, seconds: number): void;
  /** The --preload template still loading the app after --timeout (the watchdog kills it). */
  templateTimedOut(t: TemplateProcess, seconds: number): void;
}

const KILL_GRACE_MS = 1000;
/** How long a blocked ASGI worker has to hand over the answers it finished (SIGUSR1) before it is killed. */
const HAND_OVER_MS = 100;
const RSS_CHECK_MS = 1000;
/** A check this long after the one before judges no worker (stall-guard.ts): their beats and answers may wait unread. */
const HELD_MS = 250;

export class Watchdog {
  private rssCheckedAt = 0;
  /** ASGI workers found late, with the last beat they had sent then. */
  private readonly late = new Map<WorkerProcess, number>();
  /** Threaded workers killed after a timeout, so that each is killed once. */
  private readonly killed = new WeakSet<WorkerProcess>();
  /** Blocked ASGI workers asked to hand over their finished answers, and when. */
  private readonly handingOver = new Map<WorkerProcess, number>();
  private readonly stall = new StallGuard(HELD_MS);

  constructor(
    private readonly opts: WatchdogOptions,
    private readonly actions: WatchdogActions,
    private readonly logger: Logger,
  ) {}

  check(workers: readonly WorkerProcess[], template: TemplateProcess | null, now: number): void {
    if (this.stall.held(now)) return;
    if (this.opts.timeout > 0) {
      if (this.opts.interface === 'asgi') this.watchHeartbeats(workers, now);
      else if (this.opts.threads > 1) this.timeOutThreads(workers, now);
      else this.killHung(workers, now);
      this.killStuckBooting(workers, template, now);
    }
    if (this.opts.maxRss > 0 && now - this.rssCheckedAt >= RSS_CHECK_MS) {
      this.rssCheckedAt = now;
      this.retireOversized(workers);
    }
  }

  /** A sync worker's request past --timeout: 504 for it, SIGABRT (Python dumps its stack to the log), then SIGKILL. */
  private killHung(workers: readonly WorkerProcess[], now: number): void {
    const limit = this.opts.timeout * 1000;
    for (const w of workers) {
      if (w.state === 'dead' || w.retiredFor === 'timeout' || w.inflight.length === 0) continue;
      if (now - w.headStartedAt < limit) continue;
      this.condemn(w, `Worker (pid:${w.pid}) timed out after ${seconds(now - w.headStartedAt)}s on ${w.inflight.first()!.label}; killing it`);
      this.kill(w, now);
    }
  }

  /**
   * A threaded worker runs all it holds, the oldest sent first: each request
   * past --timeout gets 504 and is given up (its thread runs on, unheard),
   * the worker takes no new ones, and once the others are answered (each
   * within --timeout too) it is killed with its stack dumped, the hung
   * thread's in it.
   */
  private timeOutThreads(workers: readonly WorkerProcess[], now: number): void {
    const limit = this.opts.timeout * 1000;
    for (const w of workers) {
      if (w.state === 'dead' || this.killed.has(w)) continue;
      const first = w.inflight.first();
      const timedOut = first !== undefined && now - first.sentAt >= limit;
      if (timedOut) {
        const others = [...w.inflight].filter((o) => now - o.sentAt < limit).length;
        this.logger.error(
          `Worker (pid:${w.pid}) timed out after ${seconds(now - first.sentAt)}s on ${first.label}; ` +
            (others > 0 ? `it takes no new requests and is killed once its ${others} other(s) are answered` : 'killing it, its stack follows'),
        );
        if (w.state === 'ready') this.actions.retire(w, 'timeout');
        else w.retire('timeout');
        for (let x = w.inflight.first(); x !== undefined && now - x.sentAt >= limit; x = w.inflight.first()) {
          w.giveUp(x);
          x.fail(504, 'worker timeout');
        }
      }
      if (w.retiredFor === 'timeout' && w.inflight.length === 0) {
        if (!timedOut) this.logger.error(`Worker (pid:${w.pid}) answered its other requests; killing it, its stack follows`);
        this.killed.add(w);
        abort(w);
      }
    }
  }

  /**
   * ASGI workers by their heartbeats (heartbeat.ts). One whose beat is late
   * is logged then (the scheduler passes it over), and again when it beats
   * once more: sync code in an async app shows long before --timeout. One
   * whose loop has been blocked for --timeout (at least its silence less
   * one beat interval) is told to hand over the answers it finished
   * (SIGUSR1: python/gatehouse_asgi.py's hand_over()), then killed.
   */
  private watchHeartbeats(workers: readonly WorkerProcess[], now: number): void {
    const limit = this.opts.timeout * 1000;
    const late = lateAfter(limit);
    const interval = beatInterval(limit);
    for (const [w, since] of this.handingOver) {
      if (now - since < HAND_OVER_MS && w.state !== 'dead') continue;
      this.handingOver.delete(w);
      this.kill(w, now);
    }
    for (const [w, since] of this.late) {
      if (w.beatAt === since && workers.includes(w) && w.state !== 'dead') continue;
      this.late.delete(w);
      if (w.beatAt !== since) this.logger.warning(`Worker (pid:${w.pid}) event loop answered again after ${seconds(w.beatAt - since)}s without a heartbeat`);
    }
    for (const w of workers) {
      // A retired worker with nothing in flight is leaving: its stream is closed (no more beats) while lifespan shutdown runs.
      const leaving = w.state === 'retiring' && w.inflight.length === 0;
      const silent = now - w.beatAt;
      if ((w.state !== 'ready' && w.state !== 'retiring') || leaving || w.retiredFor === 'timeout' || silent <= late) continue;
      // Blocked since a moment within one interval after its last beat.
      const blocked = silent - interval;
      if (blocked >= limit) {
        this.late.delete(w);
        this.condemn(w, `Worker (pid:${w.pid}) event loop blocked for ${seconds(blocked)}s at least (sync code in an async app?); killing it, its stack follows`);
        // The answers its loop finished in the turn it blocked in are held for that turn's write: they leave first.
        w.kill('SIGUSR1');
        this.handingOver.set(w, now);
      } else if (!this.late.has(w)) {
        this.late.set(w, w.beatAt);
        this.logger.warning(`Worker (pid:${w.pid}) sent no heartbeat for ${seconds(silent)}s: its event loop is blocked (sync code in an async app?); no new requests go to it meanwhile`);
      }
    }
  }

  /** Logs why a worker is to be killed, and takes it out of service. */
  private condemn(w: WorkerProcess, message: string): void {
    this.logger.error(message);
    w.retire('timeout');
  }

  /**
   * A condemned worker: SIGABRT (Python dumps its
   * stack to the log), then SIGKILL. A sync
   * worker's running request gets 504 and those queued behind it go
   * elsewhere. Of an ASGI worker's, those sent after its loop blocked were
   * not started (heartbeat.ts) and go elsewhere too, unless running them
   * twice could do harm (a POST: its beat may have been stuck behind a
   * full stream); any of the others may be the one that blocked it (its
   * stack says which): 504 for those sent --timeout ago or more, 502 for
   * the rest.
   */
  private kill(w: WorkerProcess, now: number): void {
    const limit = this.opts.timeout * 1000;
    const asgi = this.opts.interface === 'asgi';
    const by = startedBy(w.beatAt, limit);
    const unstarted: Exchange[] = [];
    // A sync worker runs its oldest request, the one that timed out.
    w.takeAll().forEach((x, i) => {
      if (asgi ? x.sentAt > by && x.idempotent : i > 0) unstarted.push(x);
      else if (now - x.sentAt >= limit) x.fail(504, 'worker timeout');
      else x.fail(502, 'its worker was killed after a timeout');
    });
    this.actions.requeue(unstarted);
    abort(w);
  }

  private killStuckBooting(workers: readonly WorkerProcess[], template: TemplateProcess | null, now: number): void {
    const limit = this.opts.timeout * 1000;
    for (const w of workers) {
      if (w.state !== 'booting' || w.retiredFor !== null || now - w.spawnedAt < limit) continue;
      this.actions.bootTimedOut(w, Math.round((now - w.spawnedAt) / 1000));
      abort(w);
    }
    if (template !== null && template.state === 'booting' && !template.stopped && now - template.spawnedAt >= limit) {
      abort(template);
      this.actions.templateTimedOut(template, Math.round((now - template.spawnedAt) / 1000));
    }
  }

  private retireOversized(workers: readonly WorkerProcess[]): void {
    for (const w of workers) {
      if (w.state !== 'ready') continue;
      const rss = residentBytes(w.pid);
      if (rss <= this.opts.maxRss) continue;
      this.logger.warning(
        `Worker (pid:${w.pid}) uses ${Math.round(rss / 2 ** 20)} MB, over --max-rss ${Math.round(this.opts.maxRss / 2 ** 20)}: replacing it after its current request`,
      );
      this.actions.retire(w, 'max-rss');
    }
  }
}

/** SIGABRT (Python dumps its stack to the log), then SIGKILL. */
function abort(w: { kill(signal: NodeJS.Signals): void }): void {
  w.kill('SIGABRT');
  setTimeout(() => w.kill('SIGKILL'), KILL_GRACE_MS).unref();
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

const seconds = (ms: number) => (ms / 1000).toFixed(1);
