/**
 * ASGI pools under the supervisor: lifespan (startup before serving, its
 * failure a clear boot failure, apps without it still served, shutdown on
 * stop and reload), --timeout cancelling a request's task while its worker
 * serves on, an event loop blocked by sync code found by its missing
 * heartbeats, logged, sent nothing more and replaced with its stack logged, reloads under
 * load losing nothing, --max-requests recycling, and the auto guess refusing
 * what it cannot tell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { countMatches, runCli, withServer } from './helpers/launch.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { describeLoad, failures, startLoad } from './helpers/load.js';

const APP = `${APPS}/asgi_apps.py`;
const PY = ['--python', SYSTEM_PYTHON];

function pidOf(r: SimpleResponse): number {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.body}`);
  return (JSON.parse(r.body) as { pid: number }).pid;
}

test('lifespan.startup.failed is a boot failure: exit non-zero with the app\'s message, no respawn loop', async () => {
  const r = await runCli([`${APP}:failing_startup`, ...PY, '--workers', '2', '--bind', '127.0.0.1:0']);
  assert.notEqual(r.code, 0);
  assert.equal(r.timedOut, false);
  const out = r.stdout + r.stderr;
  assert.match(out, /ASGI lifespan startup failed: the database is not there/);
  assert.ok(countMatches(out, /Booting worker with pid/) === 0, out);
});

test('a lifespan startup that never completes: the server stops after --timeout with GH_ERR_WORKER_BOOT', async () => {
  const r = await runCli([`${APP}:hanging_startup`, ...PY, '--workers', '1', '--timeout', '2', '--bind', '127.0.0.1:0'], { timeoutMs: 20_000 });
  assert.equal(r.timedOut, false, `still running after 20 s:\n${r.stderr}`);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout + r.stderr, /GH_ERR_WORKER_BOOT: worker \d+ has not loaded the application after 2s \(--timeout 2\)/);
});

test('a reload whose lifespan startup fails: the old workers keep serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-flag-'));
  const flag = join(dir, 'broken');
  try {
    await withServer([`${APP}:fails_when_flagged`, ...PY, '--env', `FAIL_FLAG=${flag}`], async (gh) => {
      const pid = pidOf(await request(gh.url, '/'));
      writeFileSync(flag, '');
      process.kill(gh.pid, 'SIGHUP');
      await gh.waitFor(/Reload failed, the running workers keep serving: the new code does not import:\nASGI lifespan startup failed: flagged broken/);
      assert.equal(pidOf(await request(gh.url, '/')), pid);
      assert.equal(countMatches(gh.output(), /Reloading/), 1, 'no retry storm');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reload that turns the app from WSGI into ASGI is refused: the WSGI workers keep serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-switch-'));
  const flag = join(dir, 'asgi');
  try {
    await withServer([`${APP}:switching`, ...PY, '--env', `SWITCH_FLAG=${flag}`], async (gh) => {
      assert.equal(JSON.parse((await request(gh.url, '/x')).body).interface, 'wsgi');
      writeFileSync(flag, '');
      process.kill(gh.pid, 'SIGHUP');
      await gh.waitFor(/Reload failed, the running workers keep serving: worker \d+ loaded an ASGI app into a WSGI pool; restart gatehouse to switch/);
      assert.equal(JSON.parse((await request(gh.url, '/x')).body).interface, 'wsgi');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an app without lifespan support is served with --lifespan auto, refused with --lifespan on', async () => {
  await withServer([`${APP}:no_lifespan`, ...PY], async (gh) => {
    await gh.waitFor(/ASGI lifespan not supported by the app \(AssertionError/);
    const r = await request(gh.url, '/');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { lifespan: 'none' });
  });
  const on = await runCli([`${APP}:no_lifespan`, ...PY, '--lifespan', 'on', '--bind', '127.0.0.1:0']);
  assert.notEqual(on.code, 0);
  assert.match(on.stdout + on.stderr, /the app does not support lifespan \(--lifespan on\)/);
});

test('--interface auto refuses a callable it cannot classify, with a clear error', async () => {
  const r = await runCli([`${APP}:three_args`, ...PY, '--bind', '127.0.0.1:0']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /cannot tell whether the app is WSGI or ASGI.*give --interface asgi/);
  await withServer([`${APP}:three_args`, ...PY, '--interface', 'asgi'], async (gh) => {
    assert.equal((await request(gh.url, '/pid')).status, 200);
  });
});

test('--timeout cancels the slow request\'s task (504) and the worker serves on, the other requests untouched', async () => {
  await withServer([`${APP}:app`, ...PY, '--timeout', '1'], async (gh) => {
    const pid = pidOf(await request(gh.url, '/pid'));
    const [slow, quick] = await Promise.all([request(gh.url, '/slow?s=5'), sleep(200).then(() => request(gh.url, '/slow?s=0.2'))]);
    assert.equal(slow.status, 504);
    assert.ok(slow.ms < 5000, `504 after about 1 s, not ${slow.ms} ms`);
    assert.equal(pidOf(quick), pid);
    assert.equal(pidOf(await request(gh.url, '/pid')), pid, 'the same worker still serves');
    await gh.waitFor(/GET \/slow\?s=5: timed out after 1s; its task was cancelled/);
    // An app that swallows the cancellation still gets its client a 504, a moment later.
    const stubborn = await request(gh.url, '/stubborn');
    assert.equal(stubborn.status, 504);
    assert.ok(stubborn.ms < 6000, `${stubborn.ms} ms`);
    await gh.waitFor(/GET \/stubborn: timed out after 1s and ignored its cancellation/);
    assert.equal(pidOf(await request(gh.url, '/pid')), pid);
    assert.doesNotMatch(gh.output(), /Worker \(pid:\d+\) .*killing it/);
  });
});

test('an event loop blocked by sync code past --timeout: the worker is replaced and its stack logged', async () => {
  await withServer([`${APP}:app`, ...PY, '--timeout', '1'], async (gh) => {
    const pid = pidOf(await request(gh.url, '/pid'));
    const blocked = await request(gh.url, '/block?s=20');
    assert.equal(blocked.status, 504);
    assert.ok(blocked.ms < 8000, `answered within seconds, not ${blocked.ms} ms`);
    await gh.waitFor(/Worker \(pid:\d+\) event loop blocked for [\d.]+s at least \(sync code in an async app\?\); killing it/);
    await gh.waitFor(/asgi_apps\.py", line \d+ in app/);
    assert.ok(await waitUntil(() => countMatches(gh.output(), /Booting worker with pid/) >= 2, 10000), gh.output());
    const next = pidOf(await request(gh.url, '/pid'));
    assert.notEqual(next, pid);
  });
});

test('a loop blocked for less than --timeout is logged when its heartbeat is late and when it answers again; the worker serves on', async () => {
  await withServer([`${APP}:app`, ...PY, '--timeout', '4'], async (gh) => {
    const pid = pidOf(await request(gh.url, '/pid'));
    assert.equal((await request(gh.url, '/block?s=2.5')).status, 200);
    await gh.waitFor(new RegExp(`Worker \\(pid:${pid}\\) sent no heartbeat for [\\d.]+s: its event loop is blocked`));
    await gh.waitFor(new RegExp(`Worker \\(pid:${pid}\\) event loop answered again after [\\d.]+s without a heartbeat`));
    assert.equal(pidOf(await request(gh.url, '/pid')), pid);
    assert.doesNotMatch(gh.output(), /killing it/);
  }, { bootMs: 20000 });
});


test('a front held up (a stalled machine, a stopped process) does not take the beats still unread in its pipes for blocked loops', async () => {
  await withServer([`${APP}:app`, ...PY, '--workers', '2', '--timeout', '4'], async (gh) => {
    const pid = pidOf(await request(gh.url, '/pid'));
    for (const ms of [2500, 2500, 6000]) {
      process.kill(gh.pid, 'SIGSTOP');
      await sleep(ms);
      process.kill(gh.pid, 'SIGCONT');
      await sleep(500);
    }
    assert.equal(pidOf(await request(gh.url, '/pid')), pid);
    assert.doesNotMatch(gh.output(), /sent no heartbeat|without a heartbeat|killing it/);
  }, { bootMs: 20000 });
});
test('a blocked loop\'s requests are answered by their own age: 504 for the one that blocked it, though an older one waited beside it', async () => {
  await withServer([`${APP}:app`, ...PY, '--timeout', '2', '--workers', '1'], async (gh) => {
    const waiting = request(gh.url, '/slow?s=30');
    await sleep(300);
    const blocker = await request(gh.url, '/block?s=20');
    assert.equal(blocker.status, 504, blocker.body);
    assert.equal((await waiting).status, 504, 'the older one waited past --timeout too');
  }, { bootMs: 20000 });
});

test('a worker whose event loop is blocked is sent no more requests: they go to the others, or wait for its replacement', async () => {
  // --timeout 2: beats every 0.5 s, so a blocked worker is passed over 0.5–1 s into its block and killed 2 s into it.
  await withServer([`${APP}:app`, ...PY, '--timeout', '2', '--workers', '2'], async (gh) => {
    const blocked = request(gh.url, '/block?s=20');
    await sleep(1600);
    // The free worker is busy with some of these, so the fewest-in-flight rule alone would give the blocked one its share.
    const quick = await Promise.all(Array.from({ length: 8 }, () => request(gh.url, '/slow?s=0.2')));
    assert.deepEqual(quick.map((r) => r.status), Array(8).fill(200));
    assert.equal((await blocked).status, 504);
  }, { bootMs: 20000 });
  await withServer([`${APP}:app`, ...PY, '--timeout', '2', '--workers', '1'], async (gh) => {
    const first = pidOf(await request(gh.url, '/pid'));
    const blocked = request(gh.url, '/block?s=20');
    await sleep(1600);
    const next = pidOf(await request(gh.url, '/pid'));
    assert.notEqual(next, first, 'served by the replacement, after waiting for it');
    assert.equal((await blocked).status, 504);
    assert.doesNotMatch(gh.output(), /GET \/pid: 50[24]/);
  }, { bootMs: 20000 });
});

test('requests sent to a worker after its loop blocked are not lost with it: the replacement serves them (a POST is not run twice)', async () => {
  // --timeout 1: beats every 0.25 s; the loop is passed over 0.75 s after its last beat, so whatever the
  // beat's phase, requests sent 0.35-0.5 s into the block reach it, and none of them can have started.
  await withServer([`${APP}:app`, ...PY, '--timeout', '1', '--workers', '1'], async (gh) => {
    const first = pidOf(await request(gh.url, '/pid'));
    const t0 = performance.now();
    const blocked = request(gh.url, '/block?s=20', { timeoutMs: 20_000 });
    const probes: { at: number; answer: Promise<SimpleResponse> }[] = [];
    let post: Promise<SimpleResponse> | null = null;
    while (performance.now() - t0 < 700) {
      await sleep(20);
      probes.push({ at: performance.now() - t0, answer: request(gh.url, '/pid', { timeoutMs: 20_000 }) });
      if (post === null && performance.now() - t0 >= 400) post = request(gh.url, '/pid', { method: 'POST', body: 'x', timeoutMs: 20_000 });
    }
    assert.equal((await blocked).status, 504);
    // Unstarted too, but its beat could have been stuck behind a full stream: what may change state is never run twice.
    assert.equal((await post!).status, 502);
    await gh.waitFor(/killing it/);
    const late = probes.filter((p) => p.at >= 350);
    for (const p of late) {
      const r = await p.answer;
      assert.equal(r.status, 200, `sent ${Math.round(p.at)} ms after the blocking request: ${r.status} ${r.body}`);
      assert.notEqual(pidOf(r), first, 'served by the replacement');
    }
    await Promise.all(probes.map((p) => p.answer));
  }, { bootMs: 20000 });
});

test('a request the loop read after a busy stretch and that then blocked it is not run again elsewhere', async () => {
  // --timeout 1: beats every 0.25 s. Sync code keeps the loop 0.6 s from its timers; the second request
  // reaches it 0.38 s in, after a beat fell due (so it looks unstarted, unless the loop beats as it reads it).
  await withServer([`${APP}:app`, ...PY, '--timeout', '1', '--workers', '1'], async (gh) => {
    assert.equal((await request(gh.url, '/pid')).status, 200);
    const busy = request(gh.url, '/busy/block?s=0.6', { timeoutMs: 20_000 });
    await sleep(380);
    const blocker = request(gh.url, '/blocker/block?s=20', { timeoutMs: 20_000 });
    const [b, r] = await Promise.all([busy, blocker]);
    await gh.waitFor(/Booting worker with pid[^]*Booting worker with pid/, 10_000);
    assert.equal((await request(gh.url, '/pid')).status, 200, 'the replacement serves');
    assert.equal(countMatches(gh.output(), /blocking the loop for \/blocker\/block/), 1, `run once:\n${gh.output()}`);
    assert.equal(r.status, 504);
    // Its answer was written before the loop took the next request: it is not lost with the worker.
    assert.equal(b.status, 200);
  }, { bootMs: 20000 });
});

test('an answer finished in the loop turn in which another request blocks it is delivered, not lost with the worker', async () => {
  await withServer([`${APP}:app`, ...PY, '--timeout', '1', '--workers', '1'], async (gh) => {
    const first = pidOf(await request(gh.url, '/pid'));
    const waiting = request(gh.url, '/wait-gate', { timeoutMs: 20_000 });
    await gh.waitFor(/waiting at the gate/);
    const blocker = request(gh.url, '/open-gate-and-block', { timeoutMs: 20_000 });
    await gh.waitFor(/blocking the loop for \/open-gate-and-block/);
    const answer = await waiting;
    assert.equal(answer.status, 200, `${answer.status} ${answer.body}\n${gh.output()}`);
    assert.equal(pidOf(answer), first);
    assert.equal((await blocker).status, 504);
    await gh.waitFor(/killing it, its stack follows/);
  }, { bootMs: 20000 });
});

test('SIGHUP under load: no request fails; old workers run lifespan shutdown', async () => {
  await withServer([`${APP}:app`, ...PY, '--workers', '2'], async (gh) => {
    const load = startLoad({ url: gh.url, path: '/slow?s=0.05', concurrency: 8, durationMs: 4000 });
    await sleep(800);
    process.kill(gh.pid, 'SIGHUP');
    await gh.waitFor(/Reload complete/, 10000);
    await sleep(800);
    process.kill(gh.pid, 'SIGHUP');
    const result = await load.done;
    assert.equal(failures(result), 0, describeLoad(result));
    assert.ok(result.requests > 100, describeLoad(result));
    assert.ok(await waitUntil(() => countMatches(gh.output(), /lifespan shutdown in \d+/) >= 4, 10000), gh.output());
  }, { bootMs: 20000 });
});

test('--preload: workers forked from the template each run lifespan and serve', async () => {
  await withServer([`${APP}:app`, ...PY, '--preload', '--workers', '2'], async (gh) => {
    assert.match(gh.output(), /Application preloaded in template process/);
    const pids = new Set<number>();
    for (let i = 0; i < 20 && pids.size < 2; i++) {
      const all = await Promise.all([request(gh.url, '/scope'), request(gh.url, '/scope')]);
      for (const r of all) {
        const scope = JSON.parse(r.body) as { state: { pid: number } };
        pids.add(scope.state.pid);
      }
    }
    assert.equal(pids.size, 2, 'each worker ran its own lifespan startup (state.pid)');
  }, { bootMs: 20000 });
});

test('--max-rss replaces an ASGI worker over the limit, with no request lost', async () => {
  await withServer([`${APP}:app`, ...PY, '--max-rss', '1'], async (gh) => {
    const first = pidOf(await request(gh.url, '/pid'));
    await gh.waitFor(new RegExp(`Worker \\(pid:${first}\\) uses \\d+ MB, over --max-rss 1`));
    for (let i = 0; i < 10; i++) assert.equal((await request(gh.url, '/slow?s=0.05')).status, 200);
    await gh.waitFor(new RegExp(`Worker \\(pid:${first}\\) exited \\(max-rss\\)`));
  });
});

test('a lifespan shutdown longer than --timeout on reload is not taken for a blocked loop', async () => {
  await withServer([`${APP}:app`, ...PY, '--timeout', '1', '--env', 'SHUTDOWN_DELAY=2'], async (gh) => {
    const old = pidOf(await request(gh.url, '/pid'));
    process.kill(gh.pid, 'SIGHUP');
    await gh.waitFor(new RegExp(`lifespan shutdown in ${old}`), 10000);
    await gh.waitFor(/Worker \(pid:\d+\) exited \(reload\)/);
    assert.doesNotMatch(gh.output(), /event loop blocked/);
  });
});

test('--max-requests recycles an ASGI worker; SIGTERM runs lifespan shutdown', async () => {
  await withServer([`${APP}:app`, ...PY, '--max-requests', '3'], async (gh) => {
    const first = pidOf(await request(gh.url, '/pid'));
    await request(gh.url, '/pid');
    await request(gh.url, '/pid');
    await gh.waitFor(/served 3 requests: replacing it/);
    let next = first;
    for (let i = 0; i < 50 && next === first; i++) {
      next = pidOf(await request(gh.url, '/pid'));
      if (next === first) await sleep(50);
    }
    assert.notEqual(next, first);
    await gh.waitFor(new RegExp(`lifespan shutdown in ${first}`));
    assert.equal(await gh.stop(), 0);
    assert.match(gh.output(), new RegExp(`lifespan shutdown in ${next}`));
  });
});

test('--threads with an ASGI app is said to be ignored, whether the interface is given or found', async () => {
  for (const given of [['--interface', 'asgi'], []]) {
    await withServer([`${APP}:app`, ...PY, '--threads', '4', ...given], async (gh) => {
      await gh.waitFor(/WARNING\] --threads 4 does not apply to an ASGI app/);
      assert.equal((await request(gh.url, '/pid')).status, 200);
    });
  }
});

test('--max-concurrency with a WSGI app is said to be ignored, whether the interface is given or found', async () => {
  for (const given of [['--interface', 'wsgi'], []]) {
    await withServer([`${APPS}/basic.py:hello`, ...PY, '--max-concurrency', '50', ...given], async (gh) => {
      await gh.waitFor(/WARNING\] --max-concurrency 50 does not apply to a WSGI app/);
      assert.equal((await request(gh.url, '/')).status, 200);
    });
  }
  await withServer([`${APPS}/basic.py:hello`, ...PY], async (gh) => {
    assert.equal((await request(gh.url, '/')).status, 200);
    assert.doesNotMatch(gh.output(), /--max-concurrency/, 'nothing said when it was not set');
  });
});

test('bad ASGI settings: exit 1 naming each flag and value', async () => {
  const r = await runCli([`${APP}:app`, '--interface', 'foo', '--lifespan', 'maybe', '--max-concurrency', '0']);
  assert.equal(r.code, 1);
  const out = r.stdout + r.stderr;
  assert.match(out, /--interface: must be auto, wsgi or asgi \(got "foo"\)/);
  assert.match(out, /--lifespan: must be auto, on or off \(got "maybe"\)/);
  assert.match(out, /--max-concurrency: must be at least 1 \(got 0\)/);
});
