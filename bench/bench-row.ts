/**
 * One row of the results: one server with one app, on a fresh server
 * (server-run.ts): run wrk, taking the connection check's and the CPU
 * accounting's two reads while it runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { judgeConnections, readClientSockets, type ConnectionVerdict } from './connection-check.js';
import { busyMachineNote, cpuReport, cpuSample, loadBoundNote, OTHER_CPU_LIMIT, runGroups, type CpuReport } from './cpu-usage.js';
import type { Options } from './options.js';
import type { Proc } from './processes.js';
import { formatInt, formatMs, progress } from './report.js';
import { withServer } from './server-run.js';
import type { AppSpec, ServerSpec } from './servers.js';
import { CONNECTIONS, okRps, startWrk, wrkNotes, type WrkResult } from './wrk.js';

export interface Row {
  server: ServerSpec;
  app: AppSpec;
  wrk: WrkResult | null;
  conn: ConnectionVerdict | null;
  cpu: CpuReport | null;
  /** Anything that went wrong or looked odd, for the notes under the table. */
  notes: string[];
  /** Why the row was not run. */
  skipped: string | null;
  /** req/s (of 2xx/3xx answers) of every run, when the row was run more than once. */
  allRps: number[];
}

export function emptyRow(server: ServerSpec, app: AppSpec, skipped: string | null = null): Row {
  return { server, app, wrk: null, conn: null, cpu: null, notes: [], skipped, allRps: [] };
}

/** One row to run: its server and app, its progress lines' name (`what`) and its logs' name. */
export interface RowPlan {
  server: ServerSpec;
  app: AppSpec;
  what: string;
  logName: string;
}

/**
 * Runs each plan's row opts.repeat times, each run on a fresh server, round by round (every row once,
 * then every row again): this VM's speed drifts by up to 2× within minutes, and rows run one after
 * the other compared those minutes as much as the servers; in rounds, the runs of the rows compared
 * with each other fall in the same minutes. The median run by req/s of 2xx/3xx answers stands for
 * each row, with the range of all runs; `done` is called with each row as its last run ends.
 */
export async function benchRows(plans: readonly RowPlan[], opts: Options, done: (row: Row) => void = () => {}): Promise<Row[]> {
  return inRounds(plans.length, opts.repeat, async (k, round) => {
    const { server, app, what, logName } = plans[k]!;
    progress(`-- ${what}${opts.repeat > 1 ? ` (run ${round}/${opts.repeat})` : ''} ...`);
    const r = await retryWhenBusy(opts, () => benchOnce(server, app, opts, logName), (row) => `${row.wrk ? formatInt(okRps(row.wrk)) : '?'} req/s, but `);
    if (opts.repeat > 1) {
      const non = r.wrk && r.wrk.non2xx3xx > 0 ? ` (${formatInt(r.wrk.non2xx3xx)} non-2xx/3xx answers)` : '';
      progress(`   ${r.wrk ? `${formatInt(okRps(r.wrk))} req/s${non}, p99 ${formatMs(r.wrk.p99ms)}` : 'failed'}${r.conn ? `, served ${r.conn.served}/${CONNECTIONS}` : ''}`);
    }
    return r;
  }, (k, runs) => {
    const row = medianRow(runs);
    if (opts.repeat > 1) progress(`   ${plans[k]!.what}: the median of ${opts.repeat} runs`);
    done(row);
    return row;
  });
}

/**
 * Runs `count` rows `repeat` times each, round by round (`once(k, round)`: row k's run); `ended(k, runs)`
 * makes row k of its runs as its last run ends. The rows, in order.
 */
export async function inRounds<Run, Made>(count: number, repeat: number, once: (k: number, round: number) => Promise<Run>, ended: (k: number, runs: Run[]) => Made): Promise<Made[]> {
  const runs: Run[][] = Array.from({ length: count }, () => []);
  const made: Made[] = [];
  for (let round = 1; round <= repeat; round++) {
    for (let k = 0; k < count; k++) {
      runs[k]!.push(await once(k, round));
      if (round === repeat) made[k] = ended(k, runs[k]!);
    }
  }
  return made;
}

/** The median run by req/s of 2xx/3xx answers, with every run's req/s and the other runs' notes. */
function medianRow(runs: readonly Row[]): Row {
  const { median, ok, others } = medianRun(runs, (r) => (r.wrk === null ? null : okRps(r.wrk)), (r) => [
    ...(r.conn !== null && r.conn.served < CONNECTIONS ? [`served only ${r.conn.served}/${CONNECTIONS} connections`] : []),
    ...(r.wrk !== null && r.wrk.non2xx3xx > 0 ? [`${formatInt(r.wrk.non2xx3xx)} non-2xx/3xx answers`] : []),
  ]);
  if (ok.length > 1) median.allRps = ok.map((r) => okRps(r.wrk!));
  median.notes.push(...others);
  return median;
}

/**
 * The runs that did not fail (`value` null), by `value`; the median of those
 * (the first run when all failed); and what the other runs noted (their notes
 * and `more` of each, as "run N: …"), with how many failed when some did.
 */
export function medianRun<R extends { notes: readonly string[] }>(runs: readonly R[], value: (run: R) => number | null, more: (run: R) => string[] = () => []): { median: R; ok: R[]; others: string[] } {
  const ok = runs.filter((r) => value(r) !== null).sort((a, b) => value(a)! - value(b)!);
  const median = ok[Math.floor((ok.length - 1) / 2)] ?? runs[0]!;
  const others = runs.flatMap((r, i) => (r === median ? [] : [...r.notes, ...more(r)].map((n) => `run ${i + 1}: ${n}`)));
  if (ok.length < runs.length) others.push(`${runs.length - ok.length} of ${runs.length} runs failed`);
  return { median, ok, others };
}

/** One run, run again once when other processes took CPU during it (the cleaner of the two is kept); `said`: the progress line's start. */
export async function retryWhenBusy<R extends { cpu: CpuReport | null; notes: string[] }>(opts: Options, once: () => Promise<R>, said: (run: R) => string): Promise<R> {
  const run = await once();
  if (!opts.retry || run.cpu === null || run.cpu.otherPct <= OTHER_CPU_LIMIT) return run;
  progress(`   (${said(run)}other processes took ${run.cpu.otherPct.toFixed(0)}% of a core during the run: running it again)`);
  await sleep(3000);
  const again = await once();
  if (again.cpu !== null && again.cpu.otherPct < run.cpu.otherPct) {
    again.notes.unshift(`run twice: other processes took ${run.cpu.otherPct.toFixed(0)}% of a core during the first run; this is the second`);
    return again;
  }
  run.notes.unshift('run twice: other processes took CPU both times; this is the first run');
  return run;
}

async function benchOnce(server: ServerSpec, app: AppSpec, opts: Options, logName: string): Promise<Row> {
  const row = emptyRow(server, app);
  await withServer(server, app, opts, logName, row.notes, (port, procs) => measureInto(row, port, procs, opts.duration, app, server.tls === true));
  return row;
}

async function measureInto(row: Row, port: number, procs: readonly Proc[], seconds: number, app: AppSpec, tls: boolean): Promise<void> {
  const threads = app.wrkThreads ?? 1;
  const m = await measure(port, seconds, procs, app.path, tls, threads);
  row.wrk = m.wrk;
  row.conn = m.conn;
  row.cpu = m.cpu;
  const busy = busyMachineNote(m.cpu, m.cpu.otherPct);
  if (busy !== null) row.notes.push(busy);
  const bound = loadBoundNote(m.cpu, 'wrk', threads);
  if (bound !== null) row.notes.push(bound);
  if (m.connError !== null) row.notes.push(`connection check failed: ${m.connError}`);
  if (m.conn && !m.conn.reliable) row.notes.push(`the connection check saw only ${m.conn.seen} of wrk's ${CONNECTIONS} connections: its verdict is unreliable`);
  row.notes.push(...wrkNotes(m.wrk, m.wrkOut));
}

/** wrk plus the two reads at 40% and 80% of the run. */
interface Measurement {
  wrk: WrkResult | null;
  wrkOut: string;
  conn: ConnectionVerdict | null;
  connError: string | null;
  cpu: CpuReport;
}

/** Nothing else runs while wrk does, but the server, the two short `ss` calls and the /proc reads. */
async function measure(port: number, seconds: number, serverProcs: readonly Proc[], path: string | undefined, tls: boolean, threads: number): Promise<Measurement> {
  const { proc: wrk, done } = startWrk(port, seconds, path, tls, threads);
  const started = Date.now();
  const readAt = async (share: number) => {
    const wait = started + share * seconds * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    const cpu = cpuSample(runGroups(serverProcs, wrk));
    return { cpu, sockets: await readClientSockets(port) };
  };
  const first = await readAt(0.4);
  const second = await readAt(0.8);
  let conn: ConnectionVerdict | null = null;
  let connError: string | null = null;
  if (typeof first.sockets === 'string') connError = first.sockets;
  else if (typeof second.sockets === 'string') connError = second.sockets;
  else if (!wrk.running) connError = 'wrk ended before the connection check';
  else conn = judgeConnections(first.sockets, second.sockets);
  for (const p of serverProcs) if (!p.running) connError = `${p.name} died during the run`;
  const result = await done;
  return { wrk: result.result, wrkOut: result.out, conn, connError, cpu: cpuReport(first.cpu, second.cpu) };
}
