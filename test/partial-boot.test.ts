/**
 * Start-up when only some workers import the app (the code changed on disk
 * while they started): once one worker of the generation serves, a worker
 * that cannot import is logged and retried with backoff, as after a failed
 * reload, and the server stays up. Only when every worker fails does the
 * server stop (GH_ERR_APP_IMPORT, exit 3).
 *
 * test/apps/boot_once.py imports for the first worker that tries and raises
 * for every later one until its marker file is removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { countMatches, launch, runCli } from './helpers/launch.js';
import { childPids, isAlive, workerPidsFor } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { describeLoad, failures, startLoad } from './helpers/load.js';

const APP = `${APPS}/boot_once.py`;
const FAILED = /failed to boot; retrying with backoff/;
const TRACEBACK = /Traceback \(most recent call last\):[^]*RuntimeError: boot_once: the code changed on disk during start-up/;

function setup(tag: string): { dir: string; marker: string; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), `gh-partial-${tag}-`));
  // --pythonpath makes the test's workers findable by workerPidsFor(dir).
  // An interpreter that starts in tens of ms (not a pyenv shim): a respawn loop then shows as many failures.
  const python = existsSync(SYSTEM_PYTHON) ? ['--python', SYSTEM_PYTHON] : [];
  return { dir, marker: join(dir, 'marker'), args: [APP, '--bind', '127.0.0.1:0', '--workers', '2', '--pythonpath', dir, ...python] };
}

/** The pid of the one worker the server logged as booted (the other may still be alive, failing). */
function bootedPid(out: string): number {
  const booted = [...out.matchAll(/Booting worker with pid: (\d+)/g)];
  assert.equal(booted.length, 1, `one worker booted; output:\n${out}`);
  return Number(booted[0]![1]);
}

test('a worker that fails to import after another serves: the server keeps serving, logs the traceback, retries with backoff, stays up', async () => {
  const { dir, marker, args } = setup('late');
  // The second worker raises 0.8 s into its import: well after the first is ready.
  const gh = await launch(args, { workers: 1, env: { BOOT_ONCE_MARKER: marker, BOOT_ONCE_SECOND: '0.8' } });
  try {
    const serving = bootedPid(gh.output());
    await gh.waitFor(FAILED, 10000);
    const loadStart = performance.now();
    const pids = new Set<string>();
    const load = startLoad({ url: gh.url, concurrency: 4, durationMs: 6000, pauseMs: 2, onResponse: (s) => pids.add(s.body) });
    const result = await load.done;
    const window = (performance.now() - loadStart) / 1000;

    const out = gh.output();
    assert.equal(gh.proc.exitCode, null, `the server is still running; output:\n${out}`);
    assert.doesNotMatch(out, /GH_ERR_APP_IMPORT/);
    assert.equal(failures(result), 0, `every request served: ${describeLoad(result)}`);
    assert.ok(result.requests > 100, `the load ran: ${describeLoad(result)}`);
    assert.deepEqual([...pids], [String(serving)], 'the worker that imported serves everything');
    assert.match(out, new RegExp(`${FAILED.source}:\\n${TRACEBACK.source}`), `the failure is logged with its traceback; output:\n${out}`);
    // Backoff (0.5 s, 1 s, 2 s, 4 s...) even though requests keep completing on the serving worker:
    // a respawn loop would fail every ~0.6 s (10 or more times in this window).
    const failed = countMatches(out, FAILED);
    assert.ok(failed <= 5, `retried with backoff, not in a loop: ${failed} boot failures, ${window.toFixed(1)} s after the first; output:\n${out}`);
    assert.ok(await waitUntil(() => countMatches(gh.output(), FAILED) >= 2, 10000), `the missing worker is retried; output:\n${gh.output()}`);

    // The code is fixed: the next retry imports and the pool is whole again.
    unlinkSync(marker);
    unlinkSync(`${marker}.second`);
    assert.ok(
      await waitUntil(() => childPids(gh.pid).length === 2 && countMatches(gh.output(), /Booting worker with pid/) === 2, 20000),
      `a second worker joins once the app imports again; output:\n${gh.output()}`,
    );
    const res = await request(gh.url, '/');
    assert.equal(res.status, 200);
    assert.equal(await gh.stop(), 0, 'a clean stop');
  } finally {
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker that fails to import before any other is ready: start waits for the others, then serves', async () => {
  const { dir, marker, args } = setup('early');
  // The first import takes 1 s; the second worker fails at once, while no worker is ready yet.
  const gh = await launch(args, { workers: 1, env: { BOOT_ONCE_MARKER: marker, BOOT_ONCE_FIRST: '1' } });
  try {
    const serving = bootedPid(gh.output());
    const res = await request(gh.url, '/');
    assert.equal(res.status, 200);
    assert.equal(res.body, String(serving));
    await sleep(1000);
    const out = gh.output();
    assert.ok(isAlive(gh.pid) && gh.proc.exitCode === null, `the server is still running; output:\n${out}`);
    assert.doesNotMatch(out, /GH_ERR_APP_IMPORT/);
    assert.match(out, TRACEBACK, `the traceback is logged; output:\n${out}`);
    assert.equal(countMatches(out, /Traceback \(most recent call last\)/), countMatches(out, FAILED), 'each failure logged once, with its traceback');
    assert.equal((await request(gh.url, '/')).status, 200);
    assert.equal(await gh.stop(), 0, 'a clean stop');
  } finally {
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every worker failing at start still stops the server with GH_ERR_APP_IMPORT and exit 3, even when they fail one after the other', async () => {
  const { dir, marker, args } = setup('all');
  writeFileSync(marker, ''); // every import fails: one at once, the other after 1 s
  try {
    const r = await runCli(args, { env: { BOOT_ONCE_MARKER: marker, BOOT_ONCE_SECOND: '1' }, timeoutMs: 15000 });
    assert.equal(r.timedOut, false, `still running after 15 s; output:\n${r.stderr}`);
    assert.equal(r.code, 3, `exit 3; stderr:\n${r.stderr}`);
    const errorLines = r.stderr.split('\n').filter((l) => l.includes('GH_ERR_APP_IMPORT'));
    assert.equal(errorLines.length, 1, `one GH_ERR_APP_IMPORT line; stderr:\n${r.stderr}`);
    assert.match(errorLines[0]!, /^gatehouse: error: GH_ERR_APP_IMPORT: .*RuntimeError: boot_once: the code changed on disk during start-up$/);
    assert.match(r.stderr, TRACEBACK);
    assert.doesNotMatch(r.stderr, FAILED, 'nothing is retried');
    assert.equal(countMatches(r.stderr, /Booting worker with pid/), 0);
    assert.equal(readFileSync(`${marker}.second`, 'utf8'), 'raised', 'the server gave up only once the slower worker had failed too');
    assert.ok(await waitUntil(() => workerPidsFor(dir).length === 0, 1000), 'no worker left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
