/**
 * A server's life around one measurement: start it on a free loopback port,
 * wait until it answers 200, warm it up, hand it to the measurement, stop it,
 * and check that none of its processes is left and its log holds no errors.
 * Each step has a time limit; what goes wrong becomes a note. The warm-up
 * loads the app's path (AppSpec.path).
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Options } from './options.js';
import { firstLine, makeTempDir, Proc, removeTempDir, runCommand } from './processes.js';
import type { AppSpec, Launch, ServerSpec } from './servers.js';
import { WARMUP_SECONDS, wrkArgs } from './wrk.js';

/** The measurement: the server's port and processes (in start order: back ends first, the one owning the port last). */
export type Measure = (port: number, procs: readonly Proc[]) => Promise<void>;

/**
 * Runs `measure` against a fresh `server` with `app`, pushing onto `notes`
 * whatever went wrong around it; `logName`: the log's name under --logs.
 * Returns the server's whole log.
 */
export async function withServer(server: ServerSpec, app: AppSpec, opts: Options, logName: string, notes: string[], measure: Measure): Promise<string> {
  const tmp = makeTempDir(`gatehouse-bench-${server.id}-${app.id}-`);
  const log = join(tmp, 'server.log');
  const procs: Proc[] = [];
  try {
    const port = await freePort();
    const launches = server.launch(app, port, tmp);
    await start(launches, log, procs);
    const notReady = await waitReady(port, server.tls === true, procs, 30000);
    if (notReady !== null) {
      notes.push(`did not start: ${notReady}`);
    } else {
      const warm = await runCommand('wrk (warm-up)', 'wrk', wrkArgs(port, WARMUP_SECONDS, false, app.path, server.tls, app.wrkThreads), (WARMUP_SECONDS + 30) * 1000);
      if (warm.code !== 0) notes.push(`warm-up wrk failed: ${firstLine(warm.out)}`);
      await measure(port, procs);
    }
    // Front first, back ends last: the reverse order of start.
    for (let i = procs.length - 1; i >= 0; i--) {
      const problems = await procs[i]!.stop(launches[i]!.stopSignal);
      notes.push(...problems.map((p) => `stop: ${p}`));
    }
    for (const p of procs) {
      if (p.exitCode !== null && p.exitCode !== 0 && notReady === null) notes.push(`${p.name} exited with code ${p.exitCode} after its stop signal`);
    }
    // nginx writes its errors (a 502's cause) to its own file: checked and kept with the rest
    for (const l of launches) for (const f of l.logFiles ?? []) if (existsSync(f)) appendFileSync(log, `==> ${l.name}: ${f}\n${readFileSync(f, 'utf8')}`);
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    const bad = text.split('\n').filter((l) => !l.startsWith('==> ') && server.problemLines.test(l));
    if (bad.length > 0) {
      notes.push(`${bad.length} problem line(s) in the server's log, first: ${bad.slice(0, 3).map((l) => JSON.stringify(l.slice(0, 200))).join(', ')}`);
    }
    if (notReady !== null) notes.push(`server log tail:\n${text.trim().split('\n').slice(-15).join('\n')}`);
    return text;
  } finally {
    for (const p of procs) await p.stop('SIGKILL', 2000); // those an error left running
    if (opts.logs !== null && existsSync(log)) keepLog(log, opts.logs, logName);
    removeTempDir(tmp);
  }
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

/** The status of GET /, 0 when there is no answer; over `tls`, any certificate (the bench's own is self-signed). */
function getStatus(port: number, tls: boolean): Promise<number> {
  return new Promise((resolve) => {
    const get = tls ? httpsGet : httpGet;
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Waits until GET / answers 200 (the app is imported and serving); null then, else why not. */
async function waitReady(port: number, tls: boolean, procs: readonly Proc[], timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    for (const p of procs) if (!p.running) return `${p.name} exited (code ${p.exitCode}, signal ${p.exitSignal}) before answering`;
    last = await getStatus(port, tls);
    if (last === 200) return null;
    await sleep(100);
  }
  return `no 200 from ${tls ? 'https' : 'http'}://127.0.0.1:${port} within ${timeoutMs / 1000} s (last status ${last || 'none: no connection'})`;
}
