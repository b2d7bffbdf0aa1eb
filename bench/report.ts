/**
 * What the benchmark prints. Progress goes to stderr so that stdout (the
 * results: table, legend, notes, worker cost), plain text or Markdown, can be
 * pasted as it is.
 */
import { cpus, release } from 'node:os';
import type { Row } from './bench-row.js';
import { SERVED_SHARE, type ConnectionVerdict } from './connection-check.js';
import { formatCpu, PROCESS_NAMES, usCell, usPerAnswer } from './cpu-usage.js';
import type { Options } from './options.js';
import { PROCESSES, PYTHON, WAITRESS_THREADS, type Versions } from './servers.js';
import type { WorkerCost } from './worker-cost.js';
import { closesWithoutNotice, CONNECTIONS, okRps, socketErrorCount, WARMUP_SECONDS, type WrkResult } from './wrk.js';

export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export const formatInt = (n: number) => Math.round(n).toLocaleString('en-US');

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 100) return `${ms.toFixed(2)} ms`;
  return `${ms.toFixed(0)} ms`;
}

/** The load of a main-table row, for the sections' lines: "wrk -t1 -c50 -d10s --latency". */
export const wrkCommand = (opts: Options) => `wrk -t1 -c${CONNECTIONS} -d${opts.duration}s --latency`;

/** The machine, the load and the software: printed first to stderr, then above the table. */
export function headerLines(opts: Options, versions: Versions): string[] {
  const cpu = cpus();
  return [
    `gatehouse benchmark: ${new Date().toISOString()}, ${cpu.length} CPU(s) (${cpu[0]?.model.trim() ?? '?'}), Linux ${release()}`,
    `wrk ${versions.wrk}: ${wrkCommand(opts)}, after a ${WARMUP_SECONDS} s warm-up${opts.repeat > 1 ? `; each row the median of ${opts.repeat} runs (range in brackets)` : ''}${opts.suites.has('wsgi') ? `; ${PROCESSES} Python processes per server (waitress: 1 process, ${WAITRESS_THREADS} threads)` : ''}; loopback only`,
    `Python ${versions.python} (${PYTHON}), Flask ${versions.flask}, Node ${versions.node}${opts.suites.has('tls') ? `; h2load ${versions.h2load}, OpenSSL ${versions.openssl}` : ''}`,
  ];
}

/** The main table's columns (the tls suite's detail table adds its workload). */
export interface Cells {
  server: string;
  app: string;
  rps: string;
  p99: string;
  served: string;
  non2xx: string;
  errors: string;
  front: string;
  python: string;
  ratio: string;
}

export const HEAD: Cells = {
  server: 'server', app: 'app', rps: 'req/s', p99: 'p99', served: 'connections served', non2xx: 'non-2xx/3xx', errors: 'errors',
  front: 'front CPU/req', python: 'Python CPU/req', ratio: 'gatehouse/peer',
};
export const KEYS: Array<keyof Cells> = ['server', 'app', 'rps', 'p99', 'served', 'non2xx', 'errors', 'front', 'python', 'ratio'];
export const RIGHT = new Set<keyof Cells>(['rps', 'p99', 'non2xx', 'errors', 'front', 'python', 'ratio']);

/** Bad answers as a count (`what`: which, e.g. "5xx"), their share of `all` and the flag any of them raises: "0" for none. */
export function flaggedCount(bad: number, all: number, what = ''): string {
  if (bad === 0) return '0';
  const share = all > 0 ? (bad / all) * 100 : 100;
  return `${formatInt(bad)}${what === '' ? '' : ` ${what}`} (${share < 1 ? share.toFixed(2) : share.toFixed(0)}%) FLAGGED`;
}

/** The main table's non-2xx/3xx cell for a wrk run. */
export const wrkNon2xx = (w: WrkResult) => flaggedCount(w.non2xx3xx, w.requests);

/** The main table's errors cell for a wrk run. */
export const wrkErrors = (w: WrkResult) => formatInt(socketErrorCount(w)) + (closesWithoutNotice(w) ? ' (EOF)' : '');

/** A req/s cell: with the range of all runs in brackets when there were several. */
export const rpsCell = (rps: number, all: readonly number[]) => formatInt(rps) + (all.length > 1 ? ` (${formatInt(Math.min(...all))}–${formatInt(Math.max(...all))})` : '');

/** The cells of a row that has no figures (skipped or failed): only its req/s cell says which. */
export const BLANK_CELLS = { p99: '', served: '', non2xx: '', errors: '', front: '', python: '', ratio: '' } as const;

/** A target line: "WHAT 1.05×, target ≥ 1×: met" (or MISSED). */
export const targetVerdict = (what: string, ratio: number, target: number) => `${what} ${ratio.toFixed(2)}×, target ≥ ${target}×: ${ratio >= target ? 'met' : 'MISSED'}.`;

/** The connection check's verdict as a cell: "50/50", "2/50 STARVED", "?" when it did not run. */
export function servedCell(conn: ConnectionVerdict | null): string {
  if (conn === null) return '?';
  let served = `${conn.served}/${CONNECTIONS}`;
  if (conn.served < CONNECTIONS) served += ' STARVED';
  if (!conn.reliable) served += ` ? (saw ${conn.seen})`;
  return served;
}

/** `rows`: for gatehouse's req/s on the same app. */
function cells(row: Row, rows: readonly Row[]): Cells {
  const base = { server: row.server.label, app: row.app.id };
  if (row.skipped !== null) return { ...base, ...BLANK_CELLS, rps: 'skipped' };
  const w = row.wrk;
  if (w === null) return { ...base, ...BLANK_CELLS, rps: 'failed' };
  const served = servedCell(row.conn);
  let ratio = '';
  const gh = rows.find((r) => r.server.id === 'gatehouse' && r.app.id === row.app.id && r.wrk !== null);
  if (row.server.id === 'gatehouse') ratio = '—';
  else if (gh?.wrk && okRps(w) > 0) {
    ratio = `${(okRps(gh.wrk) / okRps(w)).toFixed(2)}×`;
    if (row.server.control) ratio += ' (control)';
    else if (row.conn && row.conn.served < CONNECTIONS) ratio += ' (peer starved)';
    if (gh.wrk.non2xx3xx > 0 || w.non2xx3xx > 0) ratio += ' (non-2xx/3xx)';
  }
  // CPU between the run's two samples, over its answers per second.
  const names = row.server.cpuNames ?? PROCESS_NAMES[row.server.id];
  const perAnswer = (list: string | undefined) => (list === undefined ? '' : usCell(sumOrNull(list.split('+').map((name) => usPerAnswer(row.cpu, name, w.rps)))));
  const front = perAnswer(names?.front);
  const python = perAnswer(names?.python);
  return { ...base, rps: rpsCell(okRps(w), row.allRps), p99: formatMs(w.p99ms), served, non2xx: wrkNon2xx(w), errors: wrkErrors(w), front, python, ratio };
}

/** The sum; null when any is unknown. */
const sumOrNull = (list: ReadonlyArray<number | null>) => (list.includes(null) ? null : (list as number[]).reduce((a, b) => a + b, 0));

/** A table of `rows` in the main table's layout (the static suite's too); `head` renames columns. */
export function rowsTable(rows: readonly Row[], markdown: boolean, head: Partial<Cells> = {}): string {
  return renderTable(KEYS, { ...HEAD, ...head }, rows.map((r) => cells(r, rows)), RIGHT, markdown);
}

/** A row's result as soon as it is known, with what the final table leaves out. */
export function rowProgress(row: Row, rows: readonly Row[]): void {
  const c = cells(row, rows);
  const conn = row.conn
    ? ` (saw ${row.conn.seen}: ${row.conn.kept} open at both reads, ${row.conn.starved} of them starved, bytes each ${formatInt(row.conn.minBytes)}..${formatInt(row.conn.maxBytes)}; ${row.conn.renewed} reopened)`
    : '';
  const all = row.wrk && row.wrk.non2xx3xx > 0 ? ` (${formatInt(row.wrk.rps)} with the non-2xx/3xx)` : '';
  progress(`   ${c.rps} req/s${all}, p99 ${c.p99}, served ${c.served}${conn}, non-2xx/3xx ${c.non2xx}, errors ${c.errors}`);
  if (row.cpu) progress(`   ${formatCpu(row.cpu)}`);
  notesProgress(row.notes);
}

/** A row's notes, as progress lines. */
export function notesProgress(notes: readonly string[]): void {
  for (const n of notes) progress(`   ! ${n}`);
}

/** A table as aligned text (the `right` columns right-aligned) or as Markdown. */
export function renderTable<K extends string>(keys: readonly K[], head: Readonly<Record<K, string>>, body: ReadonlyArray<Readonly<Record<K, string>>>, right: ReadonlySet<K>, markdown: boolean): string {
  if (markdown) {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const line = (c: Readonly<Record<K, string>>) => `| ${keys.map((k) => esc(c[k])).join(' | ')} |`;
    return [line(head), `|${keys.map((k) => (right.has(k) ? '---:' : '---')).join('|')}|`, ...body.map(line)].join('\n');
  }
  const width = (k: K) => Math.max(head[k].length, ...body.map((c) => c[k].length));
  const line = (c: Readonly<Record<K, string>>) => keys.map((k) => (right.has(k) ? c[k].padStart(width(k)) : c[k].padEnd(width(k)))).join('  ').trimEnd();
  return [line(head), keys.map((k) => '-'.repeat(width(k))).join('  '), ...body.map(line)].join('\n');
}

/** "Notes:" and each row's notes, after a blank line; none when no row has notes. `what` follows "SERVER × APP". */
export function noteLines(rows: ReadonlyArray<{ server: { label: string }; app: { id: string }; notes: readonly string[] }>, what: string, markdown: boolean): string[] {
  const lines = rows.flatMap((r) => r.notes.map((n) => `${markdown ? '- ' : '  '}${r.server.label} × ${r.app.id}${what}: ${n}`));
  return lines.length > 0 ? ['', 'Notes:', ...lines] : [];
}

/** What a suite of main-table rows prints: its title and table, then as list items its `lines` (targets, load, setup), the legends and the skipped servers, then the rows' notes (`what` follows "SERVER × APP"). */
export function rowsSection(opts: Options, title: string, table: string, lines: readonly string[], skipped: readonly string[], rows: readonly Row[], what: string): string[] {
  const item = opts.markdown ? '- ' : '';
  return [title, '', table, '', ...[...lines, SERVED_LEGEND, NON2XX_LEGEND, ...skipped].map((l) => `${item}${l}`), ...noteLines(rows, what, opts.markdown)];
}

export const NON2XX_LEGEND = `req/s: of 2xx/3xx answers only (wrk's req/s × its requests less its "Non-2xx or 3xx responses", over its requests), so a server answering errors fast does not look fast; non-2xx/3xx: that count of wrk's (4xx and 5xx answers), with its share of all answers; any at all flags the row (FLAGGED) and its gatehouse/peer ratio ("(non-2xx/3xx)").`;

export const SERVED_LEGEND = `connections served: ${CONNECTIONS} minus the starved wrk connections: those open at two reads of the kernel's socket table (40% and 80% into the run) that received under ${SERVED_SHARE * 100}% of the mean bytes in between; under ${CONNECTIONS}/${CONNECTIONS} = STARVED, and its req/s is not comparable.`;

function legend(rows: readonly Row[], repeat: number): string[] {
  return [
    SERVED_LEGEND,
    NON2XX_LEGEND,
    `errors: wrk's socket errors (connect, read, write, timeout); "(EOF)": all of them are read errors, one per request, from a server that closes each connection after a complete response without "Connection: close" (not failed requests). gatehouse/peer: gatehouse's req/s over the peer's, same app.`,
    `front CPU/req and Python CPU/req: CPU time (user + system, all threads) of the front's processes (gatehouse's node, nginx, Varnish's) and of the Python processes (gatehouse's workers, uWSGI) between the run's two samples (40% and 80% into it), over wrk's answers per second. A server without a front (uWSGI --http-socket, gunicorn, waitress, uvicorn...) has no front cell: its Python processes speak HTTP themselves, and the Python cell is its whole cost.`,
    `gunicorn sync and uWSGI --http-socket close the connection after each response (wrk reconnects); gatehouse, nginx and waitress keep connections alive. nginx: worker_processes 1, keepalive_requests 1000000, uwsgi_pass to a unix socket.`,
    repeat > 1
      ? `req/s: the median of ${repeat} runs, each with a fresh server, run in rounds (each server once per app, then again), so that the servers compared share the machine's moments; p99, connections and errors are the median run's.`
      : `Single runs: on the 2-core machine runs of the same row differ by up to ±15%; use --repeat 3 (or BENCH_REPEAT=3) for numbers to publish.`,
    ...(rows.some((r) => r.server.control) ? [`control: uWSGI --http11-socket keeps connections alive but serves only a few of them (DESIGN.md): it must show STARVED; if it does not, the connection check is broken.`] : []),
  ];
}

function workerCostTable(cost: WorkerCost, markdown: boolean): string[] {
  const lines: string[] = [];
  if (markdown) {
    lines.push('| app | app alone (prebuilt environ) | worker.handle(), wrk GET (Host only) | worker.handle(), 8-header GET | worker overhead (wrk GET) | iterations |');
    lines.push('|---|---:|---:|---:|---:|---:|');
  } else {
    lines.push(`${'app'.padEnd(6)}  ${'app alone'.padStart(10)}  ${'handle(), wrk GET'.padStart(17)}  ${'handle(), 8 headers'.padStart(19)}  ${'overhead'.padStart(9)}  iterations  response frames`);
  }
  const us = (n: number) => `${n.toFixed(2)} µs`;
  for (const [name, a] of Object.entries(cost.apps)) {
    if (markdown) {
      lines.push(`| ${name} | ${us(a.app_us)} | ${us(a.handle_wrk_us)} | ${us(a.handle_browser_us)} | ${us(a.handle_wrk_us - a.app_us)} | ${formatInt(a.iterations)} |`);
    } else {
      lines.push(
        `${name.padEnd(6)}  ${us(a.app_us).padStart(10)}  ${us(a.handle_wrk_us).padStart(17)}  ${us(a.handle_browser_us).padStart(19)}  ${us(a.handle_wrk_us - a.app_us).padStart(9)}  ${formatInt(a.iterations).padStart(10)}  ${a.frames}`,
      );
    }
  }
  for (const [name, why] of Object.entries(cost.skipped)) lines.push(`${name}: skipped: ${why}`);
  return lines;
}

/** What the wsgi suite measured. */
export interface WsgiResults {
  rows: readonly Row[];
  skippedServers: readonly string[];
  /** The reload-under-load table and its legend (empty when not run). */
  reloadSection: readonly string[];
  /** null when not measured, a string when it failed. */
  cost: WorkerCost | string | null;
}

/** The results, to stdout: the header, the wsgi suite's (`wsgi`, null when not run), then the other suites' `sections`. */
export function printReport(opts: Options, header: readonly string[], wsgi: WsgiResults | null, sections: ReadonlyArray<readonly string[]>): void {
  say('');
  if (opts.markdown) say(`_${header.join(' · ')}_`);
  else for (const h of header) say(h);
  if (wsgi !== null) printWsgi(opts, wsgi);
  for (const lines of sections) {
    say('');
    for (const l of lines) say(l);
  }
}

function printWsgi(opts: Options, { rows, skippedServers, reloadSection, cost }: WsgiResults): void {
  const item = (line: string) => say(opts.markdown ? `- ${line}` : line);
  say('');
  say(rowsTable(rows, opts.markdown));
  say('');
  for (const l of legend(rows, opts.repeat)) item(l);
  for (const s of skippedServers) item(s);
  for (const l of noteLines(rows, '', opts.markdown)) say(l);
  if (reloadSection.length > 0) {
    say('');
    for (const l of reloadSection) say(l);
  }
  if (cost === null) return;
  say('');
  if (typeof cost === 'string') {
    say(`Per-request cost inside the Python worker: ${cost}`);
    return;
  }
  say(`Per-request cost inside the Python worker (python/gatehouse_worker.py Worker.handle() on a REQ payload as the front builds it, frames discarded; Python ${cost.python}, best of ${Object.values(cost.apps)[0]?.rounds ?? '?'} interleaved rounds):`);
  say('');
  for (const l of workerCostTable(cost, opts.markdown)) say(l);
}
