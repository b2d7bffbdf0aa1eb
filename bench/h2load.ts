/**
 * h2load (nghttp2-client), the HTTP/2 load generator of the tls suite: its
 * command line, a measured run, and what its output and its per-request log
 * (--log-file) say. A run asks for a fixed number of requests (-n), spread
 * evenly over its connections (-c), each keeping up to -m streams open.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Proc } from './processes.js';

export interface H2Load {
  /** Connections (-c). */
  clients: number;
  /** Concurrent streams per connection (-m). */
  streams: number;
  /** Requests in all (-n). */
  requests: number;
}

export interface H2Result {
  /** Requests asked for, started and done (answered or failed) as h2load counts them. */
  requests: number;
  started: number;
  done: number;
  /** h2load's own split: failed = answered with an error status (a 5xx counts) or not at all, errored = no answer. */
  failed: number;
  errored: number;
  timedOut: number;
  status: { s2xx: number; s3xx: number; s4xx: number; s5xx: number };
  /** "finished in": from the first connect to the last answer. */
  seconds: number;
  /** h2load's req/s: done requests over `seconds`, whatever their status. */
  rps: number;
  /** "time for request" over every answered request. */
  meanMs: number;
  maxMs: number;
  /** The 99th percentile of the 2xx answers' times, from the per-request log; null without it. */
  p99ms: number | null;
  /** req/s of each connection (its own requests over its own lifetime): min and mean. */
  clientRps: { min: number; mean: number } | null;
  /** "Application protocol" (ALPN), "TLS Protocol" and "Cipher". */
  protocol: string | null;
  tls: string | null;
  cipher: string | null;
}

/**
 * Requests h2load runs a warm-up with: a fresh server's h2 code paths are not
 * yet JIT-compiled, and a few thousand answers still left V8 compiling during
 * the measured run, which is short (a second or two at these rates).
 */
export const H2_WARMUP_REQUESTS = 10000;

/** Seconds without any activity on a connection after which h2load gives up on it: a stuck server cannot hang the run. */
const INACTIVITY_SECONDS = 10;

export function h2loadArgs(url: string, load: H2Load, logFile?: string): string[] {
  return [
    '-n', String(load.requests),
    '-c', String(load.clients),
    '-m', String(load.streams),
    '-t', '1', // one thread, as wrk -t1: the other core is the server's
    `--connection-inactivity-timeout=${INACTIVITY_SECONDS}`,
    ...(logFile === undefined ? [] : [`--log-file=${logFile}`]),
    url,
  ];
}

/** Longest a run may take: generous (a slow app at 200 req/s), yet bounded. */
export function h2loadLimitMs(load: H2Load): number {
  return (60 + load.requests / 200) * 1000;
}

/**
 * Starts a measured run; `done` gives its result once it ends (null when its
 * output says no run took place, with the output to say why). Killed past
 * h2loadLimitMs.
 */
export function startH2load(url: string, load: H2Load, logFile: string): { proc: Proc; done: Promise<{ result: H2Result | null; out: string }> } {
  const proc = new Proc('h2load', 'h2load', h2loadArgs(url, load, logFile), { capture: true });
  const limit = setTimeout(() => proc.killGroup('SIGKILL'), h2loadLimitMs(load));
  const done = proc.exited.then(async () => {
    clearTimeout(limit);
    await proc.stop('SIGKILL', 1000);
    const result = parseH2load(proc.output);
    if (result !== null) result.p99ms = p99Of2xx(logFile);
    return { result, out: proc.output };
  });
  return { proc, done };
}

/**
 * Waits until h2load says `percent`% of its requests are done (it prints
 * "progress: N% done" every 10%, counting answered and failed requests):
 * true then, false when it ended first.
 */
export async function waitProgress(proc: Proc, percent: number): Promise<boolean> {
  const line = `progress: ${percent}% done`;
  while (proc.running) {
    if (proc.output.includes(line)) return true;
    await sleep(10);
  }
  return proc.output.includes(line);
}

const MS_PER_UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
const toMs = (value: string, unit: string) => Number(value) * (MS_PER_UNIT[unit] ?? NaN);

/** Reads h2load's summary; null when it has none (no run: connection refused, no h2 by ALPN...). */
export function parseH2load(out: string): H2Result | null {
  const finished = /^finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s/m.exec(out);
  const req = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out);
  const status = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(out);
  if (!finished || !req || !status) return null;
  const time = /^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/m.exec(out);
  const client = /^req\/s\s*:\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/m.exec(out);
  const field = (re: RegExp) => re.exec(out)?.[1]?.trim() ?? null;
  return {
    requests: Number(req[1]),
    started: Number(req[2]),
    done: Number(req[3]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timedOut: Number(req[7]),
    status: { s2xx: Number(status[1]), s3xx: Number(status[2]), s4xx: Number(status[3]), s5xx: Number(status[4]) },
    seconds: toMs(finished[1]!, finished[2]!) / 1000,
    rps: Number(finished[3]),
    meanMs: time ? toMs(time[5]!, time[6]!) : NaN,
    maxMs: time ? toMs(time[3]!, time[4]!) : NaN,
    p99ms: null,
    clientRps: client ? { min: Number(client[1]), mean: Number(client[3]) } : null,
    protocol: field(/^Application protocol: (.+)$/m),
    tls: field(/^TLS Protocol: (.+)$/m),
    cipher: field(/^Cipher: (.+)$/m),
  };
}

/** The 99th percentile of the times of 2xx answers in h2load's log (start µs, status, µs to the end), null when there are none. */
export function p99Of2xx(logFile: string): number | null {
  let text: string;
  try {
    text = readFileSync(logFile, 'latin1');
  } catch {
    return null;
  }
  const times: number[] = [];
  for (const line of text.split('\n')) {
    const [, status, us] = line.split('\t');
    if (status !== undefined && us !== undefined && status.startsWith('2') && status.length === 3) times.push(Number(us));
  }
  if (times.length === 0) return null;
  times.sort((a, b) => a - b);
  return times[Math.min(times.length - 1, Math.ceil(times.length * 0.99) - 1)]! / 1000;
}

/** 3xx, 4xx and 5xx answers. */
export const non2xx = (r: H2Result) => r.status.s3xx + r.status.s4xx + r.status.s5xx;

/** Requests that got no answer: errored, timed out, or never done. */
export const unanswered = (r: H2Result) => Math.max(r.errored + r.timedOut, r.requests - r.status.s2xx - non2xx(r));

/** req/s of 2xx answers, over h2load's whole run. */
export const ok2xxRps = (r: H2Result) => (r.seconds > 0 ? r.status.s2xx / r.seconds : 0);
