/**
 * The slowloris suite: does a slow-headers attack hurt the real users? On a
 * fresh server with the flask app, wrk runs once alone, then again while a
 * client process (slowloris-client.ts) keeps N connections sending request
 * headers one byte per second, reopening those the server closes. The attack
 * starts early enough that with a short header timeout (10 s) the server
 * closes (and the attacker reopens) its connections in the middle of the
 * second run. Target: p99 under attack within 2× of p99 alone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { busyMachineNote, cpuReport, cpuSample, formatCpu, runGroups } from './cpu-usage.js';
import { clientEvent, countEstablished, startClient, waitForEvent, withFdLimits } from './front-servers.js';
import type { Options } from './options.js';
import type { Proc } from './processes.js';
import { formatInt, formatMs, noteLines, notesProgress, progress, renderTable } from './report.js';
import { withServer } from './server-run.js';
import { APPS, gatehouseServer, nginxUwsgiServer, PROCESSES, type ServerSpec, type Versions } from './servers.js';
import { CONNECTIONS, startWrk, WARMUP_SECONDS, wrkNotes, type WrkResult } from './wrk.js';

/** Seconds the attack runs before wrk's second run, at least. */
const LEAD_SECONDS = 5;

/** Longest lead: a longer header timeout (the default, 60 s) does not fire during the run. */
const MAX_LEAD_SECONDS = 15;

/** The lead: long enough that the first header timeouts fall halfway into the run, unless that takes over MAX_LEAD_SECONDS. */
function leadSeconds(headerTimeout: number, duration: number): number {
  const toMiddle = headerTimeout - duration / 2;
  return toMiddle <= MAX_LEAD_SECONDS ? Math.max(LEAD_SECONDS, toMiddle) : LEAD_SECONDS;
}
export const P99_TARGET = 2;

interface AttackEnd {
  open: number;
  opened: number;
  closedByServer: number;
  connectFailures: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
}

export interface SlowRow {
  server: ServerSpec;
  /** The header timeout, as the table shows it. */
  timeout: string;
  /** Seconds the attack ran before the second wrk run. */
  lead: number;
  alone: WrkResult | null;
  attacked: WrkResult | null;
  /** The attacker's established connections halfway through the attacked run (ss). */
  slowOpen: number | null;
  attack: AttackEnd | null;
  notes: string[];
}

async function slowRow(server: ServerSpec, headerTimeout: number, timeout: string, opts: Options): Promise<SlowRow> {
  const n = opts.slowConnections;
  const lead = leadSeconds(headerTimeout, opts.duration);
  const row: SlowRow = { server, timeout, lead, alone: null, attacked: null, slowOpen: null, attack: null, notes: [] };
  const app = APPS.find((a) => a.id === 'flask')!;
  await withServer(withFdLimits(server, n + 1000), app, opts, `${server.id}-slowloris-${timeout.split(' ')[0]}`, row.notes, async (port, procs) => {
    const alone = await measuredRun(port, procs, opts.duration, null);
    row.alone = alone.wrk;
    row.notes.push(...alone.notes.map((s) => `alone: ${s}`));
    const attacker = startClient('slowloris-client', ['--port', String(port), '--count', String(n), '--max-seconds', String(opts.duration + lead + 60)], n + 1000);
    try {
      const ready = await waitForEvent<{ seconds: number }>(attacker, 'ready', 30000);
      if (ready.value === null) row.notes.push(`the attack did not reach ${n} open connections (${ready.why}); measured anyway`);
      else progress(`   ${formatInt(n)} slow connections open in ${ready.value.seconds.toFixed(1)} s`);
      await sleep(lead * 1000);
      const attacked = await measuredRun(port, procs, opts.duration, attacker, async () => {
        const mid = await countEstablished(port, 'dport', attacker.pid);
        if (typeof mid === 'string') row.notes.push(mid);
        else row.slowOpen = mid;
      });
      row.attacked = attacked.wrk;
      row.notes.push(...attacked.notes.map((s) => `under attack: ${s}`));
      if (!attacker.running) row.notes.push(`the attacker exited early: ${attacker.output.trim().slice(-300)}`);
    } finally {
      await attacker.stop('SIGTERM', 10000);
      row.attack = clientEvent<AttackEnd>(attacker, 'end');
    }
    for (const p of procs) if (!p.running) row.notes.push(`${p.name} died during the run`);
  });
  const a = row.attack;
  if (a !== null && (a.connectFailures > 0 || Object.keys(a.errors).length > 0)) {
    row.notes.push(`attacker: ${a.connectFailures} failed connection attempts; errors ${JSON.stringify(a.errors)}`);
  }
  return row;
}

/**
 * One wrk run, with the CPU accounting's two samples (at 20% and 80% of it, the attacker counted as
 * ours) and `halfway` called in between; notes: wrk's errors and a busy machine.
 */
async function measuredRun(port: number, procs: readonly Proc[], seconds: number, attacker: Proc | null, halfway?: () => Promise<void>): Promise<{ wrk: WrkResult | null; notes: string[] }> {
  const { proc: wrk, done } = startWrk(port, seconds);
  const started = Date.now();
  const at = (share: number) => sleep(Math.max(0, started + share * seconds * 1000 - Date.now()));
  const groups = () => [...runGroups(procs, wrk), ...(attacker === null ? [] : [{ label: 'attacker', pids: attacker.members() }])];
  await at(0.2);
  const first = cpuSample(groups());
  await at(0.5);
  if (halfway) await halfway();
  await at(0.8);
  const cpu = cpuReport(first, cpuSample(groups()));
  const { result, out } = await done;
  const busy = busyMachineNote(cpu, cpu.otherPct);
  progress(`   ${formatCpu(cpu)}`);
  return { wrk: result, notes: [...wrkNotes(result, out), ...(busy === null ? [] : [busy])] };
}

/** The rows: gatehouse with the default and a 10 s header timeout, then nginx + uWSGI likewise (unless --only leaves them out). */
export async function runSlowlorisSuite(versions: Versions, opts: Options): Promise<string[]> {
  // Room for the slow connections plus wrk's and their upstream connections: nginx's default 1024 is not.
  const nginx = { workerConnections: Math.max(1024, opts.slowConnections + 4 * CONNECTIONS + 100) };
  const variants: Array<{ server: ServerSpec; seconds: number; timeout: string }> = [
    { server: gatehouseServer(versions, PROCESSES), seconds: 60, timeout: '60 s (default)' },
    { server: gatehouseServer(versions, PROCESSES, ['--header-timeout', '10']), seconds: 10, timeout: '10 s' },
    { server: nginxUwsgiServer(versions, nginx), seconds: 60, timeout: '60 s (default)' },
    { server: nginxUwsgiServer(versions, { ...nginx, http: ['client_header_timeout 10s;'] }), seconds: 10, timeout: '10 s' },
  ].filter((v) => opts.only === null || opts.only.has(v.server.id));
  const rows: SlowRow[] = [];
  const skipped = new Set<string>();
  for (const { server, seconds, timeout } of variants) {
    const missing = server.missing();
    if (missing !== null) {
      skipped.add(`${server.label}: skipped: ${missing}`);
      continue;
    }
    progress(`-- slowloris: ${server.label}, header timeout ${timeout}, ${formatInt(opts.slowConnections)} slow connections ...`);
    const row = await slowRow(server, seconds, timeout, opts);
    const c = cells(row);
    progress(`   alone ${c.rpsAlone} req/s, p99 ${c.p99Alone}; attacked ${c.rpsAttacked} req/s, p99 ${c.p99Attacked} (${c.p99Ratio}); slow open ${c.slowOpen}, closed by server ${c.closed}`);
    notesProgress(row.notes);
    rows.push(row);
  }
  return section(rows, [...skipped], opts);
}

interface Cells {
  server: string;
  timeout: string;
  rpsAlone: string;
  rpsAttacked: string;
  rpsRatio: string;
  p99Alone: string;
  p99Attacked: string;
  p99Ratio: string;
  slowOpen: string;
  closed: string;
}

/** What the server sent before closing: ' (2,000× 408)', ' (no response)' or nothing when it closed none. */
function closedHow(attack: AttackEnd): string {
  const statuses = Object.entries(attack.statuses);
  if (statuses.length > 0) return ` (${statuses.map(([s, k]) => `${formatInt(k)}× ${s}`).join(', ')})`;
  return attack.closedByServer > 0 ? ' (no response)' : '';
}

function cells(row: SlowRow): Cells {
  const { alone, attacked, attack } = row;
  const ratio = (x: number, y: number) => (y > 0 ? `${(x / y).toFixed(2)}×` : '?');
  const p99Ratio = alone && attacked ? ratio(attacked.p99ms, alone.p99ms) : '';
  return {
    server: row.server.label,
    timeout: row.timeout,
    rpsAlone: alone ? formatInt(alone.rps) : 'failed',
    rpsAttacked: attacked ? formatInt(attacked.rps) : 'failed',
    rpsRatio: alone && attacked ? ratio(attacked.rps, alone.rps) : '',
    p99Alone: alone ? formatMs(alone.p99ms) : '',
    p99Attacked: attacked ? formatMs(attacked.p99ms) : '',
    p99Ratio: p99Ratio === '' || !alone || !attacked ? p99Ratio : `${p99Ratio}${attacked.p99ms > P99_TARGET * alone.p99ms ? ' MISSED' : ''}`,
    slowOpen: row.slowOpen === null ? '?' : formatInt(row.slowOpen),
    closed: attack ? `${formatInt(attack.closedByServer)}${closedHow(attack)}` : '?',
  };
}

function section(rows: readonly SlowRow[], skipped: readonly string[], opts: Options): string[] {
  const head: Cells = {
    server: 'server',
    timeout: 'header timeout',
    rpsAlone: 'req/s alone',
    rpsAttacked: 'req/s attacked',
    rpsRatio: 'attacked/alone',
    p99Alone: 'p99 alone',
    p99Attacked: 'p99 attacked',
    p99Ratio: `p99 × (target ≤ ${P99_TARGET}×)`,
    slowOpen: 'slow conns open',
    closed: 'closed by server',
  };
  const keys = Object.keys(head) as Array<keyof Cells>;
  const right = new Set<keyof Cells>(['rpsAlone', 'rpsAttacked', 'rpsRatio', 'p99Alone', 'p99Attacked', 'p99Ratio', 'slowOpen', 'closed']);
  const item = opts.markdown ? '- ' : '';
  return [
    'Slowloris (slow request headers) against the flask app:',
    '',
    renderTable(keys, head, rows.map(cells), right, opts.markdown),
    '',
    `${item}On one fresh server per row, after a ${WARMUP_SECONDS} s warm-up: wrk -t1 -c${CONNECTIONS} -d${opts.duration}s --latency alone, then again while a separate client process keeps ${formatInt(opts.slowConnections)} connections sending request headers one byte per second (spread over the second) and reopens each one the server closes; the attack starts before that wrk run (${[...new Set(rows.map((r) => r.lead))].join(' or ')} s: so that the first 10 s header timeouts fall halfway into the run; a 60 s timeout does not fire during it) and stops after it. ` +
      `slow conns open: the attacker's established connections halfway through the attacked run (ss); closed by server: over the whole attack, with the status lines the server sent first.`,
    `${item}gatehouse: --workers ${PROCESSES}, --header-timeout as shown. nginx + uWSGI: as in the main table (uWSGI --processes ${PROCESSES}), with worker_connections raised so the slow connections fit, client_header_timeout as shown.`,
    ...skipped.map((s) => `${item}${s}`),
    ...noteLines(rows.map((r) => ({ ...r, app: { id: `flask, header timeout ${r.timeout}` } })), ', slowloris', opts.markdown),
  ];
}
