/**
 * The `proxy` action against scripted upstreams (test/helpers/upstreams.ts):
 * a real gatehouse on loopback, real HTTP both sides. One gatehouse serves
 * every route; each test uses its own route so upstream counters stay its
 * own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { launch, runCli, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';
import { finishedWhileClientStalls, refusedAddress, startRawUpstream, startUpstream, type Echo, type Upstream } from './helpers/upstreams.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-proxy-'));
const accessLog = join(dir, 'access.log');
let server: Server;
const ups: Record<string, Upstream> = {};
const raws: Array<{ close(): Promise<void> }> = [];
let malformed = '';
let silent = '';
let refused = '';
let wss: WebSocketServer;
let wsPort = 0;

before(async () => {
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'k1', 'k2']) ups[name] = await startUpstream(name);
  ups.unix = await startUpstream('unix', join(dir, 'up.sock'));
  const bad = await startRawUpstream('HTTP/1.1 abc Broken\r\nContent-Length: 2\r\n\r\nno');
  const quiet = await startRawUpstream(null);
  raws.push(bad, quiet);
  malformed = bad.address;
  silent = quiet.address;
  refused = await refusedAddress();
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  wsPort = (wss.address() as { port: number }).port;
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.url} xff=${req.headers['x-forwarded-for']}`);
    ws.on('message', (m) => ws.send(`echo: ${m.toString()}`));
  });
  const route = (path: string, proxy: string) => `[[routes]]\npath = "${path}"\n[routes.proxy]\n${proxy}\n`;
  const a = ups.a!.address;
  const b = ups.b!.address;
  writeFileSync(
    join(dir, 'gatehouse.toml'),
    `access_log = "${accessLog}"
[[listeners]]
bind = "127.0.0.1:0"
${route('/echo', `upstreams = ["${a}"]\npass_path = "/inner/"\nrequest_headers = { X-Added = "yes", X-Drop-Me = "" }\nresponse_headers = { X-Served-By = "gatehouse", X-Upstream-Hidden = "" }\nread_timeout = 1`)}
${route('/asis', `upstreams = ["${a}"]`)}
${route('/host', `upstreams = ["${a}"]\nhost = "backend.internal"`)}
${route('/rr', `upstreams = [{ address = "${a}", weight = 2 }, "${b}"]`)}
${route('/lc', `upstreams = ["${ups.c!.address}", "${ups.d!.address}"]\nbalance = "least_conn"`)}
${route('/hash', `upstreams = ["${a}", "${b}", "${ups.c!.address}"]\nbalance = "hash"\nhash_key = "header:X-User"`)}
${route('/cookiehash', `upstreams = ["${a}", "${b}", "${ups.c!.address}"]\nbalance = "hash"\nhash_key = "cookie:sid"`)}
${route('/retry', `upstreams = ["${refused}", "${ups.e!.address}"]`)}
${route('/retry503', `upstreams = [{ address = "${ups.f!.address}", max_fails = 0 }, { address = "${ups.g!.address}", max_fails = 0 }]`)}
${route('/once503', `upstreams = ["${ups.f!.address}"]`)}
${route('/tries1', `upstreams = ["${refused}", "${ups.e!.address}"]\ntries = 1`)}
${route('/tries-time', `upstreams = [{ address = "${ups.f!.address}", max_fails = 0 }, { address = "${ups.g!.address}", max_fails = 0 }]\ntries_timeout = 0.2`)}
${route('/failover', `upstreams = ["${ups.k1!.address}", "${ups.k2!.address}"]`)}
${route('/passive', `upstreams = [{ address = "${malformed}", max_fails = 1, fail_timeout = 30 }, "${b}"]`)}
${route('/refused', `upstreams = ["${refused}"]`)}
${route('/silent', `upstreams = ["${silent}"]\nread_timeout = 0.5`)}
${route('/malformed', `upstreams = ["${malformed}"]`)}
${route('/buffered', `upstreams = ["${ups.h!.address}"]\nbuffer_size = "64m"`)}
${route('/unbuffered', `upstreams = ["${ups.h!.address}"]\nbuffering = false`)}
${route('/streamed', `upstreams = ["${a}"]\nrequest_buffering = false`)}
${route('/unix', `upstreams = ["unix:${join(dir, 'up.sock')}"]\npass_path = "/"`)}
${route('/unix-missing', `upstreams = ["unix:${join(dir, 'missing.sock')}"]`)}
${route('/unix-refused', `upstreams = ["unix:${join(dir, 'not-a-socket')}"]`)}
${route('/health', `upstreams = ["${ups.c!.address}", "${ups.d!.address}"]\nhealth_check = { interval = 0.2, path = "/health", timeout = 0.5 }`)}
${route('/ws', `upstreams = ["127.0.0.1:${wsPort}"]\npass_path = "/socket"`)}
[[routes]]
path = "/small"
max_request_body = "1k"
proxy = { upstreams = ["${a}"] }
[[routes]]
path = "/plain"
return = { status = 200, body = "plain route" }
`,
  );
  server = await launch(['--config', join(dir, 'gatehouse.toml')], { workers: 0 });
});

after(async () => {
  await server?.kill();
  for (const up of Object.values(ups)) await up.close();
  for (const r of raws) await r.close();
  wss?.close();
  rmSync(dir, { recursive: true, force: true });
});

const json = (body: string) => JSON.parse(body) as Echo;

test('a request goes up with its method, body and query; the route prefix is replaced by pass_path', async () => {
  const r = await request(server.url, '/echo/x/y?q=1&r=%20', { method: 'PUT', body: 'payload', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(r.status, 200);
  const e = json(r.body);
  assert.equal(e.method, 'PUT');
  assert.equal(e.url, '/inner/x/y?q=1&r=%20');
  assert.equal(e.body, 'payload');
  assert.equal(e.headers['content-length'], '7');
  assert.equal(json((await request(server.url, '/echo')).body).url, '/inner/');
  // Without pass_path the path goes up as sent.
  assert.equal(json((await request(server.url, '/asis/p%2Fq?z')).body).url, '/asis/p%2Fq?z');
});

test('forwarding headers: the client Host passed (or the configured one), X-Forwarded-*, Forwarded; spoofed ones dropped', async () => {
  const r = await request(server.url, '/echo/h', { headers: { Host: 'site.example:8080', 'X-Forwarded-For': '6.6.6.6', Forwarded: 'for=6.6.6.6', 'X-Drop-Me': 'x' } });
  const h = json(r.body).headers;
  assert.equal(h.host, 'site.example:8080');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'site.example:8080');
  assert.equal(h.forwarded, 'for=127.0.0.1;proto=http;host="site.example:8080"');
  assert.equal(h['x-added'], 'yes');
  assert.equal(h['x-drop-me'], undefined);
  assert.equal(json((await request(server.url, '/host/x')).body).headers.host, 'backend.internal');
});

test('hop-by-hop headers are dropped both ways; response headers added and removed', async () => {
  const conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('GET /echo/hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nTE: trailers\r\nKeep-Alive: 300\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  for (const name of ['x-private', 'upgrade', 'x-upstream-hidden']) assert.equal(res.header(name), undefined, name);
  // The front's own Keep-Alive for this connection, not the upstream's.
  assert.notEqual(res.header('keep-alive'), 'timeout=99');
  assert.equal(res.header('x-kept'), 'yes');
  assert.equal(res.header('x-served-by'), 'gatehouse');
  assert.equal(res.body.toString(), 'ok');
  conn.socket.write('GET /echo/e HTTP/1.1\r\nHost: x\r\nConnection: X-Secret\r\nX-Secret: 1\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n');
  const up = json((await conn.readResponse()).body.toString()).headers;
  for (const name of ['x-secret', 'te', 'proxy-connection']) assert.equal(up[name], undefined, name);
  conn.socket.destroy();
});

test('Location and Refresh that point at the upstream are rewritten to this route', async () => {
  // The app builds its URL from the Host it got (the client's) and its own path (/inner/...).
  let r = await request(server.url, '/echo/redirect', { headers: { Host: 'site.example' } });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/echo/next?x=1');
  r = await request(server.url, '/echo/redirect-upstream');
  assert.equal(r.headers.location, '/echo/next');
  assert.equal(r.headers.refresh, '0; url=/echo/r');
  // A Location elsewhere is left alone.
  r = await request(server.url, '/asis/redirect', { headers: { Host: 'site.example' } });
  assert.equal(r.headers.location, '/inner/next?x=1');
});

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

test('buffering on: the upstream is done while the client is slow; off: the upstream waits for the client', async () => {
  assert.equal(await finishedWhileClientStalls(server.port, '/buffered', ups.h!), true);
  assert.equal(await finishedWhileClientStalls(server.port, '/unbuffered', ups.h!), false);
  // The big response arrives whole when read.
  const r = await request(server.url, '/unbuffered/big?mb=4');
  assert.equal(r.raw.length, 4 * 1024 * 1024);
});

/** Sends the head and half a chunked body; says whether a response head came before the body's end. */
async function answeredBeforeBodyEnd(route: string): Promise<boolean> {
  const conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write(`POST ${route}/answer-at-once HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n`);
  const early = await waitUntil(() => conn.pending.toString('latin1').startsWith('HTTP/1.1 200'), 1500);
  conn.socket.write('0\r\n\r\n');
  const res = await conn.readResponse();
  conn.socket.destroy();
  assert.match(res.body.toString(), /started\nended\n/);
  return early;
}

test('request bodies: buffered by default, streamed with request_buffering = false', async () => {
  assert.equal(await answeredBeforeBodyEnd('/echo'), false);
  assert.equal(await answeredBeforeBodyEnd('/streamed'), true);
  // A chunked body goes up whole, with a Content-Length, when buffered.
  const conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('POST /echo/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
  const e = json((await conn.readResponse()).body.toString());
  conn.socket.destroy();
  assert.equal(e.body, 'abcde');
  assert.equal(e.headers['content-length'], '5');
  assert.equal(e.headers['transfer-encoding'], undefined);
});

test('max_request_body holds on a proxy route', async () => {
  const r = await request(server.url, '/small/x', { method: 'POST', body: 'x'.repeat(2000) });
  assert.equal(r.status, 413);
  assert.equal(ups.a!.hits.get('/small/x'), undefined);
});

test('a unix-socket upstream', async () => {
  const r = await request(server.url, '/unix/u?v=1');
  assert.equal(r.status, 200);
  assert.equal(json(r.body).name, 'unix');
  assert.equal(json(r.body).url, '/u?v=1');
  const big = await request(server.url, '/unix/big?mb=4');
  assert.equal(big.status, 200);
  assert.equal(big.raw.length, 4 * 1024 * 1024);
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

test('WebSocket through the proxy (Upgrade hook): handshake, messages both ways, access log 101', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?room=1`);
  const messages: string[] = [];
  ws.on('message', (m) => messages.push(m.toString()));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send('ping');
  assert.ok(await waitUntil(() => messages.length === 2, 3000), messages.join(' | '));
  assert.deepEqual(messages, ['hello /socket?room=1 xff=127.0.0.1', 'echo: ping']);
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  assert.ok(await waitUntil(() => /"GET \/ws\?room=1 HTTP\/1.1" 101 \d+/.test(readFileSync(accessLog, 'utf8')), 3000));
});

test('an upgrade to a route whose upstream refuses it gets the upstream answer; one to a route without upgrade() is a normal request', async () => {
  let conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('GET /echo/status-426 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  let res = await conn.readResponse();
  assert.equal(res.status, 426);
  assert.equal(json(res.body.toString()).headers.upgrade, 'websocket');
  conn.socket.destroy();
  conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
  res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'plain route');
  // The connection goes on: the next request is answered too.
  assert.equal((await conn.readResponse()).status, 200);
  conn.socket.destroy();
  conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  assert.equal((await conn.readResponse()).status, 404);
  conn.socket.destroy();
  assert.ok(await waitUntil(() => /"GET \/nowhere HTTP\/1.1" 404/.test(readFileSync(accessLog, 'utf8')), 3000));
});

test('bad proxy config: exit non-zero naming the key path and value', async () => {
  const file = join(dir, 'bad.toml');
  const cases: Array<[string, RegExp]> = [
    ['upstreams = ["ftp://x:1"]', /routes\[0\]\.proxy\.upstreams.*no other scheme/],
    ['upstreams = [{ address = "127.0.0.1:1", weight = 0 }]', /routes\[0\]\.proxy\.upstreams.*weight.*at least 1/],
    ['upstreams = ["127.0.0.1"]', /routes\[0\]\.proxy\.upstreams.*HOST:PORT/],
    ['upstreams = ["127.0.0.1:1"]\nbalance = "random"', /routes\[0\]\.proxy\.balance: must be round_robin, least_conn or hash/],
    ['upstreams = ["127.0.0.1:1"]\nhash_key = "query:x"', /routes\[0\]\.proxy\.hash_key/],
    ['upstreams = ["127.0.0.1:1"]\nbogus = 1', /routes\[0\]\.proxy.*bogus/],
    ['upstreams = ["127.0.0.1:1", "no-such-host.invalid:80"]', /routes\[0\]\.proxy\.upstreams\[1\]: cannot resolve no-such-host\.invalid/],
  ];
  for (const [body, pattern] of cases) {
    writeFileSync(file, `[[routes]]\npath = "/"\n[routes.proxy]\n${body}\n`);
    const r = await runCli(['--config', file, '--check-config']);
    assert.notEqual(r.code, 0, body);
    assert.match(r.stderr + r.stdout, pattern, body);
  }
});

test('--proxy URL=UPSTREAM: a reverse proxy from the command line, no app needed; a path after the address replaces URL', async () => {
  const a = ups.a!.address;
  const short = await launch(['--bind', '127.0.0.1:0', '--proxy', `/=${a}`, '--proxy', `/v=http://${a}/inner/`], { workers: 0 });
  try {
    assert.equal(json((await request(short.url, '/x?y=1')).body).url, '/x?y=1');
    assert.equal(json((await request(short.url, '/v/z')).body).url, '/inner/z');
  } finally {
    await short.kill();
  }
  for (const [flag, pattern] of [
    ['/api=ftp://x:1', /--proxy: must be HOST:PORT, unix:PATH, http:\/\/HOST:PORT or https:\/\/HOST:PORT \(no other scheme\) \(got "\/api=ftp:\/\/x:1"\)/],
    ['api', /--proxy: expected URL=UPSTREAM/],
  ] as const) {
    const r = await runCli(['--proxy', flag, '--check-config']);
    assert.equal(r.code, 1, flag);
    assert.match(r.stderr, pattern);
  }
});
