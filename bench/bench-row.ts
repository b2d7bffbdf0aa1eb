/**
 * One row of the results: one server with one app. Start the server on a free
 * loopback port, wait until it answers 200, warm up, run wrk (taking the
 * connection check's and the CPU accounting's two reads while it runs), stop
 * the server and check that none of its processes is left and its log holds
 * no errors. Each step has a time limit.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { judgeConnections, readClientSockets, type ConnectionVerdict } from './connection-check.js';
import { cpuReport, cpuSample, OTHER_CPU_LIMIT, type CpuReport } from './cpu-usage.js';
import type { Options } from './options.js';
import { firstLine, makeTempDir, Proc, removeTempDir, runCommand } from './processes.js';
import { formatInt, formatMs, progress } from './report.js';
import type { AppSpec, Launch, ServerSpec } from './servers.js';
import { closesWithoutNotice, CONNECTIONS, errorCount, parseWrk, WARMUP_SECONDS, wrkArgs, type WrkResult } from './wrk.js';

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
  /** req/s of every run, when the row was run more than once. */
  allRps: number[];
}

export function emptyRow(server: ServerSpec, app: AppSpec, skipped: string | null = null): Row {
  return { server, app, wrk: null, conn: null, cpu: null, notes: [], skipped, allRps: [] };
}

/** opts.repeat runs; the median by req/s stands for the row, with the range of all runs. */
export async function benchRow(server: ServerSpec, app: AppSpec, opts: Options): Promise<Row> {
  const runs: Row[] = [];
  for (let i = 0; i < opts.repeat; i++) {
    const r = await benchWithRetry(server, app, opts);
    if (opts.repeat > 1) progress(`   run ${i + 1}/${opts.repeat}: ${r.wrk ? `${formatInt(r.wrk.rps)} req/s, p99 ${formatMs(r.wrk.p99ms)}` : 'failed'}${r.conn ? `, served ${r.conn.served}/${CONNECTIONS}` : ''}`);
    runs.push(r);
  }
  const ok = runs.filter((r) => r.wrk !== null).sort((a, b) => a.wrk!.rps - b.wrk!.rps);
  if (runs.length === 1 || ok.length === 0) return runs[0]!;
  const median = ok[Math.floor((ok.length - 1) / 2)]!;
  median.allRps = ok.map((r) => r.wrk!.rps);
  for (const [i, r] of runs.entries()) {
    if (r === median) continue;
    for (const note of r.notes) median.notes.push(`run ${i + 1}: ${note}`);
    if (r.conn !== null && r.conn.served < CONNECTIONS) median.notes.push(`run ${i + 1}: served only ${r.conn.served}/${CONNECTIONS} connections`);
  }
  if (ok.length < runs.length) median.notes.push(`${runs.length - ok.length} of ${runs.length} runs failed`);
  return median;
}

/** One run, run again once when other processes took CPU during it (the cleaner of the two is kept). */
async function benchWithRetry(server: ServerSpec, app: AppSpec, opts: Options): Promise<Row> {
  const row = await benchOnce(server, app, opts);
  if (!opts.retry || row.cpu === null || row.cpu.otherPct <= OTHER_CPU_LIMIT) return row;
  progress(`   (${row.wrk ? formatInt(row.wrk.rps) : '?'} req/s, but other processes took ${row.cpu.otherPct.toFixed(0)}% of a core during the run: running it again)`);
  await sleep(3000);
  const again = await benchOnce(server, app, opts);
  if (again.cpu !== null && again.cpu.otherPct < row.cpu.otherPct) {
    again.notes.unshift(`run twice: other processes took ${row.cpu.otherPct.toFixed(0)}% of a core during the first run; this is the second`);
    return again;
  }
  row.notes.unshift('run twice: other processes took CPU both times; this is the first run');
  return row;
}

async function benchOnce(server: ServerSpec, app: AppSpec, opts: Options): Promise<Row> {
  const row = emptyRow(server, app);
  const tmp = makeTempDir(`gatehouse-bench-${server.id}-${app.id}-`);
  const log = join(tmp, 'server.log');
  const procs: Proc[] = [];
  try {
    const port = await freePort();
    const launches = server.launch(app, port, tmp);
    await start(launches, log, procs);
    const notReady = await waitReady(port, procs, 30000);
    if (notReady !== null) row.notes.push(`did not start: ${notReady}`);
    else await warmUpAndMeasure(row, port, procs, opts.duration);
    // Front first, back ends last: the reverse order of start.
    for (let i = procs.length - 1; i >= 0; i--) {
      const problems = await procs[i]!.stop(launches[i]!.stopSignal);
      row.notes.push(...problems.map((p) => `stop: ${p}`));
    }
    for (const p of procs) {
      if (p.exitCode !== null && p.exitCode !== 0 && notReady === null) row.notes.push(`${p.name} exited with code ${p.exitCode} after its stop signal`);
    }
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    const bad = text.split('\n').filter((l) => !l.startsWith('==> ') && server.problemLines.test(l));
    if (bad.length > 0) {
      row.notes.push(`${bad.length} problem line(s) in the server's log, first: ${bad.slice(0, 3).map((l) => JSON.stringify(l.slice(0, 200))).join(', ')}`);
    }
    if (notReady !== null) row.notes.push(`server log tail:\n${text.trim().split('\n').slice(-15).join('\n')}`);
  } finally {
    for (const p of procs) await p.stop('SIGKILL', 2000); // those an error left running
    if (opts.logs !== null && existsSync(log)) keepLog(log, opts.logs, `${server.id}-${app.id}`);
    removeTempDir(tmp);
  }
  return row;
}

/** Starts the processes in order, each logging to `log`, and adds them to `procs` as they start. */
async function start(launches: readonly Launch[], log: string, procs: Proc[]): Promise<void> {
  for (const l of launches) {
    writeFileSync(log, `==> ${l.name}: ${l.cmd} ${l.args.join(' ')}\n`, { flag: 'a' });
    procs.push(new Proc(l.name, l.cmd, l.args, { cwd: l.cwd, logFile: log }));
    if (l.waitForPath !== undefined) {
      // e.g. nginx answers 502 until uWSGI listens: wait for the back end's socket first
      const until = Date.now() + 20000;
      while (!existsSync(l.waitForPath) && Date.now() < until && procs.every((p) => p.running)) await sleep(50);
    }
  }
}

/** DIR/NAME.log, or DIR/NAME-2.log and on when the row ran more than once. */
function keepLog(log: string, dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  let path = join(dir, `${name}.log`);
  for (let n = 2; existsSync(path); n++) path = join(dir, `${name}-${n}.log`);
  copyFileSync(log, path);
}

async function warmUpAndMeasure(row: Row, port: number, procs: readonly Proc[], seconds: number): Promise<void> {
  const warm = await runCommand('wrk (warm-up)', 'wrk', wrkArgs(port, WARMUP_SECONDS, false), (WARMUP_SECONDS + 30) * 1000);
  if (warm.code !== 0) row.notes.push(`warm-up wrk failed: ${firstLine(warm.out)}`);
  const m = await measure(port, seconds, procs);
  row.wrk = m.wrk;
  row.conn = m.conn;
  row.cpu = m.cpu;
  if (m.cpu.otherPct > OTHER_CPU_LIMIT) {
    const top = m.cpu.others.map(([name, p]) => `${name} ${p.toFixed(0)}%`).join(', ');
    row.notes.push(`other processes on this machine used ${m.cpu.otherPct.toFixed(0)}% of a core during the run (${top}): its numbers are skewed`);
  }
  if (m.wrk === null) row.notes.push(`could not read wrk's output: ${m.wrkOut.trim().replace(/\s+/g, ' ').slice(0, 300)}`);
  if (m.connError !== null) row.notes.push(`connection check failed: ${m.connError}`);
  if (m.conn && !m.conn.reliable) row.notes.push(`the connection check saw only ${m.conn.seen} of wrk's ${CONNECTIONS} connections: its verdict is unreliable`);
  if (m.wrk && errorCount(m.wrk) > 0) {
    const s = m.wrk.socketErrors;
    row.notes.push(
      `wrk: ${m.wrk.non2xx3xx} non-2xx/3xx responses; socket errors: connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}` +
        (closesWithoutNotice(m.wrk)
          ? ` (read errors ≈ requests: the server closes each connection after a complete response without sending "Connection: close", and wrk counts each such close as a read error)`
          : ''),
    );
  }
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
async function measure(port: number, seconds: number, serverProcs: readonly Proc[]): Promise<Measurement> {
  const wrk = new Proc('wrk', 'wrk', wrkArgs(port, seconds, true), { capture: true });
  const limit = setTimeout(() => wrk.killGroup('SIGKILL'), (seconds + 30) * 1000);
  const started = Date.now();
  const groups = () => [
    ...serverProcs.map((p) => ({ label: '', pids: p.members() })),
    { label: 'wrk', pids: wrk.members() },
    { label: 'bench', pids: [process.pid] },
  ];
  const readAt = async (share: number) => {
    const wait = started + share * seconds * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    const cpu = cpuSample(groups());
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
  await wrk.exited;
  clearTimeout(limit);
  await wrk.stop('SIGKILL', 1000);
  return { wrk: parseWrk(wrk.output), wrkOut: wrk.output, conn, connError, cpu: cpuReport(first.cpu, second.cpu) };
}

/** A free loopback port (bound by the kernel, then released for the server). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The status of GET /, 0 when there is no answer. */
function getStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Waits until GET / answers 200 (the app is imported and serving); null then, else why not. */
async function waitReady(port: number, procs: readonly Proc[], timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    for (const p of procs) if (!p.running) return `${p.name} exited (code ${p.exitCode}, signal ${p.exitSignal}) before answering`;
    last = await getStatus(port);
    if (last === 200) return null;
    await sleep(100);
  }
  return `no 200 from 127.0.0.1:${port} within ${timeoutMs / 1000} s (last status ${last || 'none: no connection'})`;
}
