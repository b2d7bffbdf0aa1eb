/**
 * A small, bounded HTTP load generator for integration tests: N concurrent
 * keep-alive loops (node:http with a keep-alive Agent), each sending one
 * request at a time, for a fixed duration. Loopback only by intent; it stops
 * by itself after `durationMs` (plus at most one request timeout), counts
 * responses by status and network errors, and reports every response to an
 * optional callback so a test can look at what served it.
 */
import { Agent, request as httpRequest } from 'node:http';

export interface LoadSample {
  /** Which loop (0..concurrency-1) sent it. */
  loop: number;
  status: number;
  body: string;
  /** performance.now() when the request was sent and when its response ended. */
  sentAt: number;
  doneAt: number;
}

export interface LoadOptions {
  /** Base URL, e.g. http://127.0.0.1:8000 (a loopback address). */
  url: string;
  /** Request path, or a function choosing one per request. Default '/'. */
  path?: string | ((loop: number, seq: number) => string);
  /** Concurrent keep-alive loops. Default 8. */
  concurrency?: number;
  /** How long the loops keep sending new requests. */
  durationMs: number;
  /** A request with no complete answer after this long is destroyed and counted as an error. Default 10000. */
  requestTimeoutMs?: number;
  /** Pause after each response in each loop (keeps the load modest). Default 0. */
  pauseMs?: number;
  /** Called for every complete response (any status). */
  onResponse?: (sample: LoadSample) => void;
}

export interface LoadResult {
  requests: number;
  /** Responses by status code. */
  byStatus: Record<number, number>;
  /** Network errors (refused, reset, timed out, ...): requests with no complete response. */
  errors: number;
  /** The first few network errors and non-200 responses, for assertion messages. */
  problems: string[];
  elapsedMs: number;
}

export interface LoadRun {
  /** Resolves once every loop has finished (after durationMs, or after stop()). */
  readonly done: Promise<LoadResult>;
  /** Stops sending new requests now (requests under way still complete). */
  stop(): void;
  /** Counts so far. */
  snapshot(): LoadResult;
}

const MAX_PROBLEMS = 20;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function startLoad(opts: LoadOptions): LoadRun {
  const u = new URL(opts.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port);
  const concurrency = opts.concurrency ?? 8;
  const timeoutMs = opts.requestTimeoutMs ?? 10000;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const started = performance.now();
  const deadline = started + opts.durationMs;
  let stopped = false;
  const byStatus: Record<number, number> = {};
  let requests = 0;
  let errors = 0;
  const problems: string[] = [];
  const note = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text);
  };

  const pathFor = (loop: number, seq: number): string =>
    typeof opts.path === 'function' ? opts.path(loop, seq) : (opts.path ?? '/');

  const one = (loop: number, path: string): Promise<void> =>
    new Promise((resolve) => {
      const sentAt = performance.now();
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        errors++;
        note(`GET ${path}: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`);
        resolve();
      };
      const req = httpRequest({ host, port, path, method: 'GET', agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('response aborted')));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString();
          byStatus[status] = (byStatus[status] ?? 0) + 1;
          if (status !== 200) note(`GET ${path}: ${status} ${body.slice(0, 200)}`);
          opts.onResponse?.({ loop, status, body, sentAt, doneAt: performance.now() });
          resolve();
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no complete answer within ${timeoutMs} ms`)));
      req.on('error', fail);
      req.end();
    });

  const loop = async (n: number) => {
    let seq = 0;
    while (!stopped && performance.now() < deadline) {
      requests++;
      const errorsBefore = errors;
      await one(n, pathFor(n, seq++));
      // After a network error, do not spin: the test wants counts, not a storm.
      if (errors > errorsBefore) await sleep(20);
      else if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  };

  const snapshot = (): LoadResult => ({
    requests,
    byStatus: { ...byStatus },
    errors,
    problems: [...problems],
    elapsedMs: performance.now() - started,
  });

  const done = Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i))).then(() => {
    agent.destroy();
    return snapshot();
  });

  return {
    done,
    stop: () => {
      stopped = true;
    },
    snapshot,
  };
}

/** Runs a load for `durationMs` and returns the counts. */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  return startLoad(opts).done;
}

/** Requests that did not get a 200: network errors plus every non-200 response. */
export function failures(r: LoadResult): number {
  let bad = r.errors;
  for (const [status, n] of Object.entries(r.byStatus)) if (Number(status) !== 200) bad += n;
  return bad;
}

/** One line for assertion messages. */
export function describeLoad(r: LoadResult): string {
  return (
    `${r.requests} requests in ${Math.round(r.elapsedMs)} ms, by status ${JSON.stringify(r.byStatus)}, ` +
    `${r.errors} network errors${r.problems.length ? `; first problems: ${r.problems.slice(0, 5).join(' | ')}` : ''}`
  );
}
