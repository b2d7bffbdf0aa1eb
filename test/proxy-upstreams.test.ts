/**
 * The `proxy` action's upstreams (test/helpers/proxy-site.ts): which one a
 * request goes to (round robin by weight, least_conn, hash), retries and
 * their bounds, failover under load, passive and active health checks, and
 * every way an upstream fails (refused, silent, malformed, reset mid-body,
 * a unix socket that is not there) or a client leaves: the status, and the
 * error-log line naming the upstream and the phase.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accessLog, dir, dying, json, malformed, refused, serveProxySite, server, silent, stale, ups } from './helpers/proxy-site.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

serveProxySite();

test('round robin follows the weights (2:1)', async () => {
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) seen.push(json((await request(server.url, '/rr/w')).body).name);
  assert.deepEqual(seen.filter((n) => n === 'a').length, 4, seen.join(' '));
  assert.deepEqual(seen.filter((n) => n === 'b').length, 2, seen.join(' '));
});

test('least_conn sends new requests to the upstream with fewer under way', async () => {
  const slow = request(server.url, '/lc/sleep-700');
  await waitUntil(() => ups.c!.total() + ups.d!.total() === 1, 2000);
  const busy = ups.c!.total() === 1 ? 'c' : 'd';
  const names: string[] = [];
  for (let i = 0; i < 4; i++) names.push(json((await request(server.url, '/lc/n')).body).name);
  assert.deepEqual(names, Array(4).fill(busy === 'c' ? 'd' : 'c'));
  assert.equal((await slow).status, 200);
});

test('hash: one header or cookie value always reaches the same upstream; values spread', async () => {
  const pick = async (path: string, headers: Record<string, string>) => json((await request(server.url, path, { headers })).body).name;
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
  const first = new Map<string, string>();
  for (const u of users) first.set(u, await pick('/hash/k', { 'X-User': u }));
  for (const u of users) assert.equal(await pick('/hash/k', { 'X-User': u }), first.get(u), u);
  assert.ok(new Set(first.values()).size >= 2, [...first.values()].join(' '));
  for (const u of users.slice(0, 3)) {
    const name = await pick('/cookiehash/k', { Cookie: `a=1; sid=${u}` });
    assert.equal(await pick('/cookiehash/k', { Cookie: `sid=${u}; b=2` }), name);
  }
});

test('a connect error is retried on the next upstream, even for a POST (it was never sent)', async () => {
  for (const method of ['GET', 'POST']) {
    const r = await request(server.url, '/retry/x', { method, body: method === 'POST' ? 'data' : undefined });
    assert.equal(r.status, 200, method);
    assert.equal(json(r.body).name, 'e');
  }
  await server.waitFor(new RegExp(`upstream ${refused} failed while connecting .*trying ${ups.e!.address}`));
});

test('a 503 is retried on the other upstream for GET, never for POST, never on the same upstream twice', async () => {
  const f = ups.f!;
  const g = ups.g!;
  for (let i = 0; i < 4; i++) {
    const r = await request(server.url, '/retry503/status-503');
    // Both answer 503: each GET tries each upstream once, then the last 503 goes to the client.
    assert.equal(r.status, 503);
  }
  assert.equal(f.hits.get('/retry503/status-503'), 4);
  assert.equal(g.hits.get('/retry503/status-503'), 4);
  for (let i = 0; i < 2; i++) assert.equal((await request(server.url, '/retry503/status-503', { method: 'POST', body: 'x' })).status, 503);
  assert.equal(f.total() + g.total(), 10, 'each POST reached one upstream only');
  const before = f.total();
  assert.equal((await request(server.url, '/once503/status-503')).status, 503);
  assert.equal(f.total(), before + 1);
});

test('tries and tries_timeout bound the retries', async () => {
  // Round robin starts with the first upstream: refused, and no second try.
  assert.equal((await request(server.url, '/tries1/x')).status, 502);
  const g = ups.g!.total();
  const f = ups.f!.total();
  // The first try is still waiting for its head when tries_timeout passes: 504, and no second try.
  const started = Date.now();
  assert.equal((await request(server.url, '/tries-time/slow-503')).status, 504);
  assert.ok(Date.now() - started < 290, 'answered when tries_timeout passed, not when the upstream did');
  assert.equal(ups.f!.total() + ups.g!.total(), f + g + 1);
});

test('a client that goes away: the upstream request is cancelled, logged as 499', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('GET /asis/sleep-600 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitUntil(() => ups.a!.hits.has('/asis/sleep-600'), 2000);
  // A reset (a FIN does the same: client-half-close.test.ts).
  conn.socket.resetAndDestroy();
  assert.ok(await waitUntil(() => /"GET \/asis\/sleep-600 HTTP\/1.1" 499/.test(readFileSync(accessLog, 'utf8')), 3000));
  // The upstream's connection was closed under it: its answer never went out.
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(ups.a!.finished.has('/asis/sleep-600'), false);
});

test('failover: an upstream killed under load costs no GET', async () => {
  let failed = 0;
  let done = 0;
  const worker = async () => {
    for (let i = 0; i < 30; i++) {
      const r = await request(server.url, '/failover/sleep-20').catch(() => null);
      if (r === null || r.status !== 200) failed++;
      done++;
    }
  };
  const load = Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(worker));
  await waitUntil(() => done >= 60, 10000);
  // Killed: every connection to it cut (mid-request for some), and nothing listens any more.
  const k1 = ups.k1!;
  k1.server.close();
  k1.server.closeAllConnections();
  await load;
  assert.equal(done, 240);
  assert.equal(failed, 0);
  assert.ok(ups.k2!.total() > 120, `k2 took over: ${ups.k2!.total()}`);
});

test('passive health: after max_fails an upstream gets no requests for fail_timeout', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await request(server.url, '/passive/p')).status);
  // The malformed upstream fails once (502, not retried: a malformed answer may have done the work), then is down.
  assert.ok(statuses.filter((s) => s === 502).length <= 1, statuses.join(' '));
  assert.deepEqual(statuses.slice(2), [200, 200, 200, 200]);
  await server.waitFor(new RegExp(`upstream ${malformed} marked down for 30 s`));
});

test('a kept-alive upstream connection closed as a request goes out: a GET goes again on a new one, a POST gets 502 (as nginx)', async () => {
  for (let i = 1; i <= 3; i++) {
    const r = await request(server.url, '/stale/x');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, `connection ${i}`);
  }
  assert.equal(stale.connections(), 3);
  const post = await request(server.url, '/stale/x', { method: 'POST', body: 'order=1' });
  assert.equal(post.status, 502);
  assert.equal(stale.connections(), 3, 'the POST was not sent again');
  assert.match(server.output(), /POST \/stale\/x: upstream 127\.0\.0\.1:\d+ failed/);
  assert.doesNotMatch(server.output(), /GET \/stale\/x: upstream/);
});

test('a kept-alive connection closed by an upstream that has stopped listening: the GET goes to the next upstream, once', async () => {
  // Round robin: the first request opens a connection to the dying upstream, the second goes to b, the third reuses the first's connection.
  assert.equal((await request(server.url, '/stale-dying/x')).body, 'connection 1');
  assert.equal((await request(server.url, '/stale-dying/x')).status, 200);
  dying.stopListening();
  const r = await request(server.url, '/stale-dying/x', { timeoutMs: 5000 });
  assert.equal(r.status, 200, r.body);
  assert.equal(json(r.body).name, 'b');
  assert.equal(dying.connections(), 1);
});

test('upstream down: 502 at once with an error-log line naming it and the phase', async () => {
  const r = await request(server.url, '/refused/x');
  assert.equal(r.status, 502);
  assert.ok(r.ms < 2000);
  await server.waitFor(new RegExp(`GET /refused/x: upstream ${refused} failed while connecting: .*ECONNREFUSED.*\\(502\\)`));
});

test('read timeout: 504 before the head, a cut connection after it, each logged with the phase', async () => {
  const r = await request(server.url, '/silent/x');
  assert.equal(r.status, 504);
  await server.waitFor(new RegExp(`GET /silent/x: upstream ${silent} failed while reading the response: no data for read_timeout \\(0.5 s\\) \\(504\\)`));
  const conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('GET /echo/stall-mid HTTP/1.1\r\nHost: x\r\n\r\n');
  await conn.waitClosed(5000);
  const text = conn.pending.toString('latin1');
  assert.match(text, /^HTTP\/1.1 200/);
  assert.match(text, /Content-Length: 20/i);
  assert.ok(text.endsWith('first ten.'), 'the body stops short of its Content-Length');
  await server.waitFor(/GET \/echo\/stall-mid: upstream .* failed while reading the response: no data for read_timeout \(1 s\); response cut/);
});

test('a malformed upstream answer is a 502', async () => {
  const r = await request(server.url, '/malformed/x');
  assert.equal(r.status, 502);
  assert.equal(r.body, 'Bad Gateway\n');
  await server.waitFor(/GET \/malformed\/x: upstream .* failed while reading the response: malformed response/);
});

test('an upstream that resets mid-body: the client sees a cut connection, never a complete response', async () => {
  for (const path of ['/echo/reset-mid', '/echo/reset-chunked']) {
    const conn = new RawConnection(server.port);
    await conn.connected;
    conn.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitClosed(5000);
    const text = conn.pending.toString('latin1');
    assert.match(text, /^HTTP\/1.1 200/, path);
    if (path.endsWith('mid')) assert.ok(text.length - text.indexOf('\r\n\r\n') - 4 < 1000, 'fewer bytes than Content-Length');
    else assert.ok(!text.endsWith('0\r\n\r\n'), 'no last chunk');
  }
});

test('a unix-socket upstream that is not there, or not a socket: 502 at once, logged as connecting', async () => {
  writeFileSync(join(dir, 'not-a-socket'), '');
  for (const [path, code] of [['/unix-missing/x', 'ENOENT'], ['/unix-refused/x', 'ECONNREFUSED']] as const) {
    const r = await request(server.url, path);
    assert.equal(r.status, 502, path);
    assert.ok(r.ms < 2000, path);
    await server.waitFor(new RegExp(`GET ${path}: upstream unix:\\S+ failed while connecting: .*${code}.*\\(502\\)`));
  }
});

test('active health checks: an upstream failing its check gets no requests until it passes again', async () => {
  const c = ups.c!;
  const d = ups.d!;
  d.healthStatus = 500;
  await server.waitFor(new RegExp(`upstream ${d.address} failed its health check \\(/health: answered 500\\)`), 5000);
  const names = new Set<string>();
  for (let i = 0; i < 4; i++) names.add(json((await request(server.url, '/health/x')).body).name);
  assert.deepEqual([...names], ['c']);
  d.healthStatus = 200;
  await server.waitFor(new RegExp(`upstream ${d.address} passed its health check`), 5000);
  for (let i = 0; i < 4; i++) names.add(json((await request(server.url, '/health/x')).body).name);
  assert.deepEqual([...names].sort(), ['c', 'd']);
  assert.ok(c.hits.get('/health')! > 0);
});
