/**
 * A worker that never finishes importing the app (it waits on a lock, a
 * database, a network share) is killed after --timeout, as gunicorn's
 * WORKER TIMEOUT does at boot: before anything serves, the server stops
 * with GH_ERR_WORKER_BOOT instead of waiting forever; during a reload, the
 * reload is abandoned and the old workers keep serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, runCli } from './helpers/launch.js';
import { workerPidsFor } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const APP = `${APPS}/hang_on_import.py`;
const T = { timeout: 60_000 };

function setup(): { dir: string; marker: string; env: NodeJS.ProcessEnv; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-boot-timeout-'));
  const marker = join(dir, 'hang');
  const python = existsSync(SYSTEM_PYTHON) ? ['--python', SYSTEM_PYTHON] : [];
  // --pythonpath makes this test's workers findable by workerPidsFor(dir).
  return { dir, marker, env: { HANG_MARKER: marker }, args: [APP, '--timeout', '2', '--pythonpath', dir, ...python] };
}

test('workers that never finish importing: the server stops after --timeout with GH_ERR_WORKER_BOOT and where they hung', T, async () => {
  const { dir, marker, env, args } = setup();
  try {
    writeFileSync(marker, '');
    const r = await runCli([...args, '--bind', '127.0.0.1:0', '--workers', '2'], { env, timeoutMs: 20_000 });
    assert.equal(r.timedOut, false, `still running after 20 s; output:\n${r.stderr}`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /gatehouse: error: GH_ERR_WORKER_BOOT: worker \d+ has not loaded the application after 2s \(--timeout 2\)/);
    assert.ok(await waitUntil(() => workerPidsFor(dir).length === 0, 2000), 'no worker left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reload whose new workers hang at import is abandoned after --timeout; the old workers keep serving', T, async () => {
  const { dir, marker, env, args } = setup();
  const gh = await launch([...args, '--workers', '2'], { env });
  try {
    const before = (await request(gh.url, '/')).body;
    writeFileSync(marker, '');
    gh.proc.kill('SIGHUP');
    await gh.waitFor(/has not loaded the application after \d+s \(--timeout 2\)/, 15_000);
    await gh.waitFor(/Python prints where it was|File ".*hang_on_import\.py"/, 5000);
    for (let i = 0; i < 5; i++) {
      const res = await request(gh.url, '/');
      assert.equal(res.status, 200);
    }
    assert.ok([...workerPidsFor(dir)].map(String).includes(before), 'an old worker still serves');
    // The import works again: the next reload completes.
    rmSync(marker);
    gh.proc.kill('SIGHUP');
    await gh.waitFor(/Reload complete/, 15_000);
    assert.equal((await request(gh.url, '/')).status, 200);
  } finally {
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with --preload, a template that never finishes importing stops the server after --timeout with GH_ERR_WORKER_BOOT', T, async () => {
  const { dir, marker, env, args } = setup();
  try {
    writeFileSync(marker, '');
    const r = await runCli([...args, '--bind', '127.0.0.1:0', '--workers', '2', '--preload'], { env, timeoutMs: 20_000 });
    assert.equal(r.timedOut, false, `still running after 20 s; output:\n${r.stderr}`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /gatehouse: error: GH_ERR_WORKER_BOOT: the template process \d+ has not loaded the application after 2s \(--timeout 2\)/);
    assert.ok(await waitUntil(() => workerPidsFor(dir).length === 0, 2000), 'no process left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
