/**
 * The supervisor under load: graceful reloads (SIGHUP, --reload-on-touch,
 * --reload) lose no request and end with new code in new processes; a reload
 * of broken code keeps the old workers; --check-config imports and exits;
 * --max-requests and --max-rss replace workers with no request lost;
 * SIGTTIN/SIGTTOU resize the pool; SIGUSR1 reopens the access log; and none of
 * this leaks file descriptors or Python processes.
 *
 * Each server gets a unique temp directory, passed as --pythonpath (or
 * --chdir), so workerPidsFor(dir) finds exactly that test's Python workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { countMatches, launch, runCli, type Server } from './helpers/launch.js';
import { childPids, isAlive, workerPidsFor } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { describeLoad, failures, startLoad, type LoadRun, type LoadSample } from './helpers/load.js';

const SUP = `${APPS}/supervisor_apps.py`;
const VERSIONED = `${SUP}:versioned`;

function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `gh-sup-${tag}-`));
}

/** `version=V pid=N` → { version, pid }. */
function parseAnswer(body: string): { version: string; pid: number } {
  const m = /^version=(\S+) pid=(\d+)$/.exec(body);
  assert.ok(m, `unexpected body ${JSON.stringify(body)}`);
  return { version: m[1]!, pid: Number(m[2]) };
}

function pidIn(body: string): number {
  const m = /pid=(\d+)/.exec(body);
  assert.ok(m, `no pid in ${JSON.stringify(body)}`);
  return Number(m[1]);
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) : 0;
}

/** Every worker pid the server logged as booted. */
function bootedPids(out: string): number[] {
  return [...out.matchAll(/Booting worker with pid: (\d+)/g)].map((m) => Number(m[1]));
}

/** Resolves once `count(output)` reaches `n`; returns performance.now() at that moment, or throws after `ms`. */
async function waitCount(gh: Server, pattern: RegExp, n: number, ms: number): Promise<number> {
  const ok = await waitUntil(() => countMatches(gh.output(), pattern) >= n, ms);
  assert.ok(ok, `expected ${n} × ${pattern} within ${ms} ms, got ${countMatches(gh.output(), pattern)}; output:\n${gh.output()}`);
  return performance.now();
}

async function stopLoad(load: LoadRun | null): Promise<void> {
  if (load === null) return;
  load.stop();
  await load.done;
}

// ------------------------------------------------------------------ leak bookkeeping (test 10)

interface LeakRecord {
  /** Open fds of the gatehouse process after startup and a few requests. */
  fdAtStart: number;
  /** Open fds once the load and the worker churn were over. */
  fdAfter: number;
  /** Most fds seen while the test ran. */
  fdPeak: number;
  /** Python processes that existed during the test (booted workers). */
  workersSeen: number;
  /** Python processes of the test still alive after the server stopped. */
  leftover: number[];
  /** How the server exited. */
  exit: string;
}

const FD_MARGIN = 3;
const leakRecords = new Map<string, LeakRecord>();

/** Tracks the gatehouse process's fds during a test and, at the end, stops the server and looks for leftovers. */
class LeakProbe {
  private fdAtStart = 0;
  private fdPeak = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly name: string,
    private readonly gh: Server,
    private readonly marker: string,
  ) {}

  async begin(): Promise<void> {
    // A few requests first, so lazily opened things (first connection, timers) are counted in the baseline.
    for (let i = 0; i < 3; i++) assert.equal((await request(this.gh.url, `/warmup-${i}`)).status, 200);
    await sleep(200);
    this.fdAtStart = fdCount(this.gh.pid);
    this.fdPeak = this.fdAtStart;
    this.timer = setInterval(() => {
      try {
        this.fdPeak = Math.max(this.fdPeak, fdCount(this.gh.pid));
      } catch {
        // the server is gone
      }
    }, 50);
  }

  /** Call after the load has stopped: waits for the fd count to settle, stops the server, records. */
  async finish(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    let fdAfter = -1;
    let exit = 'not stopped';
    let leftover: number[] = [];
    const seen = new Set([...bootedPids(this.gh.output()), ...workerPidsFor(this.marker)]);
    try {
      if (this.fdAtStart > 0 && isAlive(this.gh.pid)) {
        await waitUntil(() => fdCount(this.gh.pid) <= this.fdAtStart + FD_MARGIN, 3000);
        fdAfter = fdCount(this.gh.pid);
      }
      const code = await this.gh.stop('SIGTERM', 15000);
      exit = `exit code ${code}`;
      await waitUntil(() => workerPidsFor(this.marker).length === 0 && [...seen].every((p) => !isAlive(p)), 1000);
      leftover = [...new Set([...workerPidsFor(this.marker), ...[...seen].filter((p) => isAlive(p))])];
    } finally {
      leakRecords.set(this.name, { fdAtStart: this.fdAtStart, fdAfter, fdPeak: this.fdPeak, workersSeen: seen.size, leftover, exit });
      await this.gh.kill(); // no-op when it stopped; otherwise do not leave anything running
    }
  }
}

// ------------------------------------------------------------------ 1

test('SIGHUP ×3 under load: no request fails, and afterwards only new workers serve the new version', async () => {
  const dir = tempDir('hup');
  const versionFile = join(dir, 'VERSION');
  writeFileSync(versionFile, 'v1');
  const gh = await launch([VERSIONED, '--workers', '2', '--pythonpath', dir], { env: { SUP_VERSION_FILE: versionFile } });
  const probe = new LeakProbe('reload', gh, dir);
  let load: LoadRun | null = null;
  try {
    await probe.begin();
    const answers: Array<{ sentAt: number; version: string; pid: number }> = [];
    const onResponse = (s: LoadSample) => {
      if (s.status === 200) answers.push({ sentAt: s.sentAt, ...parseAnswer(s.body) });
    };
    // Until a second after the last reload (stop() below): a loaded machine reloads slowly.
    load = startLoad({ url: gh.url, concurrency: 8, durationMs: 30000, onResponse });
    await sleep(1000);
    const hupAt: number[] = [];
    const completeAt: number[] = [];
    for (const [i, version] of ['v2', 'v3', 'v4'].entries()) {
      const cycleStart = performance.now();
      writeFileSync(versionFile, version);
      hupAt.push(performance.now());
      process.kill(gh.pid, 'SIGHUP');
      completeAt.push(await waitCount(gh, /Reload complete/, i + 1, 5000));
      await sleep(Math.max(0, 1500 - (performance.now() - cycleStart)));
    }
    await sleep(1000);
    load.stop();
    const result = await load.done;
    load = null;

    assert.equal(failures(result), 0, `every request must get a 200 across three reloads: ${describeLoad(result)}`);
    assert.ok(result.requests > 500, `the load really ran: ${describeLoad(result)}`);
    const out = gh.output();
    assert.equal(countMatches(out, /Reloading \(SIGHUP\)/), 3, `three reloads logged; output:\n${out}`);
    assert.equal(countMatches(out, /Reload failed/), 0);

    const versionsSeen = new Set(answers.map((a) => a.version));
    assert.deepEqual([...versionsSeen].sort(), ['v1', 'v2', 'v3', 'v4'], 'each generation served its own version');

    const lastHup = hupAt[2]!;
    const lastComplete = completeAt[2]!;
    const oldPids = new Set(answers.filter((a) => a.sentAt < lastHup).map((a) => a.pid));
    const after = answers.filter((a) => a.sentAt > lastComplete);
    assert.ok(after.length > 50, `enough requests after the last reload to judge (${after.length})`);
    const stale = after.filter((a) => a.version !== 'v4' || oldPids.has(a.pid));
    assert.equal(stale.length, 0, `after the last reload, every response is v4 from a new worker; stale: ${JSON.stringify(stale.slice(0, 5))}`);
    const current = childPids(gh.pid);
    assert.equal(current.length, 2, `two workers after the reloads: ${current.join(',')}`);
    const newPids = new Set(after.map((a) => a.pid));
    for (const pid of newPids) assert.ok(current.includes(pid), `pid ${pid} that answered after the reload is a current worker (${current.join(',')})`);
    for (const pid of oldPids) assert.ok(await waitUntil(() => !isAlive(pid), 2000), `old worker ${pid} exited`);
  } finally {
    await stopLoad(load);
    await probe.finish();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 2

test('--reload-on-touch: two touches under load reload gracefully and serve the new code', async () => {
  const dir = tempDir('touch');
  const versionFile = join(dir, 'VERSION');
  const touchFile = join(dir, 'reload.touch');
  writeFileSync(versionFile, 't1');
  writeFileSync(touchFile, '');
  const gh = await launch([VERSIONED, '--workers', '2', '--pythonpath', dir, '--reload-on-touch', touchFile], {
    env: { SUP_VERSION_FILE: versionFile },
  });
  let load: LoadRun | null = null;
  try {
    const answers: Array<{ sentAt: number; version: string; pid: number }> = [];
    load = startLoad({
      url: gh.url,
      concurrency: 8,
      durationMs: 5500,
      onResponse: (s) => {
        if (s.status === 200) answers.push({ sentAt: s.sentAt, ...parseAnswer(s.body) });
      },
    });
    await sleep(800);
    let lastComplete = 0;
    let lastTouch = 0;
    for (const [i, version] of ['t2', 't3'].entries()) {
      const cycleStart = performance.now();
      writeFileSync(versionFile, version);
      // A distinct modification time each touch (the watcher compares mtimes).
      const when = new Date(Date.now() + (i + 1) * 1000);
      lastTouch = performance.now();
      utimesSync(touchFile, when, when);
      lastComplete = await waitCount(gh, /Reload complete/, i + 1, 5000);
      await sleep(Math.max(0, 1500 - (performance.now() - cycleStart)));
    }
    await sleep(1000);
    load.stop();
    const result = await load.done;
    load = null;

    assert.equal(failures(result), 0, `no request fails across touch reloads: ${describeLoad(result)}`);
    const out = gh.output();
    assert.equal(countMatches(out, /Reloading \(.*reload\.touch was touched\)/), 2, `two touch reloads logged; output:\n${out}`);
    const oldPids = new Set(answers.filter((a) => a.sentAt < lastTouch).map((a) => a.pid));
    const after = answers.filter((a) => a.sentAt > lastComplete);
    assert.ok(after.length > 50, `enough requests after the last reload (${after.length})`);
    const stale = after.filter((a) => a.version !== 't3' || oldPids.has(a.pid));
    assert.equal(stale.length, 0, `new code from new workers after the touch; stale: ${JSON.stringify(stale.slice(0, 5))}`);
    assert.ok(answers.some((a) => a.version === 't2'), 'the first touch served t2 for a while');
  } finally {
    await stopLoad(load);
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 3

function devApp(version: string): string {
  return [
    '"""Generated by test/supervisor.test.ts (--reload)."""',
    'import os',
    '',
    `VERSION = ${JSON.stringify(version)}`,
    '',
    '',
    'def application(environ, start_response):',
    '    body = ("version=%s pid=%d" % (VERSION, os.getpid())).encode()',
    '    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])',
    '    return [body]',
    '',
  ].join('\n');
}

test('--reload: editing a .py file under load reloads with no failed request; quick edits are debounced', async () => {
  const dir = tempDir('dev');
  const source = join(dir, 'supervisor_dev_app.py');
  writeFileSync(source, devApp('dev-1'));
  const gh = await launch(['supervisor_dev_app:application', '--chdir', dir, '--reload', '--workers', '2']);
  let load: LoadRun | null = null;
  try {
    let latest = '';
    const answers: Array<{ sentAt: number; version: string }> = [];
    load = startLoad({
      url: gh.url,
      concurrency: 8,
      durationMs: 12000,
      onResponse: (s) => {
        if (s.status !== 200) return;
        const { version } = parseAnswer(s.body);
        latest = version;
        answers.push({ sentAt: s.sentAt, version });
      },
    });
    await sleep(700);

    // One edit: new code within a few seconds. (Each version has a different
    // length, so Python's mtime+size .pyc check can never reuse a stale cache.)
    const editAt = performance.now();
    writeFileSync(source, devApp('dev-22'));
    assert.ok(await waitUntil(() => latest === 'dev-22', 5000), `dev-22 served within 5 s of the edit; output:\n${gh.output()}`);
    const firstMs = performance.now() - editAt;
    await waitCount(gh, /Reload complete/, 1, 5000);
    await sleep(500);

    // A burst of quick edits: debounced into fewer reloads.
    const reloadsBefore = countMatches(gh.output(), /Reloading \(/);
    const burst = ['dev-333', 'dev-4444', 'dev-55555', 'dev-666666', 'dev-7777777'];
    for (const v of burst) {
      writeFileSync(source, devApp(v));
      await sleep(50);
    }
    const burstEnd = performance.now();
    assert.ok(await waitUntil(() => latest === 'dev-7777777', 5000), `the last edit is served within 5 s; output:\n${gh.output()}`);
    // Let any reload still under way finish before counting.
    await waitUntil(() => countMatches(gh.output(), /Reload complete/) >= countMatches(gh.output(), /Reloading \(/), 5000);
    await sleep(800);
    const settledAt = performance.now();
    await sleep(500);
    load.stop();
    const result = await load.done;
    load = null;

    const reloads = countMatches(gh.output(), /Reloading \(/) - reloadsBefore;
    assert.ok(reloads >= 1 && reloads < burst.length, `${burst.length} quick edits → between 1 and ${burst.length - 1} reloads, got ${reloads}; output:\n${gh.output()}`);
    assert.equal(failures(result), 0, `no request fails while --reload reloads: ${describeLoad(result)}`);
    assert.match(gh.output(), /Reloading \(supervisor_dev_app\.py changed\)/);
    const late = answers.filter((a) => a.sentAt > settledAt);
    assert.ok(late.length > 20, `requests after the burst settled (${late.length})`);
    assert.ok(late.every((a) => a.version === 'dev-7777777'), 'after the burst only the last edit is served');
    assert.ok(answers.some((a) => a.sentAt > burstEnd && a.version === 'dev-7777777'));
    assert.ok(firstMs < 5000, `first edit served after ${Math.round(firstMs)} ms`);
  } finally {
    await stopLoad(load);
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 4

test('a reload of code that fails to import logs the traceback and keeps the old workers serving, with no respawn loop', async () => {
  const dir = tempDir('broken');
  const versionFile = join(dir, 'VERSION');
  writeFileSync(versionFile, 'good-1');
  const WORKERS = 3;
  const gh = await launch([VERSIONED, '--workers', String(WORKERS), '--pythonpath', dir], { env: { SUP_VERSION_FILE: versionFile } });
  let load: LoadRun | null = null;
  try {
    const original = childPids(gh.pid);
    assert.equal(original.length, WORKERS);
    const answers: Array<{ version: string; pid: number }> = [];
    load = startLoad({
      url: gh.url,
      concurrency: 4,
      durationMs: 4000,
      pauseMs: 2,
      onResponse: (s) => {
        if (s.status === 200) answers.push(parseAnswer(s.body));
      },
    });
    await sleep(500);
    // All new workers fail at the same instant (as when every worker's import
    // times out on the same unreachable database), 0.8 s from now.
    const failAt = (Date.now() + 800) / 1000;
    writeFileSync(versionFile, `broken@${failAt.toFixed(3)}`);
    process.kill(gh.pid, 'SIGHUP');
    await gh.waitFor(/Reload failed/, 5000);
    // Give a respawn loop, if there were one, time to show itself.
    await sleep(2500);
    const result = await load.done;
    load = null;

    const out = gh.output();
    assert.match(
      out,
      /Reload failed[^\n]*\n[^]*Traceback \(most recent call last\):[^]*RuntimeError: supervisor_apps: simulated broken deploy \(VERSION='broken@[\d.]+'\)/,
      `the log has the failure and the Python traceback; output:\n${out}`,
    );
    assert.equal(failures(result), 0, `the old workers keep serving: ${describeLoad(result)}`);
    assert.ok(answers.length > 100, `the load ran (${answers.length} answers)`);
    assert.ok(answers.every((a) => a.version === 'good-1' && original.includes(a.pid)), 'every answer came from the original workers with the old code');
    assert.deepEqual(childPids(gh.pid), original, 'the same workers, nothing new');
    assert.deepEqual(workerPidsFor(dir), original, 'no Python process besides the old workers');
    assert.equal(countMatches(out, /Reload failed/), 1, 'one failure reported, once');
    assert.equal(countMatches(out, /Booting worker with pid/), WORKERS, 'no worker booted since the start');
    assert.equal(countMatches(out, /exited \(failed reload\)/), WORKERS, 'every new worker was stopped');

    // Fixing the code and reloading again works: the pool did not get stuck in "reloading".
    writeFileSync(versionFile, 'good-3');
    process.kill(gh.pid, 'SIGHUP');
    await waitCount(gh, /Reload complete/, 1, 5000);
    const res = await request(gh.url, '/');
    assert.equal(res.status, 200);
    const fixed = parseAnswer(res.body);
    assert.equal(fixed.version, 'good-3');
    assert.ok(!original.includes(fixed.pid));

    // Nothing is retried after an aborted reload, so the log must not say so
    // (nor repeat the traceback once per failed worker).
    assert.deepEqual(
      [...out.matchAll(/^.*failed to boot; retrying with backoff.*$/gm)].map((m) => m[0]),
      [],
      `an aborted reload's other failed workers are not "retried"; output:\n${out}`,
    );
  } finally {
    await stopLoad(load);
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 5

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

test('--check-config: exit 0 and OK for a good app, exit 1 with the traceback for a broken one, never listening', async () => {
  const port = await freePort();
  // The import takes 1.5 s, so we can knock on the port while the check runs.
  const good = runCli(['--check-config', '--bind', `127.0.0.1:${port}`, VERSIONED], { env: { SUP_IMPORT_DELAY: '1.5' } });
  await sleep(700);
  const knock = await tryConnect(port);
  const g = await good;
  assert.equal(g.code, 0, `exit 0 for a good app; stdout:\n${g.stdout}\nstderr:\n${g.stderr}`);
  assert.match(g.stdout, /configuration OK/);
  assert.ok(g.ms >= 1400, `the check really imported the app (${g.ms} ms)`);
  assert.equal(knock, 'ECONNREFUSED', 'nothing listens on --bind during --check-config');
  assert.doesNotMatch(g.stdout + g.stderr, /Listening at/);

  const b = await runCli(['--check-config', '--bind', `127.0.0.1:${port}`, `${APPS}/supervisor_broken.py`]);
  assert.equal(b.code, 1, `exit 1 for a broken app; stdout:\n${b.stdout}\nstderr:\n${b.stderr}`);
  assert.match(b.stderr, /Traceback \(most recent call last\):/);
  assert.match(b.stderr, /RuntimeError: supervisor_broken: cannot reach the database at import/);
  assert.doesNotMatch(b.stdout + b.stderr, /Listening at|configuration OK/);
  assert.ok(await waitUntil(() => workerPidsFor('supervisor_broken.py').length === 0 && workerPidsFor(VERSIONED).length === 0, 1000), 'no Python left');
});

// ------------------------------------------------------------------ 6

test('--max-requests 20 --max-requests-jitter 5 under load: workers are replaced, no request fails, the pool stays at --workers', async () => {
  const dir = tempDir('maxreq');
  const gh = await launch([VERSIONED, '--workers', '2', '--pythonpath', dir, '--max-requests', '20', '--max-requests-jitter', '5']);
  const probe = new LeakProbe('max-requests', gh, dir);
  let load: LoadRun | null = null;
  let sampler: NodeJS.Timeout | null = null;
  try {
    await probe.begin();
    const perPid = new Map<number, number>();
    let maxChildren = 0;
    sampler = setInterval(() => {
      maxChildren = Math.max(maxChildren, childPids(gh.pid).length);
    }, 20);
    load = startLoad({
      url: gh.url,
      concurrency: 8,
      durationMs: 4000,
      onResponse: (s) => {
        if (s.status !== 200) return;
        const pid = parseAnswer(s.body).pid;
        perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
      },
    });
    const result = await load.done;
    load = null;
    clearInterval(sampler);
    sampler = null;

    assert.equal(failures(result), 0, `no request fails while workers are recycled: ${describeLoad(result)}`);
    const out = gh.output();
    const replaced = [...out.matchAll(/Worker \(pid:(\d+)\) served (\d+) requests: replacing it \(--max-requests\)/g)];
    assert.ok(replaced.length >= 4, `workers were replaced (${replaced.length} times); ${describeLoad(result)}`);
    assert.ok(perPid.size >= 4, `responses came from many workers (${perPid.size})`);
    for (const m of replaced) {
      const n = Number(m[2]);
      assert.ok(n >= 20 && n <= 25, `a worker is replaced after 20..25 requests (--max-requests 20 + jitter 5), got ${n}`);
    }
    // A retired worker's replacement boots while it finishes its last request, so for a moment there may be
    // up to one replacement per retiring worker; never more than that.
    assert.ok(maxChildren <= 4, `at most 2 serving workers plus 2 finishing (saw ${maxChildren} Python processes)`);
    // Exactly one new worker per replaced one: the pool stays at --workers.
    const settled = await waitUntil(() => {
      const text = gh.output();
      const n = countMatches(text, /replacing it \(--max-requests\)/);
      return childPids(gh.pid).length === 2 && countMatches(text, /Booting worker with pid/) === 2 + n && countMatches(text, /exited \(max-requests\)/) === n;
    }, 3000);
    assert.ok(
      settled,
      `2 workers, one boot per replacement: children ${childPids(gh.pid).join(',')}, ` +
        `${countMatches(gh.output(), /Booting worker with pid/)} boots, ${countMatches(gh.output(), /replacing it/)} replacements, ` +
        `${countMatches(gh.output(), /exited \(max-requests\)/)} exits`,
    );
    assert.doesNotMatch(out, /died|failed/, 'no worker died or failed');
    // Each worker answers its budget, not its budget plus whatever was pipelined to it.
    const over = [...perPid.entries()].filter(([, n]) => n > 25);
    assert.deepEqual(over, [], `no worker answered more than 25 requests (--max-requests 20 + jitter 5); per worker: ${JSON.stringify([...perPid.values()])}`);
  } finally {
    if (sampler) clearInterval(sampler);
    await stopLoad(load);
    await probe.finish();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 7

test('--max-rss 60: a worker that grows past it is replaced after its request, no request fails, the new worker is small', async () => {
  const dir = tempDir('rss');
  const gh = await launch([`${SUP}:hog`, '--workers', '2', '--pythonpath', dir, '--max-rss', '60']);
  let load: LoadRun | null = null;
  try {
    const original = childPids(gh.pid);
    load = startLoad({ url: gh.url, concurrency: 4, durationMs: 6000, pauseMs: 2, path: '/' });
    await sleep(300);
    const grow = await request(gh.url, '/grow');
    assert.equal(grow.status, 200);
    const grown = pidIn(grow.body);
    assert.match(grow.body, /^grew (\d+)/);
    assert.ok(Number(/^grew (\d+)/.exec(grow.body)![1]) > 60, `the worker really grew: ${grow.body}`);

    await gh.waitFor(new RegExp(`Worker \\(pid:${grown}\\) uses \\d+ MB, over --max-rss 60`), 4000);
    assert.ok(await waitUntil(() => !isAlive(grown), 4000), 'the oversized worker exited');
    assert.ok(
      await waitUntil(() => childPids(gh.pid).length === 2 && !childPids(gh.pid).includes(grown), 4000),
      `replaced: workers now ${childPids(gh.pid).join(',')}`,
    );
    await sleep(500);
    load.stop();
    const result = await load.done;
    load = null;

    assert.equal(failures(result), 0, `no request fails: ${describeLoad(result)}`);
    assert.match(gh.output(), new RegExp(`Worker \\(pid:${grown}\\) exited \\(max-rss\\)`));
    assert.doesNotMatch(gh.output(), /died/);
    const other = original.find((p) => p !== grown)!;
    assert.ok(isAlive(other), 'the other worker was left alone');
    const fresh = childPids(gh.pid).find((p) => !original.includes(p));
    assert.ok(fresh !== undefined, 'a new worker');
    const kb = rssKb(fresh);
    assert.ok(kb > 0 && kb < 40 * 1024, `the new worker is small: ${Math.round(kb / 1024)} MB`);
  } finally {
    await stopLoad(load);
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 8

test('SIGTTIN adds a worker, SIGTTOU removes one, never below one, with no failed request', async () => {
  const dir = tempDir('ttin');
  const gh = await launch([VERSIONED, '--workers', '2', '--pythonpath', dir]);
  let load: LoadRun | null = null;
  try {
    assert.equal(childPids(gh.pid).length, 2);
    load = startLoad({ url: gh.url, concurrency: 4, durationMs: 10000, pauseMs: 5 });

    process.kill(gh.pid, 'SIGTTIN');
    await gh.waitFor(/Number of workers: 3/, 3000);
    assert.ok(await waitUntil(() => childPids(gh.pid).length === 3, 3000), `3 workers: ${childPids(gh.pid).join(',')}`);
    await waitCount(gh, /Booting worker with pid/, 3, 3000);

    process.kill(gh.pid, 'SIGTTOU');
    await gh.waitFor(/Number of workers: 2/, 3000);
    assert.ok(await waitUntil(() => childPids(gh.pid).length === 2, 3000), `2 workers: ${childPids(gh.pid).join(',')}`);
    process.kill(gh.pid, 'SIGTTOU');
    await gh.waitFor(/Number of workers: 1/, 3000);
    assert.ok(await waitUntil(() => childPids(gh.pid).length === 1, 3000), `1 worker: ${childPids(gh.pid).join(',')}`);

    const last = childPids(gh.pid);
    process.kill(gh.pid, 'SIGTTOU');
    await sleep(600);
    assert.deepEqual(childPids(gh.pid), last, 'SIGTTOU at one worker changes nothing');
    assert.doesNotMatch(gh.output(), /Number of workers: 0/);
    load.stop();
    const result = await load.done;
    load = null;
    assert.equal(failures(result), 0, `no request fails while resizing: ${describeLoad(result)}`);
    assert.ok(result.requests > 50);
    const res = await request(gh.url, '/');
    assert.equal(res.status, 200);
    assert.equal(parseAnswer(res.body).pid, last[0]);
    assert.doesNotMatch(gh.output(), /died/);
  } finally {
    await stopLoad(load);
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 9

test('SIGUSR1 reopens --access-log: after a rename, new lines go to a new file, the old one keeps its lines', async () => {
  const dir = tempDir('usr1');
  const log = join(dir, 'access.log');
  const gh = await launch([VERSIONED, '--workers', '1', '--pythonpath', dir, '--access-log', log]);
  const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);
  try {
    for (let i = 0; i < 5; i++) assert.equal((await request(gh.url, `/before-${i}`)).status, 200);
    assert.ok(await waitUntil(() => lines(log).length === 5, 3000), `5 lines written: ${lines(log).length}`);
    renameSync(log, `${log}.1`);
    process.kill(gh.pid, 'SIGUSR1');
    await gh.waitFor(/Reopened log files/, 3000);
    for (let i = 0; i < 5; i++) assert.equal((await request(gh.url, `/after-${i}`)).status, 200);
    assert.ok(await waitUntil(() => lines(log).length === 5, 3000), `a new ${log} with 5 lines; it has ${lines(log).length}`);

    const fresh = lines(log);
    const rotated = lines(`${log}.1`);
    assert.ok(fresh.every((l) => /"GET \/after-\d HTTP\/1\.1" 200 /.test(l)), `the new file has only the new requests:\n${fresh.join('\n')}`);
    assert.equal(rotated.length, 5, `the rotated file keeps its 5 lines:\n${rotated.join('\n')}`);
    assert.ok(rotated.every((l) => /"GET \/before-\d HTTP\/1\.1" 200 /.test(l)), `the rotated file has only the old requests:\n${rotated.join('\n')}`);
  } finally {
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the front\'s signals sent to the workers too, as `pkill -f gatehouse` or `systemctl kill` sends them, neither end nor stop them', async () => {
  const gh = await launch([VERSIONED, '--workers', '1']);
  try {
    const workers = childPids(gh.pid);
    assert.equal(workers.length, 1);
    for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTTIN', 'SIGTTOU'] as const) process.kill(workers[0]!, signal);
    await sleep(300);
    for (let i = 0; i < 3; i++) assert.equal((await request(gh.url, `/after-signals-${i}`, { timeoutMs: 3000 })).status, 200);
    assert.deepEqual(childPids(gh.pid), workers, 'the same worker serves');
    assert.doesNotMatch(gh.output(), /exited|Booting worker with pid[^]*Booting worker with pid/);
  } finally {
    await gh.kill();
  }
});

test('SIGTERM to every process at once, as systemd stops a service: the requests under way and queued are all answered', async () => {
  const cases = [
    { app: `${APPS}/pool_apps.py:sleepy`, path: '/sleep/1', extra: [] },
    { app: `${APPS}/pool_apps.py:sleepy`, path: '/sleep/1', extra: ['--threads', '2'] },
    { app: `${APPS}/asgi_apps.py:app`, path: '/slow?s=1', extra: ['--interface', 'asgi', '--max-concurrency', '2'] },
  ];
  for (const { app, path, extra } of cases) {
    const gh = await launch([app, '--workers', '2', ...extra]);
    try {
      const answers = Array.from({ length: 6 }, () => request(gh.url, path, { timeoutMs: 15_000 }));
      await sleep(300);
      for (const pid of [gh.pid, ...childPids(gh.pid)]) process.kill(pid, 'SIGTERM');
      const statuses = (await Promise.all(answers)).map((r) => r.status);
      assert.deepEqual(statuses, Array(6).fill(200), `${extra.join(' ') || 'sync'}:\n${gh.output()}`);
      assert.doesNotMatch(gh.output(), /died/);
    } finally {
      await gh.kill();
    }
  }
});

// ------------------------------------------------------------------ 10

test('no leaks: after the SIGHUP and --max-requests runs, fds return to the startup count and no Python process remains', (t) => {
  const names = ['reload', 'max-requests'];
  // Each probe records in a finally block, so a missing record means its test did not run (e.g. --test-name-pattern).
  if (!names.some((n) => leakRecords.has(n))) {
    t.skip('neither the SIGHUP test nor the --max-requests test ran');
    return;
  }
  for (const name of names) {
    const r = leakRecords.get(name);
    if (r === undefined) {
      t.diagnostic(`${name}: its test did not run; nothing to check`);
      continue;
    }
    const what = `${name}: ${JSON.stringify(r)}`;
    t.diagnostic(what);
    assert.ok(r.fdAtStart > 0 && r.fdAfter > 0, `fds were measured; ${what}`);
    assert.ok(r.fdAfter <= r.fdAtStart + FD_MARGIN, `gatehouse's open fds come back to within ${FD_MARGIN} of the startup count; ${what}`);
    assert.equal(r.exit, 'exit code 0', `clean stop; ${what}`);
    assert.ok(r.workersSeen > 2, `the run did replace workers; ${what}`);
    assert.deepEqual(r.leftover, [], `no Python process of the test remains after stop; ${what}`);
  }
});
