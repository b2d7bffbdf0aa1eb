/**
 * wrk, the load generator: its command line, a measured run, and what its
 * output says.
 */
import { Proc } from './processes.js';

/** wrk's keep-alive connections, all opened at the start of a run. */
export const CONNECTIONS = 50;
export const WARMUP_SECONDS = 1;

export interface WrkResult {
  rps: number;
  p99ms: number;
  requests: number;
  non2xx3xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

/**
 * One thread by default: with two cores, the other one is the server's.
 * `path`: the URL's path; `tls`: https (wrk offers no ALPN: HTTP/1.1).
 */
export function wrkArgs(port: number, seconds: number, latency: boolean, path = '/', tls = false, threads = 1): string[] {
  return [`-t${threads}`, `-c${CONNECTIONS}`, `-d${seconds}s`, ...(latency ? ['--latency'] : []), `${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`];
}

/**
 * Starts a measured run (`--latency`) now; `done` gives its result once it
 * ends (null when wrk failed, with its output to say why). Killed when it
 * runs 30 s past its duration.
 */
export function startWrk(port: number, seconds: number, path = '/', tls = false, threads = 1): { proc: Proc; done: Promise<{ result: WrkResult | null; out: string }> } {
  const proc = new Proc('wrk', 'wrk', wrkArgs(port, seconds, true, path, tls, threads), { capture: true });
  const limit = setTimeout(() => proc.killGroup('SIGKILL'), (seconds + 30) * 1000);
  const done = proc.exited.then(async () => {
    clearTimeout(limit);
    await proc.stop('SIGKILL', 1000);
    return { result: parseWrk(proc.output), out: proc.output };
  });
  return { proc, done };
}

const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : n * (MS_PER_UNIT[unit] ?? NaN);
}

/** Reads the output of `wrk --latency`; null when it is not there (wrk failed). */
export function parseWrk(out: string): WrkResult | null {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const p99 = /^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(out);
  const total = /^\s*(\d+) requests in /m.exec(out);
  if (!rps || !p99 || !total) return null;
  const non = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(rps[1]),
    p99ms: toMs(p99[1]!, p99[2]!),
    requests: Number(total[1]),
    non2xx3xx: non ? Number(non[1]) : 0,
    socketErrors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}

export function errorCount(w: WrkResult): number {
  return w.non2xx3xx + socketErrorCount(w);
}

export function socketErrorCount(w: WrkResult): number {
  const s = w.socketErrors;
  return s.connect + s.read + s.write + s.timeout;
}

/**
 * req/s of 2xx/3xx answers (wrk tells no 2xx from 3xx): a server that answers
 * 502s fast must not look fast. Equal to rps when every answer was one.
 */
export function okRps(w: WrkResult): number {
  return w.requests > 0 ? (w.rps * Math.max(0, w.requests - w.non2xx3xx)) / w.requests : 0;
}

/** Notes on a run: wrk's output unreadable (`w` null), or what it counted as errors; none for a clean run. */
export function wrkNotes(w: WrkResult | null, out: string): string[] {
  if (w === null) return [`could not read wrk's output: ${out.trim().replace(/\s+/g, ' ').slice(0, 300)}`];
  if (errorCount(w) === 0) return [];
  const s = w.socketErrors;
  return [
    `wrk: ${w.non2xx3xx} non-2xx/3xx responses; socket errors: connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}` +
    (closesWithoutNotice(w)
      ? ` (read errors ≈ requests: the server closes each connection after a complete response without sending "Connection: close", and wrk counts each such close as a read error)`
      : ''),
  ];
}

/**
 * uWSGI --http-socket answers HTTP/1.1 with no "Connection: close" and closes:
 * wrk counts one read error per request, though every request was answered.
 */
export function closesWithoutNotice(w: WrkResult): boolean {
  const s = w.socketErrors;
  return w.non2xx3xx === 0 && s.connect + s.write + s.timeout === 0 && s.read > 0 && Math.abs(s.read - w.requests) <= Math.max(CONNECTIONS * 2, w.requests * 0.02);
}
