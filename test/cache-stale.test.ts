/**
 * The HTTP cache's misses and stale responses (test/helpers/cache-origin.ts):
 * coalesced fetches (one origin call for many clients, and clients that
 * leave), revalidation with the origin, stale-while-revalidate, stale-if-error
 * and grace, and the lock timeout; one access log line per client request
 * through all of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at, calls, get, routed, serveCache, server, status } from './helpers/cache-origin.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

serveCache({ routed: true });

test('the client of a coalesced miss leaves: the requests waiting for it are still answered', async () => {
  const path = at('/leaver', { cc: 'max-age=60', sleep: '0.5' });
  const leaver = request(server.url, path, { timeoutMs: 100 }).then(
    () => 'answered',
    () => 'left',
  );
  await sleep(50);
  const waiter = get(server, path);
  assert.equal(await leaver, 'left');
  const answer = await waiter;
  assert.equal(answer.status, 200);
  assert.match(answer.body, /^GET \/leaver call \d /);
});

test('the client of a coalesced miss resets mid-answer (fast path): the request waiting for it fetches for itself at once', async () => {
  // lock_timeout is 5 s: the stale response is what a wait ended by it answers with (lock-timeout),
  // or one told that the fetch failed (stale-if-error).
  const path = at('/reset-leaver', { cc: 'max-age=1', chunked: '1', size: '768' });
  await get(server, path);
  await sleep(2100);
  const leaver = await RawConnection.open(server.port);
  try {
    leaver.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: 3\r\n\r\n`);
    // Its answer has started: the head and the first part are out, the rest comes seconds later.
    await leaver.waitForData((b) => b.includes('\r\n\r\n'));
    const waiter = get(server, path);
    await sleep(200);
    leaver.socket.resetAndDestroy();
    const answer = await waiter;
    assert.equal(answer.status, 200);
    assert.match(status(answer), /^gatehouse; fwd=stale; fwd-status=200/);
    assert.equal((await calls(server, '/reset-leaver')).calls, 3);
  } finally {
    leaver.close();
  }
});

test('a stale response is revalidated with the origin; its 304 refreshes the stored one', async () => {
  const path = at('/reval', { cc: 'max-age=1', etag: '"e1"' });
  const first = await get(server, path);
  await sleep(2100);
  const second = await get(server, path);
  assert.equal(second.status, 200);
  assert.equal(second.body, first.body);
  assert.match(status(second), /fwd=stale; fwd-status=304; stored/);
  const third = await get(server, path);
  assert.match(status(third), /hit/);
  assert.deepEqual(await calls(server, '/reval'), { calls: 2, not_modified: 1 });
});

test('100 concurrent misses of one key: one origin call', async () => {
  const path = at('/herd', { cc: 'max-age=60', sleep: '0.3' });
  const answers = await Promise.all(Array.from({ length: 100 }, () => get(server, path)));
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.match(a.body, /call 1 /);
  }
  assert.equal((await calls(server, '/herd')).calls, 1);
});

test('concurrent misses of a response that is not storable each reach the origin', async () => {
  const path = at('/herd-uncacheable', { cc: 'no-store', sleep: '0.1' });
  await get(server, path);
  const answers = await Promise.all(Array.from({ length: 5 }, () => get(server, path)));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
  assert.equal((await calls(server, '/herd-uncacheable')).calls, 6);
});

test('stale-while-revalidate: the stale response at once, refreshed in the background', async () => {
  const path = at('/swr', { cc: 'max-age=1, stale-while-revalidate=30' });
  await get(server, path);
  await sleep(2100);
  const stale = await get(server, path);
  assert.match(stale.body, /call 1 /);
  assert.match(status(stale), /hit; ttl=-\d+; detail=stale-while-revalidate/);
  let n = 0;
  for (let i = 0; i < 40 && n < 2; i++) {
    n = (await calls(server, '/swr')).calls;
    if (n < 2) await sleep(50);
  }
  assert.equal(n, 2, 'the background refresh reached the origin');
  const fresh = await get(server, path);
  assert.match(fresh.body, /call 2 /);
  assert.match(status(fresh), /hit; ttl=\d+$/);
});

test('one access log line per client request: a HEAD miss, a revalidation and a background refresh add none of the origin fetch', async () => {
  const tag = `log${Date.now()}`;
  const head = at(`/${tag}-head`, { cc: 'max-age=60' });
  const reval = at(`/${tag}-reval`, { cc: 'max-age=1', etag: '"e1"' });
  const swr = at(`/${tag}-swr`, { cc: 'max-age=1, stale-while-revalidate=30' });
  await get(server, head, {}, 'HEAD');
  await get(server, reval);
  await get(server, swr);
  await sleep(2100);
  assert.match(status(await get(server, reval)), /fwd-status=304/);
  assert.match(status(await get(server, swr)), /stale-while-revalidate/);
  for (let i = 0; i < 50 && (await calls(server, `/${tag}-swr`)).calls < 2; i++) await sleep(100);
  assert.equal((await calls(server, `/${tag}-swr`)).calls, 2, 'the background refresh ran');
  await sleep(300);
  const lines = (what: string) => server.output().split('\n').filter((l) => new RegExp(`"(GET|HEAD) /${tag}-${what}`).test(l));
  assert.equal(lines('head').length, 1, lines('head').join('\n'));
  assert.match(lines('head')[0]!, /"HEAD .* 200 /);
  assert.equal(lines('reval').length, 2, lines('reval').join('\n'));
  assert.equal(lines('swr').length, 2, lines('swr').join('\n'));
});

test('stale-if-error and grace: a stale response answers while the origin fails', async () => {
  const sie = at('/sie', { cc: 'max-age=1, stale-if-error=60' });
  const grace = at('/grace', { cc: 'max-age=1' });
  const none = at('/no-grace', { cc: 'max-age=1, must-revalidate' });
  const first = await get(server, sie);
  await get(server, grace);
  await get(server, none);
  await sleep(2100);
  await request(server.url, at('/__fail', { on: '1' }));
  try {
    const stale = await get(server, sie);
    assert.equal(stale.status, 200);
    assert.equal(stale.body, first.body);
    assert.match(status(stale), /hit; ttl=-\d+; fwd-status=503; detail=stale-if-error/);
    const graced = await get(server, grace);
    assert.equal(graced.status, 200, 'within the default grace (10 s)');
    const failed = await get(server, none);
    assert.equal(failed.status, 503, 'must-revalidate: never served stale');
  } finally {
    await request(server.url, at('/__fail', { on: '0' }));
  }
});

test('requests waiting on a fetch that fails get the stale response within grace, not a fetch each', async () => {
  const path = at('/grace-herd', { cc: 'max-age=1', sleep: '0.3' });
  const first = await get(server, path);
  await sleep(2100);
  await request(server.url, at('/__fail', { on: '1' }));
  try {
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(server, path)));
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.body, first.body);
      assert.match(status(a), /^gatehouse; hit; ttl=-\d+;( fwd-status=503;)? detail=stale-if-error$/);
    }
    assert.equal((await calls(server, '/grace-herd')).calls, 2, 'one fetch for all of them');
  } finally {
    await request(server.url, at('/__fail', { on: '0' }));
  }
});

test('requests waiting past the lock timeout on a slow fetch get the stale response within grace', async () => {
  // routed: lock_timeout = 1
  const path = at('/slow-herd', { cc: 'max-age=1', sleep: '1.6' });
  const first = await get(routed, path);
  await sleep(2100);
  const answers = await Promise.all(Array.from({ length: 4 }, () => get(routed, path)));
  const stale = answers.filter((a) => /detail=lock-timeout/.test(status(a)));
  assert.equal(stale.length, 3, answers.map(status).join('\n'));
  for (const a of stale) assert.equal(a.body, first.body);
  assert.equal((await calls(routed, '/slow-herd')).calls, 2);
});
