/**
 * Signals to a running server: SIGTTIN/SIGTTOU resize the pool, SIGUSR1
 * reopens the access log, the front's signals sent to the workers too do
 * nothing to them, and SIGTERM to every process at once (as systemd stops a
 * service) answers every request under way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch } from './helpers/launch.js';
import { describeLoad, failures, startLoad, type LoadRun } from './helpers/load.js';
import { childPids } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { parseAnswer, stopLoad, tempDir, VERSIONED, waitCount } from './helpers/supervisor-apps.js';
import { sleep, waitUntil } from './helpers/wait.js';

// ------------------------------------------------------------------ SIGTTIN, SIGTTOU

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

// ------------------------------------------------------------------ SIGUSR1; signals to the workers; SIGTERM to all

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
