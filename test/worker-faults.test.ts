/**
 * When the worker's own plumbing around a request fails (closing or opening
 * the request body's temp file), that request may fail, the worker must not:
 * a worker that died there would take the requests queued on it along, and a
 * request that kills every worker it is sent to would take the site down.
 * Real gatehouse, one worker (test/apps/worker_faults.py), so "the same pid"
 * means no worker died in between.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { withServer, type Server } from './helpers/launch.js';
import { childPids } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/worker_faults.py:app`;
const T = { timeout: 30_000 };
/** Past the front's in-memory limit (SPILL_BYTES, 256 KiB): the worker gets the body as a temp file. */
const SPILLED = 300 * 1024;

function onlyWorker(gh: Server): number {
  const pids = childPids(gh.pid);
  assert.equal(pids.length, 1, `one worker: ${pids.join(', ')}`);
  return pids[0]!;
}

async function stillServing(gh: Server, worker: number): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const next = await request(gh.url, '/hello');
    assert.equal(next.status, 200);
    assert.equal(next.body, `hello from ${worker}`, 'the same worker serves the next requests');
  }
  assert.deepEqual(childPids(gh.pid), [worker]);
  assert.doesNotMatch(gh.output(), /died/);
}

test("a failure closing the request body after the response is logged with the request named; the worker keeps serving", T, async () => {
  await withServer([APP, '--workers', '1'], async (gh) => {
    const worker = onlyWorker(gh);
    const res = await request(gh.url, '/close-fd?x=1', { method: 'POST', body: Buffer.alloc(SPILLED, 'x') });
    assert.equal(res.status, 200);
    assert.equal(res.body, `closed from ${worker}`);
    await gh.waitFor(/Error handling request POST \/close-fd\?x=1 while closing wsgi\.input/, 5000);
    await stillServing(gh, worker);
  });
});

test('a request whose body file is gone when it starts gets 500, alone; the worker keeps serving', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-faults-'));
  try {
    await withServer([APP, '--workers', '1'], async (gh) => {
      const worker = onlyWorker(gh);
      // The only worker is busy with /sweep; the POST waits in the front's queue, its body on disk,
      // until /sweep removes it (as the front does when a client leaves) and returns.
      const sweep = request(gh.url, '/sweep?0.6');
      await sleep(150);
      const post = request(gh.url, '/echo', { method: 'POST', body: Buffer.alloc(SPILLED, 'y') });
      assert.equal((await sweep).body, 'swept 1', 'the queued request body was removed');
      const res = await post;
      assert.equal(res.status, 500, `the request without its body fails: ${res.status} ${res.body}`);
      await gh.waitFor(/Error handling request POST \/echo/, 5000);
      await stillServing(gh, worker);
    }, { env: { TMPDIR: dir } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an app that exits its worker with status 0 mid-request gets 502 for that request, which runs once; a new worker serves', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-faults-'));
  const ran = join(dir, 'ran');
  try {
    await withServer([APP, '--workers', '1'], async (gh) => {
      const worker = onlyWorker(gh);
      const res = await request(gh.url, `/exit?${ran}`);
      assert.equal(res.status, 502);
      await gh.waitFor(/Worker \(pid:\d+\) died: exit code 0/, 5000);
      await sleep(1500);
      assert.equal(readFileSync(ran, 'utf8'), 'ran\n', 'the request ran once, not again on the next worker');
      const next = await request(gh.url, '/hello');
      assert.equal(next.status, 200);
      assert.notEqual(next.body, `hello from ${worker}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
