/**
 * Which interface a pool's app speaks, WSGI or ASGI. Given as "auto", the
 * first worker to load the app decides it, and requests that arrive before
 * wait for that; a later worker that loaded the other kind (the code changed
 * and a reload picked it up) does not fit the pool.
 */
export type Interface = 'wsgi' | 'asgi';

/** gunicorn's "Using worker:" line for a pool of `kind`: how many requests a process runs at once, and how many processes. */
export function workerLine(kind: Interface, p: { workers: number; threads: number; maxConcurrency: number }): string {
  const mode = kind === 'asgi' ? `asgi (up to ${p.maxConcurrency} requests at once per process)` : p.threads > 1 ? `threads (${p.threads} per process)` : 'sync';
  return `Using worker: ${mode} (${p.workers} ${p.workers === 1 ? 'process' : 'processes'})`;
}

/** --threads has no meaning for an ASGI app: said once the interface is known, where it would otherwise be dropped silently. */
export function threadsIgnored(threads: number): string {
  return `--threads ${threads} does not apply to an ASGI app (its workers run up to --max-concurrency requests at once on their event loop); ignored`;
}

/** --max-concurrency has no meaning for a WSGI app: said once the interface is known. */
export function concurrencyIgnored(n: number): string {
  return `--max-concurrency ${n} does not apply to a WSGI app (its workers run one request at a time, or --threads N in threads); ignored`;
}

export class AppInterface {
  private waiters: (() => void)[] = [];

  constructor(
    /** The pool's options, whose `interface` this settles (the scheduler and the watchdog read it). */
    private readonly opts: { interface: 'auto' | Interface },
    /** Told once, when "auto" is settled. */
    private readonly decided: (found: Interface) => void,
  ) {}

  /** Runs `fn` once the interface is known. */
  whenKnown(fn: () => void): void {
    if (this.opts.interface === 'auto') this.waiters.push(fn);
    else fn();
  }

  /** A worker loaded an app of kind `found`: null when it fits the pool, else why not. */
  check(found: Interface, pid: number): string | null {
    if (this.opts.interface === 'auto') {
      this.opts.interface = found;
      this.decided(found);
      for (const fn of this.waiters.splice(0)) fn();
      return null;
    }
    if (found === this.opts.interface) return null;
    return `worker ${pid} loaded a${found === 'asgi' ? 'n ASGI' : ' WSGI'} app into a ${this.opts.interface.toUpperCase()} pool; restart gatehouse to switch`;
  }
}
