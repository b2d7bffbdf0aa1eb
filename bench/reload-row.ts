/**
 * Reload under load: the hello app on gatehouse and on gunicorn sync (the
 * servers whose ServerSpec says how they reload), loaded by the same wrk run
 * as the main table while the server gets its graceful-reload signal
 * (SIGHUP) every RELOAD_EVERY_SECONDS. A graceful reload boots new workers
 * and retires the old ones after their current requests, so no request
 * should fail: the row shows req/s, p99, the failed requests (wrk's
 * non-2xx/3xx responses plus socket errors) and the reloads the server's log
 * says completed. One run per server, on a fresh server (server-run.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { busyMachineNote, cpuReport, cpuSample, runGroups } from './cpu-usage.js';
import type { Options } from './options.js';
import { formatInt, formatMs, noteLines, notesProgress, progress, renderTable } from './report.js';
import { withServer } from './server-run.js';
import type { AppSpec, ServerSpec } from './servers.js';
import { CONNECTIONS, errorCount, okRps, startWrk, WARMUP_SECONDS, wrkNotes, type WrkResult } from './wrk.js';

export const RELOAD_EVERY_SECONDS = 2;
/** The app the reload rows run: the cheapest, so that the reloads weigh most. */
const APP_ID = 'hello';

type Reload = NonNullable<ServerSpec['reload']>;

export interface ReloadRow {
  server: ServerSpec;
  app: AppSpec;
  wrk: WrkResult | null;
  /** Reload signals sent while wrk ran. */
  sent: number;
  /** Reloads completed, as the server's log tells. */
  completed: number;
  notes: string[];
}

/**
 * The reload rows of the chosen servers that can reload (a missing server is
 * already reported in the main table), on the hello app; none with
 * --no-reload, or when --only or --apps leaves out both.
 */
export async function runReloadRows(chosen: readonly ServerSpec[], apps: readonly AppSpec[], opts: Options): Promise<ReloadRow[]> {
  if (!opts.reload) return [];
  const app = apps.find((a) => a.id === APP_ID);
  const servers = chosen.flatMap((s) => (s.reload !== undefined && s.missing() === null ? [{ server: s, reload: s.reload }] : []));
  if (app === undefined || servers.length === 0) {
    progress(`-- reload under load: not run (it needs the ${APP_ID} app and a server that reloads, gatehouse or gunicorn, among those chosen)`);
    return [];
  }
  const rows: ReloadRow[] = [];
  for (const { server, reload } of servers) {
    progress(`-- reload under load: ${server.label} × ${app.id}, ${reload.signal} every ${RELOAD_EVERY_SECONDS} s ...`);
    const row = await reloadRow(server, reload, app, opts);
    const c = cells(row);
    progress(`   ${c.rps} req/s, p99 ${c.p99}, failed ${c.failed}, reloads ${c.reloads}`);
    notesProgress(row.notes);
    rows.push(row);
  }
  return rows;
}

async function reloadRow(server: ServerSpec, reload: Reload, app: AppSpec, opts: Options): Promise<ReloadRow> {
  const row: ReloadRow = { server, app, wrk: null, sent: 0, completed: 0, notes: [] };
  const log = await withServer(server, app, opts, `${server.id}-${app.id}-reload`, row.notes, async (port, procs) => {
    const target = procs[procs.length - 1]!; // the process owning the port
    const { proc: wrk, done } = startWrk(port, opts.duration);
    const started = Date.now();
    const first = cpuSample(runGroups(procs, wrk));
    for (let t = RELOAD_EVERY_SECONDS; t < opts.duration; t += RELOAD_EVERY_SECONDS) {
      await Promise.race([sleep(Math.max(0, started + t * 1000 - Date.now())), wrk.exited]);
      if (!wrk.running || !target.running) break;
      target.signal(reload.signal);
      row.sent++;
    }
    const { result, out } = await done;
    // The second sample after wrk ends: the server's processes then, the last reload's workers included.
    const cpu = cpuReport(first, cpuSample(runGroups(procs, wrk)));
    row.wrk = result;
    row.notes.push(...wrkNotes(result, out));
    const busy = busyMachineNote(cpu, cpu.visibleOtherPct);
    if (busy !== null) row.notes.push(busy);
    for (const p of procs) if (!p.running) row.notes.push(`${p.name} died during the run (code ${p.exitCode}, signal ${p.exitSignal})`);
  });
  row.completed = reload.completed(log);
  if (row.completed !== row.sent && row.wrk !== null) {
    row.notes.push(`${row.sent} ${reload.signal} sent, ${row.completed} reload(s) completed (${reload.counted})`);
  }
  return row;
}

interface Cells {
  server: string;
  app: string;
  reloads: string;
  rps: string;
  p99: string;
  failed: string;
}

const HEAD: Cells = { server: 'server', app: 'app', reloads: 'reloads', rps: 'req/s', p99: 'p99', failed: 'failed requests' };
const KEYS: Array<keyof Cells> = ['server', 'app', 'reloads', 'rps', 'p99', 'failed'];
const RIGHT = new Set<keyof Cells>(['reloads', 'rps', 'p99', 'failed']);

function cells(row: ReloadRow): Cells {
  const base = { server: row.server.label, app: row.app.id, reloads: `${row.completed}/${row.sent}` };
  if (row.wrk === null) return { ...base, rps: 'failed', p99: '', failed: '' };
  const non = row.wrk.non2xx3xx > 0 ? ` (${formatInt(row.wrk.non2xx3xx)} non-2xx/3xx)` : '';
  return { ...base, rps: formatInt(okRps(row.wrk)), p99: formatMs(row.wrk.p99ms), failed: formatInt(errorCount(row.wrk)) + non };
}

/** The rows' table, its legend and notes, as lines for stdout; none when no row ran. */
export function reloadSection(rows: readonly ReloadRow[], opts: Options): string[] {
  if (rows.length === 0) return [];
  const counted = rows.flatMap((r) => (r.server.reload ? [`${r.server.id}: ${r.server.reload.counted}`] : [])).join('; ');
  const legend =
    `wrk -t1 -c${CONNECTIONS} -d${opts.duration}s --latency (after a ${WARMUP_SECONDS} s warm-up, one run per server) while the server gets SIGHUP every ${RELOAD_EVERY_SECONDS} s, a graceful reload; ` +
    `req/s: of 2xx/3xx answers; failed requests: wrk's non-2xx/3xx responses (their count in brackets) plus socket errors; reloads: completed/sent, completed as the log tells (${counted}).`;
  const item = opts.markdown ? '- ' : '';
  return ['Reload under load:', '', renderTable(KEYS, HEAD, rows.map(cells), RIGHT, opts.markdown), '', `${item}${legend}`, ...noteLines(rows, ', reload under load', opts.markdown)];
}
