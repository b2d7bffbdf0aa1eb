/**
 * The tls suite: gatehouse against nginx + uWSGI over TLS, both with the same
 * self-signed certificate (made with openssl at the start, in a temporary
 * directory) and 2 Python processes, on the hello and flask apps, in three
 * workloads:
 *
 * - HTTP/1.1 over TLS: wrk -t1 -c50 keep-alive, run as a main-table row
 *   (bench-row.ts: the connection check, the CPU accounting, --repeat, the
 *   retry). wrk offers no ALPN, so both servers speak HTTP/1.1.
 * - h2: h2load -c10 -m5, -n scaled with the duration (40,000 for 10 s).
 * - h2 with 200 concurrent streams: h2load -c4 -m50. nginx passes each
 *   stream to uWSGI on a connection of its own, uWSGI's listen queue (100)
 *   overflows and nginx answers 502 to the streams that do not fit; gatehouse
 *   queues them for its workers. The counts of non-2xx answers show it.
 *
 * Every row counts non-2xx answers and unanswered requests, and its req/s is
 * that of 2xx answers, so a server answering 502s fast does not look fast.
 * Each row is the median of --repeat runs, each on a fresh server. The rows
 * and workloads are tls-rows.ts's, the section of the report tls-report.ts's.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { benchRows, inRounds, medianRun, retryWhenBusy, type Row } from './bench-row.js';
import { SERVED_SHARE } from './connection-check.js';
import { busyMachineNote, cpuReport, cpuSample, formatCpu, PROCESS_NAMES, runGroups, usPerAnswer, type CpuReport } from './cpu-usage.js';
import { H2_WARMUP_REQUESTS, h2loadArgs, h2loadLimitMs, non2xx, ok2xxRps, startH2load, unanswered, waitProgress, type H2Load, type H2Result } from './h2load.js';
import type { Options } from './options.js';
import { firstLine, makeTempDir, removeTempDir, runCommand, type Proc } from './processes.js';
import { flaggedCount, formatInt, formatMs, notesProgress, progress, rowProgress, servedCell, wrkErrors, wrkNon2xx } from './report.js';
import { withServer } from './server-run.js';
import { APPS, gatehouseServer, nginxUwsgiServer, PROCESSES, type AppSpec, type ServerSpec, type Versions } from './servers.js';
import { chosenServers, flaskMissing, rowPlan, skippedServers } from './suite-rows.js';
import { section } from './tls-report.js';
import { emptyTlsRow, H2_REQUESTS_PER_SECOND, WORKLOADS, type TlsRow, type Workload } from './tls-rows.js';
import { okRps } from './wrk.js';

// ---------------------------------------------------------------- the certificate

/**
 * A self-signed certificate for localhost and 127.0.0.1 (RSA 2048, as most
 * sites still use) in a new temporary directory, readable by nginx's worker
 * (nobody) and by gatehouse; the directory is removed on exit.
 */
async function makeCertificate(): Promise<{ dir: string; certfile: string; keyfile: string }> {
  const dir = makeTempDir('gatehouse-bench-tls-');
  chmodSync(dir, 0o755);
  const certfile = join(dir, 'cert.pem');
  const keyfile = join(dir, 'key.pem');
  const r = await runCommand('openssl', 'openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyfile, '-out', certfile,
  ], 60000);
  if (r.code !== 0 || !existsSync(certfile) || !existsSync(keyfile)) throw new Error(`openssl could not make the certificate: ${r.out.trim().slice(-300)}`);
  chmodSync(keyfile, 0o644);
  return { dir, certfile, keyfile };
}

// ---------------------------------------------------------------- rows

/** The HTTP/1.1 + TLS rows of `servers`: main-table rows (wrk over https, in rounds) made into TlsRows. */
async function wrkRows(servers: readonly ServerSpec[], app: AppSpec, workload: Workload, opts: Options): Promise<TlsRow[]> {
  const plans = servers.map((server) => rowPlan('tls', server, app, `${app.id} × ${workload.title}`, `tls-${server.id}-${app.id}-${workload.id}`));
  const rows = await benchRows(plans, opts, (r) => rowProgress(r, [r]));
  return rows.map((r) => wrkRow(r, workload));
}

/** A main-table row as a TlsRow. */
function wrkRow(r: Row, workload: Workload): TlsRow {
  const { server, app } = r;
  const row = emptyTlsRow(server, app, workload);
  row.notes = r.notes;
  const w = r.wrk;
  if (w === null) return row;
  const names = PROCESS_NAMES[server.id]!;
  Object.assign(row, {
    okRps: okRps(w),
    answerRps: w.rps,
    p99ms: w.p99ms,
    bad: w.non2xx3xx,
    unanswered: 0,
    served: servedCell(r.conn),
    non2xx: wrkNon2xx(w),
    errors: wrkErrors(w),
    // the CPU window is 40–80% into the run; wrk's mean rate stands for that window's
    frontUs: usPerAnswer(r.cpu, names.front, w.rps),
    pythonUs: usPerAnswer(r.cpu, names.python, w.rps),
    allOk: r.allRps,
  });
  return row;
}

/** One h2load run on a fresh server. */
interface H2Run {
  result: H2Result | null;
  cpu: CpuReport | null;
  /** Answers per second between the CPU samples. */
  windowRps: number;
  notes: string[];
}

async function h2Once(server: ServerSpec, app: AppSpec, load: H2Load, opts: Options, logName: string, dir: string): Promise<H2Run> {
  const run: H2Run = { result: null, cpu: null, windowRps: 0, notes: [] };
  const logFile = join(dir, `h2load-${process.pid}-${Date.now()}.log`);
  try {
    await withServer(server, app, opts, logName, run.notes, async (port, procs) => {
      const url = `https://127.0.0.1:${port}${app.path ?? '/'}`;
      // withServer warmed the app up over HTTP/1.1; this warms the front's h2 code too
      const warm = { ...load, requests: Math.min(H2_WARMUP_REQUESTS, load.requests) };
      const w = await runCommand('h2load (warm-up)', 'h2load', h2loadArgs(url, warm), h2loadLimitMs(warm));
      if (w.code !== 0) run.notes.push(`warm-up h2load failed: ${firstLine(w.out)}`);
      await measureH2(run, url, load, procs, logFile);
    });
  } finally {
    rmSync(logFile, { force: true });
  }
  return run;
}

/**
 * The measured run, with the CPU samples at h2load's "10% done" and "90%
 * done" lines: 80% of the requests answered in between, away from the
 * connects and the tail.
 */
async function measureH2(run: H2Run, url: string, load: H2Load, procs: readonly Proc[], logFile: string): Promise<void> {
  const { proc, done } = startH2load(url, load, logFile);
  let first: { at: number; sample: ReturnType<typeof cpuSample> } | null = null;
  if (await waitProgress(proc, 10)) first = { at: Date.now(), sample: cpuSample(runGroups(procs, proc)) };
  if (first !== null && (await waitProgress(proc, 90))) {
    const second = cpuSample(runGroups(procs, proc));
    run.cpu = cpuReport(first.sample, second);
    run.windowRps = (0.8 * load.requests) / run.cpu.seconds;
  }
  const { result, out } = await done;
  run.result = result;
  for (const p of procs) if (!p.running) run.notes.push(`${p.name} died during the run (code ${p.exitCode}, signal ${p.exitSignal})`);
  if (result === null) {
    run.notes.push(`could not read h2load's output: ${out.trim().replace(/\s+/g, ' ').slice(-300)}`);
    return;
  }
  if (result.protocol !== 'h2') run.notes.push(`h2load negotiated ${result.protocol ?? 'no protocol'}, not h2`);
  if (run.cpu === null) run.notes.push('no CPU figures: h2load did not report its 10% and 90% progress');
  else {
    const busy = busyMachineNote(run.cpu, run.cpu.otherPct);
    if (busy !== null) run.notes.push(busy);
  }
  const s = result.status;
  if (non2xx(result) > 0 || unanswered(result) > 0) {
    run.notes.push(
      `h2load: ${formatInt(s.s2xx)} 2xx, ${formatInt(s.s3xx)} 3xx, ${formatInt(s.s4xx)} 4xx, ${formatInt(s.s5xx)} 5xx of ${formatInt(result.requests)} requests; ` +
        `${formatInt(result.failed)} failed, ${formatInt(result.errored)} errored, ${formatInt(result.timedOut)} timed out`,
    );
  }
  const c = result.clientRps;
  if (c !== null && c.min < SERVED_SHARE * c.mean) run.notes.push(`the slowest h2 connection made ${formatInt(c.min)} req/s against a mean of ${formatInt(c.mean)}: starved`);
}

/** The h2 rows of `servers`: opts.repeat runs each, in rounds; the median by req/s of 2xx answers stands for a row. */
async function h2Rows(servers: readonly ServerSpec[], app: AppSpec, workload: Workload & { kind: 'h2' }, opts: Options, dir: string): Promise<TlsRow[]> {
  const load: H2Load = { clients: workload.clients, streams: workload.streams, requests: H2_REQUESTS_PER_SECOND * opts.duration };
  return inRounds(servers.length, opts.repeat, async (k, round) => {
    const server = servers[k]!;
    progress(`-- tls: ${server.label} × ${app.id} × ${workload.title}${opts.repeat > 1 ? ` (run ${round}/${opts.repeat})` : ''} ...`);
    const run = await retryWhenBusy(opts, () => h2Once(server, app, load, opts, `tls-${server.id}-${app.id}-${workload.id}`, dir), () => '');
    progress(`   ${run.result ? h2Summary(run.result) : 'failed'}`);
    if (run.cpu) progress(`   ${formatCpu(run.cpu)}`);
    return run;
  }, (k, runs) => {
    const row = h2Row(servers[k]!, app, workload, load, runs);
    notesProgress(row.notes);
    return row;
  });
}

/** An h2 row of its runs. */
function h2Row(server: ServerSpec, app: AppSpec, workload: Workload & { kind: 'h2' }, load: H2Load, runs: readonly H2Run[]): TlsRow {
  const { median, ok, others } = medianRun(runs, (r) => (r.result === null ? null : ok2xxRps(r.result)));
  const row = emptyTlsRow(server, app, workload);
  row.notes.push(...median.notes, ...others);
  const h = median.result;
  if (h === null) return row;
  const names = PROCESS_NAMES[server.id]!;
  const bad = non2xx(h);
  const lost = unanswered(h);
  const c = h.clientRps;
  Object.assign(row, {
    okRps: ok2xxRps(h),
    answerRps: h.seconds > 0 ? (h.status.s2xx + bad) / h.seconds : 0,
    p99ms: h.p99ms,
    bad,
    unanswered: lost,
    served: c === null ? '?' : c.min < SERVED_SHARE * c.mean ? 'STARVED' : `${load.clients}/${load.clients}`,
    non2xx: h2Non2xx(h),
    errors: lost === 0 ? '0' : `${formatInt(lost)} FLAGGED`,
    frontUs: usPerAnswer(median.cpu, names.front, median.windowRps),
    pythonUs: usPerAnswer(median.cpu, names.python, median.windowRps),
    allOk: runs.length > 1 ? ok.map((r) => ok2xxRps(r.result!)) : [],
    negotiated: [h.protocol, h.tls, h.cipher].filter((x) => x !== null).join(', '),
  });
  return row;
}

/** "0", or the non-2xx answers with their classes ("227 5xx", "3 4xx + 227 5xx"), their share of all requests and FLAGGED. */
function h2Non2xx(h: H2Result): string {
  const classes = (['s3xx', 's4xx', 's5xx'] as const).filter((k) => h.status[k] > 0);
  if (classes.length === 1) return flaggedCount(non2xx(h), h.requests, classes[0]!.slice(1));
  return flaggedCount(non2xx(h), h.requests, `(${classes.map((k) => `${k.slice(1)} ${formatInt(h.status[k])}`).join(', ')})`);
}

function h2Summary(h: H2Result): string {
  const s = h.status;
  return (
    `${formatInt(ok2xxRps(h))} req/s of 2xx (h2load: ${formatInt(h.rps)} req/s, ${formatInt(h.done)}/${formatInt(h.requests)} done in ${h.seconds.toFixed(2)} s), ` +
    `2xx ${formatInt(s.s2xx)}, 3xx ${formatInt(s.s3xx)}, 4xx ${formatInt(s.s4xx)}, 5xx ${formatInt(s.s5xx)}, failed ${formatInt(h.failed)}, errored ${formatInt(h.errored)}, timeout ${formatInt(h.timedOut)}; ` +
    `p99 (2xx) ${h.p99ms === null ? '?' : formatMs(h.p99ms)}, mean ${formatMs(h.meanMs)}, max ${formatMs(h.maxMs)}` +
    (h.clientRps ? `; per connection ${formatInt(h.clientRps.min)}..${formatInt(h.clientRps.mean)} req/s (min..mean)` : '') +
    `; ${[h.protocol, h.tls, h.cipher].filter((x) => x !== null).join(', ')}`
  );
}

// ---------------------------------------------------------------- the suite

/** Runs the rows, app by app, workload by workload, the servers' runs in rounds (gatehouse, then nginx + uWSGI); the section's lines for stdout. */
export async function runTlsSuite(versions: Versions, opts: Options): Promise<string[]> {
  const cert = await makeCertificate();
  try {
    const files = { certfile: cert.certfile, keyfile: cert.keyfile };
    const specs: ServerSpec[] = [
      { ...gatehouseServer(versions, PROCESSES, ['--certfile', cert.certfile, '--keyfile', cert.keyfile], '--certfile --keyfile'), tls: true },
      {
        ...nginxUwsgiServer(versions, { tls: files }),
        label: `nginx ${versions.nginx} (1 worker, listen ssl http2) + uWSGI (uwsgi_pass, --processes ${PROCESSES})`,
        tls: true,
      },
    ];
    const apps = APPS.filter((a) => opts.apps === null || opts.apps.has(a.id));
    const chosen = chosenServers(specs, opts);
    const rows: TlsRow[] = [];
    for (const app of apps) {
      for (const workload of WORKLOADS) {
        const runnable = chosen.filter((server) => server.missing() === null);
        const appMissing = flaskMissing(app);
        if (appMissing !== null) rows.push(...runnable.map((server) => emptyTlsRow(server, app, workload, appMissing)));
        else if (workload.kind === 'wrk') rows.push(...(await wrkRows(runnable, app, workload, opts)));
        else rows.push(...(await h2Rows(runnable, app, workload, opts, cert.dir)));
      }
    }
    return section(rows, apps, skippedServers(chosen), opts);
  } finally {
    removeTempDir(cert.dir);
  }
}
