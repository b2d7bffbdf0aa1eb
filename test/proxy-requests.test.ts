/**
 * The `proxy` action (test/helpers/proxy-site.ts): what goes up and what
 * comes down: the path (pass_path), forwarding and hop-by-hop headers,
 * Location rewriting, request and response buffering, max_request_body, a
 * unix-socket upstream, WebSocket and other upgrades, bad proxy config and
 * --proxy on the command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { launch, runCli } from './helpers/launch.js';
import { accessLog, dir, json, serveProxySite, server, ups } from './helpers/proxy-site.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { finishedWhileClientStalls } from './helpers/upstreams.js';
import { waitUntil } from './helpers/wait.js';

serveProxySite();

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
