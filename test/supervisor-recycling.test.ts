/**
 * The supervisor replacing workers under load: SIGHUP ×3, --max-requests
 * and --max-rss lose no request and end with the pool at --workers, and
 * (checked last, from what the SIGHUP and --max-requests runs recorded)
 * leave no file descriptor open and no Python process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countMatches, launch, type Server } from './helpers/launch.js';
import { describeLoad, failures, startLoad, type LoadRun, type LoadSample } from './helpers/load.js';
import { childPids, isAlive, workerPidsFor } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { parseAnswer, stopLoad, SUP, tempDir, VERSIONED, waitCount } from './helpers/supervisor-apps.js';
import { sleep, waitUntil } from './helpers/wait.js';

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

// ------------------------------------------------------------------ leak bookkeeping (for the last test)

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

// ------------------------------------------------------------------ SIGHUP

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

// ------------------------------------------------------------------ --max-requests

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

// ------------------------------------------------------------------ --max-rss

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

// ------------------------------------------------------------------ no leaks

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
