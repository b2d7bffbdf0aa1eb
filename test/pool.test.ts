import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch } from './helpers/launch.js';
import { childPids, deletedFiles } from './helpers/processes.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { describeLoad, failures, runLoad } from './helpers/load.js';

test('requests never stay queued behind a long-running one while another worker is free', async () => {
  const gh = await launch([`${APPS}/pool_apps.py:sleepy`, '--workers', '2']);
  try {
    const order: string[] = [];
    const slow = fetch(`${gh.url}/sleep/3`).then(async (r) => {
      order.push('slow');
      return r.text();
    });
    // Sent in the same tick: some of these are first queued on the slow request's worker.
    const fast = Array.from({ length: 30 }, (_, i) =>
      fetch(`${gh.url}/fast/${i}`).then(async (r) => {
        assert.equal(r.status, 200);
        order.push('fast');
        return r.text();
      }),
    );
    const fastBodies = await Promise.all(fast);
    assert.equal(order.filter((o) => o === 'slow').length, 0, 'all fast requests finished before the slow one');
    const slowPid = (await slow).split(' ')[1];
    assert.ok(fastBodies.every((b) => b.split(' ')[1] !== slowPid), 'no fast request ran on the busy worker after it');
  } finally {
    await gh.stop();
  }
});

test('requests a busy sync worker gives back unstarted wait for it in the queue, their --queue-timeout counted from their arrival', async () => {
  const gh = await launch([`${APPS}/pool_apps.py:sleepy`, '--workers', '1', '--queue-timeout', '3']);
  try {
    // The queue timeout is measured on the front's clock: let it pass the timeout's length first.
    await sleep(3500);
    // Sent in the same tick: the fast ones are queued on the only worker behind the slow one, then taken
    // back (it runs past 50 ms) into the pool's queue, where they wait for it with nowhere else to go.
    const slow = fetch(`${gh.url}/sleep/1`);
    const fast = Array.from({ length: 5 }, (_, i) => fetch(`${gh.url}/fast/${i}`));
    const answers = await Promise.all(fast);
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200, 200], 'each waited about a second, within the 3 s queue timeout');
    assert.equal((await slow).status, 200);
  } finally {
    await gh.stop();
  }
});

test("a sync worker's answers written together never wait for a slow request queued after them", async () => {
  const gh = await launch([`${APPS}/pool_apps.py:sleepy`, '--workers', '1']);
  try {
    // The blocker lets the others queue on the only worker, in this order: fast, fast, slow. The gaps are
    // wide so that a loaded machine's slow connects cannot reorder them.
    const blocker = fetch(`${gh.url}/sleep/1`);
    await sleep(100);
    const sent = performance.now();
    const fast = [0, 1].map(async (i) => {
      await sleep(50 * i);
      await (await fetch(`${gh.url}/fast/${i}`)).text();
      return performance.now() - sent;
    });
    await sleep(400);
    const slow = fetch(`${gh.url}/sleep/5`);
    const took = await Promise.all(fast);
    assert.ok(Math.max(...took) < 3500, `both fast answers came while the slow request ran: ${took.map(Math.round).join(', ')} ms`);
    assert.equal((await blocker).status, 200);
    assert.equal((await slow).status, 200);
  } finally {
    await gh.stop();
  }
});

test('a replacement worker that cannot boot is retried with backoff while the others keep serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-flaky-'));
  const marker = join(dir, 'broken');
  const gh = await launch([`${APPS}/flaky_boot.py`, '--workers', '2'], { env: { FLAKY_MARKER: marker } });
  try {
    const [victim, survivor] = childPids(gh.proc.pid!);
    writeFileSync(marker, '');
    const failures = () => gh.output().match(/failed to boot/g)?.length ?? 0;
    const killedAt = Date.now();
    process.kill(victim!, 'SIGKILL');
    // Retried (a loaded machine boots Python slowly: no fixed window for this), then counted over 3.5 s.
    assert.ok(await waitUntil(() => failures() >= 2, 15000), `retried: ${failures()} boot failures`);
    await sleep(killedAt + 3500 - Date.now());
    assert.ok(failures() <= 5, `retried with backoff, not in a loop: ${failures()} boot failures in 3.5 s`);
    const res = await fetch(gh.url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), String(survivor), 'the surviving worker serves');
    unlinkSync(marker);
    assert.ok(await waitUntil(() => childPids(gh.proc.pid!).length === 2, 10000), 'the pool is back to full size once the app imports again');
  } finally {
    await gh.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a slow client of a big streamed response does not hold up the worker: the rest is spooled to disk', async () => {
  const gh = await launch([`${APPS}/pool_apps.py:stream`, '--workers', '1']);
  try {
    const mib = 16;
    // Read nothing yet: the whole response must be taken off the worker by the front.
    const big = await new Promise<IncomingMessage>((resolve, reject) => get(`${gh.url}/big/${mib}`, resolve).on('error', reject));
    big.pause();
    await sleep(300);
    const res = await fetch(`${gh.url}/small`, { signal: AbortSignal.timeout(5000) });
    assert.equal(await res.text(), 'small', 'the only worker answered while the first client read nothing');

    const hash = createHash('sha256');
    let received = 0;
    big.on('data', (d: Buffer) => {
      received += d.length;
      hash.update(d);
    });
    const ended = new Promise((resolve) => big.on('end', resolve));
    big.resume();
    await ended;
    const block = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const expected = createHash('sha256');
    for (let i = 0; i < mib * 4096; i++) expected.update(block);
    assert.equal(received, mib * 2 ** 20);
    assert.equal(hash.digest('hex'), expected.digest('hex'), 'byte-exact after the detour through the spool');
    assert.ok(readdirSync(tmpdir()).every((f) => !f.startsWith('gatehouse-response-')), 'no spool file is left on disk');
  } finally {
    await gh.stop();
  }
});

for (const [size, mib] of [['2m', 32], ['0', 16]] as const) {
  const what = size === '0' ? 'no temp file; past the 1 MiB held in memory' : 'past 1 MiB in memory and 2 MiB on disk';
  test(`--max-temp-file-size ${size}: ${what} a WSGI worker waits for the slow client (nginx), and goes on once the client reads`, async () => {
    const gh = await launch([`${APPS}/pool_apps.py:stream`, '--workers', '1', '--max-temp-file-size', size]);
    try {
      const big = await new Promise<IncomingMessage>((resolve, reject) => get(`${gh.url}/big/${mib}`, resolve).on('error', reject));
      big.pause();
      await sleep(300);
      let small: string | null = null;
      const smallDone = fetch(`${gh.url}/small`).then(async (r) => (small = await r.text()));
      await sleep(800);
      assert.equal(small, null, 'the only worker is held by the slow client');
      if (size === '0') assert.deepEqual(deletedFiles(gh.pid), [], 'no temp file');
      let received = 0;
      big.on('data', (d: Buffer) => (received += d.length));
      const ended = new Promise((resolve) => big.on('end', resolve));
      big.resume();
      await ended;
      assert.equal(received, mib * 2 ** 20);
      await smallDone;
      assert.equal(small, 'small', 'the worker serves again');
      // A client that leaves while it holds the worker lets go of it.
      const leaver = await new Promise<IncomingMessage>((resolve, reject) => get(`${gh.url}/big/${mib}`, resolve).on('error', reject));
      leaver.pause();
      await sleep(500);
      leaver.destroy();
      const res = await fetch(`${gh.url}/small`, { signal: AbortSignal.timeout(5000) });
      assert.equal(await res.text(), 'small', 'the worker serves once the client that held it left');
    } finally {
      await gh.stop();
    }
  });
}

test('a worker SIGKILLed under load fails only the request it was running; those queued on it go to the other worker', async () => {
  const gh = await launch([`${APPS}/pool_apps.py:sleepy`, '--workers', '2']);
  try {
    const load = runLoad({ url: gh.url, path: '/sleep/0.02', concurrency: 12, durationMs: 2500 });
    await sleep(800);
    const [victim] = childPids(gh.pid);
    process.kill(victim!, 'SIGKILL');
    const result = await load;
    // 12 clients, 2 workers: the victim held several requests; only the running one may fail.
    assert.ok(failures(result) <= 1, `at most the running request failed: ${describeLoad(result)}`);
    assert.ok((result.byStatus[200] ?? 0) > 50, describeLoad(result));
    assert.ok(await waitUntil(() => childPids(gh.pid).length === 2 && !childPids(gh.pid).includes(victim!), 5000), 'replaced');
  } finally {
    await gh.stop();
  }
});
