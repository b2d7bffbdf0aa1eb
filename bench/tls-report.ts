/**
 * The tls suite's section of the report (tls-suite.ts): a summary line per
 * workload (gatehouse's and nginx + uWSGI's req/s of 2xx answers and their
 * ratio, per app), the detail table, and the notes on how it was measured.
 */
import { SERVED_SHARE } from './connection-check.js';
import { usCell as us } from './cpu-usage.js';
import { H2_WARMUP_REQUESTS } from './h2load.js';
import type { Options } from './options.js';
import { BLANK_CELLS, formatInt, formatMs, HEAD, KEYS, noteLines, renderTable, RIGHT, rpsCell, SERVED_LEGEND, type Cells } from './report.js';
import { PROCESSES, type AppSpec } from './servers.js';
import { H2_REQUESTS_PER_SECOND, WORKLOADS, type TlsRow } from './tls-rows.js';
import { CONNECTIONS, WARMUP_SECONDS } from './wrk.js';

const PEER = 'nginx-uwsgi';

const find = (rows: readonly TlsRow[], server: string, app: string, workload: string) =>
  rows.find((r) => r.server.id === server && r.app.id === app && r.workload.id === workload);

/** gatehouse's req/s of 2xx answers over nginx + uWSGI's, "(non-2xx)" when either had any, '' without both. */
function ratio(gh: TlsRow | undefined, peer: TlsRow | undefined): string {
  if (gh?.okRps == null || peer?.okRps == null || peer.okRps <= 0) return '';
  const flagged = gh.bad + gh.unanswered + peer.bad + peer.unanswered > 0;
  return `${(gh.okRps / peer.okRps).toFixed(2)}×${flagged ? ' (non-2xx)' : ''}`;
}

/** req/s of 2xx answers (with the range of the runs), flagged with what else the server answered. */
function summaryCell(row: TlsRow | undefined): string {
  if (row === undefined) return '';
  if (row.skipped !== null) return 'skipped';
  if (row.okRps === null) return 'failed';
  const cell = rpsCell(row.okRps, row.allOk);
  const what = [...(row.bad > 0 ? [`${formatInt(row.bad)} non-2xx`] : []), ...(row.unanswered > 0 ? [`${formatInt(row.unanswered)} unanswered`] : [])];
  return what.length > 0 ? `${cell} FLAGGED (${what.join(', ')})` : cell;
}

/** The summary: one line per workload, per app gatehouse's and nginx + uWSGI's req/s of 2xx answers and their ratio. */
function summaryTable(rows: readonly TlsRow[], apps: readonly AppSpec[], markdown: boolean): string {
  const keys = ['workload', ...apps.flatMap((a) => [`${a.id}-gh`, `${a.id}-peer`, `${a.id}-ratio`])];
  const head: Record<string, string> = { workload: 'workload' };
  for (const a of apps) {
    head[`${a.id}-gh`] = `${a.id}: gatehouse`;
    head[`${a.id}-peer`] = `${a.id}: nginx + uWSGI`;
    head[`${a.id}-ratio`] = `${a.id}: gatehouse/nginx+uWSGI`;
  }
  const body = WORKLOADS.map((w) => {
    const line: Record<string, string> = { workload: w.title };
    for (const a of apps) {
      const gh = find(rows, 'gatehouse', a.id, w.id);
      const peer = find(rows, PEER, a.id, w.id);
      line[`${a.id}-gh`] = summaryCell(gh);
      line[`${a.id}-peer`] = summaryCell(peer);
      line[`${a.id}-ratio`] = ratio(gh, peer);
    }
    return line;
  });
  return renderTable(keys, head, body, new Set(keys.filter((k) => k !== 'workload')), markdown);
}

/** The detail table's columns: the main table's and the workload. */
type TlsCells = Cells & { workload: string };

function cells(row: TlsRow, rows: readonly TlsRow[]): TlsCells {
  const base = { workload: row.workload.title, server: row.server.label, app: row.app.id };
  if (row.okRps === null) return { ...base, ...BLANK_CELLS, rps: row.skipped !== null ? 'skipped' : 'failed' };
  return {
    ...base,
    rps: rpsCell(row.okRps, row.allOk),
    p99: row.p99ms === null ? '?' : formatMs(row.p99ms),
    served: row.served,
    non2xx: row.non2xx,
    errors: row.errors,
    front: us(row.frontUs),
    python: us(row.pythonUs),
    ratio: row.server.id === 'gatehouse' ? '—' : ratio(find(rows, 'gatehouse', row.app.id, row.workload.id), row),
  };
}

function detailTable(rows: readonly TlsRow[], markdown: boolean): string {
  const head: TlsCells = { ...HEAD, workload: 'workload', rps: 'req/s (2xx)', non2xx: 'non-2xx', front: 'front CPU/answer', python: 'Python CPU/answer' };
  return renderTable(['workload', ...KEYS], head, rows.map((r) => cells(r, rows)), RIGHT, markdown);
}

/** What TLS each server negotiated with h2load, once per distinct answer. */
function negotiatedLine(rows: readonly TlsRow[]): string | null {
  const seen = new Map<string, Set<string>>();
  for (const r of rows) if (r.negotiated) seen.set(r.server.id, (seen.get(r.server.id) ?? new Set()).add(r.negotiated));
  if (seen.size === 0) return null;
  const all = new Set([...seen.values()].flatMap((set) => [...set]));
  return `negotiated with h2load: ${[...seen].map(([id, set]) => `${id} ${[...set].join(' / ')}`).join('; ')}${all.size > 1 ? ' — NOT THE SAME: the servers did not do the same TLS work' : ''}.`;
}

export function section(rows: readonly TlsRow[], apps: readonly AppSpec[], skipped: readonly string[], opts: Options): string[] {
  const item = opts.markdown ? '- ' : '';
  const n = H2_REQUESTS_PER_SECOND * opts.duration;
  const negotiated = negotiatedLine(rows);
  return [
    'TLS and HTTP/2, against nginx + uWSGI (req/s of 2xx answers):',
    '',
    summaryTable(rows, apps, opts.markdown),
    '',
    detailTable(rows, opts.markdown),
    '',
    `${item}Both servers: the same self-signed certificate (RSA 2048, made with openssl at the start of the suite), ${PROCESSES} Python processes, loopback. ` +
      `gatehouse: --workers ${PROCESSES} --certfile --keyfile (h2 offered by ALPN and served by node:http2; HTTP/1.1 clients on the same port read and answered by the front's own HTTP/1.1 reader, as on a plain listener). ` +
      `nginx: worker_processes 1, \`listen 127.0.0.1:PORT ssl http2\`, ssl_protocols TLSv1.2 TLSv1.3 and ssl_prefer_server_ciphers on (as Node: TLS 1.2–1.3, the server's cipher order), keepalive_requests 1000000, uwsgi_pass to a unix socket; uWSGI --processes ${PROCESSES}, its default listen queue (100).`,
    `${item}HTTP/1.1 + TLS: wrk -t1 -c${CONNECTIONS} -d${opts.duration}s --latency over https (wrk offers no ALPN), after a ${WARMUP_SECONDS} s warm-up. ` +
      `h2: h2load -t1 -n ${formatInt(n)} (${formatInt(H2_REQUESTS_PER_SECOND)} per second of --duration) with -c and -m as shown, after the same wrk warm-up and h2load -n ${formatInt(H2_WARMUP_REQUESTS)}; each connection makes n/c of the requests.`,
    `${item}One fresh server per run${opts.repeat > 1 ? `; each row the median of ${opts.repeat} runs by req/s of 2xx answers (range in brackets), the other columns the median run's` : ''}.`,
    `${item}req/s (2xx): wrk: of 2xx/3xx answers (wrk does not split them); h2: 2xx answers over h2load's "finished in". p99: wrk: of every answer; h2: of the 2xx answers, from h2load --log-file. ` +
      `non-2xx: wrk's "Non-2xx or 3xx responses"; h2load's 3xx/4xx/5xx counts; with their share of all requests. errors: wrk's socket errors; h2: requests with no answer (errored, timed out or never done). Any non-2xx or error flags the row (FLAGGED) and its ratio.`,
    `${item}connections served: wrk: ${SERVED_LEGEND.replace(/^connections served: /, '')} h2: the slowest connection's req/s (h2load's "req/s" line) under ${SERVED_SHARE * 100}% of the mean = STARVED (with a fixed count per connection a starved one makes the run longer, not faster).`,
    `${item}CPU/answer: CPU time of the front (gatehouse's node process, nginx's processes) and of the Python processes (gatehouse's workers, uWSGI's) per answer, from /proc between two samples: wrk 40% and 80% into the run (at wrk's mean rate), h2load at its "10% done" and "90% done" lines (80% of the requests). An answer is any status: a 502 costs less than a 200.`,
    `${item}h2, 200 streams: 4 connections × 50 streams. nginx opens an upstream connection per stream; uWSGI's listen queue (100) overflows and nginx answers 502 at once to those that do not fit (its error log: "Resource temporarily unavailable"). gatehouse queues requests for its workers (--queue-size 1024).`,
    ...(negotiated === null ? [] : [`${item}${negotiated}`]),
    ...skipped.map((s) => `${item}${s}`),
    ...noteLines(
      rows.map((r) => ({ ...r, app: { id: `${r.app.id}, ${r.workload.title}` } })),
      ', tls',
      opts.markdown,
    ),
  ];
}
