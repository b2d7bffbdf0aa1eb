/**
 * ASGI 3 over HTTP, with raw apps of our own (test/apps/asgi_apps.py): the
 * scope as the spec lists it, request bodies inline and spilled, responses
 * streamed (server-sent events arrive as they are sent, uncompressed),
 * http.disconnect, pathsend, the app failing before and after the start,
 * many slow requests at once on one worker and --max-concurrency, and a
 * WSGI and an ASGI app side by side in one gatehouse. One gatehouse (from a
 * config file with both apps) serves most tests.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launchConfig, withServer, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const ASGI_APPS = `${APPS}/asgi_apps.py`;
const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-'));
let server: Server;

const CONFIG = `
workers = 1
python = "${SYSTEM_PYTHON}"
compress = ["gzip"]

[[listeners]]
bind = "127.0.0.1:0"

[apps.web]
app = "${ASGI_APPS}:wsgi_app"

[apps.async]
app = "${ASGI_APPS}:app"
max_temp_file_size = "16m"

[[routes]]
path = "/"
app = "web"

[[routes]]
path = "/api"
app = "async"
`;

before(async () => {
  server = await launchConfig(dir, CONFIG, 2);
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

function json(r: SimpleResponse): Record<string, unknown> {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.body}`);
  return JSON.parse(r.body) as Record<string, unknown>;
}

test('a WSGI app and an ASGI app side by side: each route reaches its own pool, with the right interface', async () => {
  // Both apps are "auto": each pool says what it runs once its first worker has loaded the app, and nothing before.
  const said = () => /\[async\] Using worker: asgi \(up to 1000 requests at once per process\) \(1 process\)$/m.test(server.output());
  assert.ok(await waitUntil(said, 10_000), server.output());
  assert.match(server.output(), /\[web\] Using worker: sync \(1 process\)$/m);
  assert.doesNotMatch(server.output(), /for a WSGI app|for an ASGI one/);
  const wsgi = json(await request(server.url, '/hello'));
  assert.deepEqual(wsgi, { interface: 'wsgi', path: '/hello', script: '' });
  const scope = json(await request(server.url, '/api/scope'));
  assert.equal(scope.type, 'http');
});

test('a method outside llhttp\'s table and raw UTF-8 in the target reach an ASGI app (raw_path the bytes sent)', async () => {
  for (const extra of ['', 'Transfer-Encoding: chunked\r\n']) {
    const conn = await RawConnection.open(server.port);
    // A string is written as UTF-8: the target goes out unencoded.
    conn.write(`BREW /api/café/scope HTTP/1.1\r\nHost: x\r\n${extra}\r\n${extra === '' ? '' : '0\r\n\r\n'}`);
    const r = await conn.readResponse();
    conn.close();
    assert.equal(r.status, 200, r.body.toString());
    const scope = JSON.parse(r.body.toString()) as Record<string, unknown>;
    assert.equal(scope.method, 'BREW');
    assert.equal(scope.path, '/api/café/scope');
    assert.equal(Buffer.from(scope.raw_path as string, 'latin1').toString(), '/api/café/scope');
  }
});

test('the HTTP scope has every field of the ASGI spec, path decoded as UTF-8 and root_path the mount', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write(`GET /api/caf%C3%A9/scope?q=a%20b&x=1 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nX-Repeat: one\r\nx-repeat: two\r\nX_Under: u\r\n\r\n`);
  const r = await conn.readResponse();
  conn.close();
  assert.equal(r.status, 200, r.body.toString());
  const scope = JSON.parse(r.body.toString()) as Record<string, unknown>;
  assert.equal(scope.type, 'http');
  assert.deepEqual(scope.asgi, { version: '3.0', spec_version: '2.3' });
  assert.equal(scope.http_version, '1.1');
  assert.equal(scope.method, 'GET');
  assert.equal(scope.scheme, 'http');
  assert.equal(scope.path, '/api/café/scope');
  assert.equal(scope.raw_path, '/api/caf%C3%A9/scope');
  assert.equal(scope.root_path, '/api');
  assert.equal(scope.query_string, 'q=a%20b&x=1');
  const headers = scope.headers as Array<[string, string]>;
  for (const [name] of headers) assert.equal(name, name.toLowerCase(), `header names are lower case: ${name}`);
  assert.deepEqual(headers.filter(([n]) => n === 'x-repeat').map(([, v]) => v), ['one', 'two'], 'repeated headers stay separate');
  assert.deepEqual(headers.find(([n]) => n === 'x_under'), ['x_under', 'u'], 'no CGI name clash in ASGI: underscores pass');
  assert.ok(headers.some(([n, v]) => n === 'host' && v === `127.0.0.1:${server.port}`));
  const client = scope.client as [string, number];
  assert.equal(client[0], '127.0.0.1');
  assert.ok(client[1] > 0);
  assert.deepEqual(scope.server, ['127.0.0.1', server.port]);
  assert.deepEqual(scope.state, { started_by: 'lifespan', pid: (scope.state as { pid: number }).pid }, 'state from lifespan startup');
  assert.deepEqual(scope.extensions, { 'http.response.pathsend': {} });
});

test('X-Forwarded-For from an untrusted peer does not reach the app', async () => {
  const scope = json(await request(server.url, '/api/scope', { headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Real-IP': '6.6.6.6' } }));
  const names = (scope.headers as Array<[string, string]>).map(([n]) => n);
  assert.ok(!names.includes('x-forwarded-for') && !names.includes('x-real-ip'), names.join(','));
  assert.equal((scope.client as string[])[0], '127.0.0.1');
});

test('request bodies: a small one in one http.request, a large (spilled) one in several with more_body', async () => {
  const small = await request(server.url, '/api/echo', { method: 'POST', body: 'hello' });
  assert.equal(small.status, 200);
  assert.equal(small.body, 'hello');
  assert.equal(small.headers['x-messages'], '1');
  const big = Buffer.alloc(1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const r = await request(server.url, '/api/echo', { method: 'POST', body: big });
  assert.equal(r.status, 200);
  assert.ok(r.raw.equals(big), 'the body comes back byte for byte');
  assert.ok(Number(r.headers['x-messages']) > 1, `streamed to the app in pieces: ${String(r.headers['x-messages'])} messages`);
  // A chunked body reaches the app de-chunked.
  const conn = await RawConnection.open(server.port);
  conn.write('POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n');
  const chunked = await conn.readResponse();
  conn.close();
  assert.equal(chunked.body.toString(), 'abcdefg');
});

test('a response with more_body is streamed out chunked; a whole one gets a Content-Length', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n');
  const streamed = await conn.readResponse();
  assert.equal(streamed.status, 200);
  assert.equal(streamed.chunked, true);
  assert.equal(streamed.body.toString(), 'part 0\npart 1\npart 2\npart 3\npart 4\n');
  conn.write('POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc');
  const whole = await conn.readResponse();
  assert.equal(whole.header('content-length'), '3');
  assert.equal(whole.body.toString(), 'abc');
  // HEAD: the length of the body the app gave, and no body.
  conn.write('HEAD /api/events HTTP/1.1\r\nHost: x\r\n\r\nPOST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok');
  const head = await conn.readResponse(5000, { headRequest: true });
  assert.equal(head.status, 200);
  assert.ok(Number(head.header('content-length')) >= 2);
  assert.equal((await conn.readResponse()).body.toString(), 'ok');
  conn.close();
});

test('server-sent events flow as they are sent: no buffering, no compression', async () => {
  const started = Date.now();
  const arrivals: Array<{ at: number; text: string }> = [];
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/api/sse', headers: { 'Accept-Encoding': 'gzip' }, agent: false }, (res) => {
      res.on('data', (c: Buffer) => arrivals.push({ at: Date.now() - started, text: c.toString() }));
      res.on('end', () => resolve(res.headers));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(headers['content-type'], 'text/event-stream');
  assert.equal(headers['content-encoding'], undefined, 'text/event-stream is never compressed');
  const text = arrivals.map((a) => a.text).join('');
  assert.equal(text, 'data: event 0\n\ndata: event 1\n\ndata: event 2\n\n');
  const first = arrivals.find((a) => a.text.includes('event 0'))!;
  const last = arrivals.find((a) => a.text.includes('event 2'))!;
  assert.ok(last.at - first.at >= 600, `events arrive as they are sent (first at ${first.at} ms, last at ${last.at} ms)`);
});

/** What test/apps/asgi_apps.py recorded of clients going away, once it has recorded `n` things. */
async function eventsAfter(n: number): Promise<unknown[]> {
  let events: unknown[] = [];
  for (let i = 0; i < 60; i++) {
    events = JSON.parse((await request(server.url, '/api/events')).body) as unknown[];
    if (events.length >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return events;
}

test('the client going away: a pending receive() gets http.disconnect, an endless event stream gets an OSError from send()', async () => {
  const waiting = await RawConnection.open(server.port);
  waiting.write('GET /api/wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n');
  await waiting.waitForData((b) => b.includes('data: hello'));
  waiting.socket.resetAndDestroy();
  assert.deepEqual(await eventsAfter(1), ['http.disconnect']);
  // A client that closes (FIN) mid-stream: the front learns at its next write, the app at its next send().
  const streaming = await RawConnection.open(server.port);
  streaming.write('GET /api/sse-forever HTTP/1.1\r\nHost: x\r\n\r\n');
  await streaming.waitForData((b) => b.includes('data: tick'));
  streaming.socket.destroy();
  assert.deepEqual(await eventsAfter(2), ['http.disconnect', 'ClientDisconnected']);
});

test('http.response.pathsend: the front sends the file', async () => {
  const r = await request(server.url, '/api/pathsend');
  assert.equal(r.status, 200);
  assert.equal(r.body, readFileSync(ASGI_APPS, 'utf8'));
  assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
});

test('the app failing: before the start 500, after it the connection is cut, no start at all 500', async () => {
  const before = await request(server.url, '/api/raise-before');
  assert.equal(before.status, 500);
  await server.waitFor(/Error handling request GET \/api\/raise-before[\s\S]*RuntimeError: boom before the start/);
  const none = await request(server.url, '/api/no-response');
  assert.equal(none.status, 500);
  await server.waitFor(/returned without starting a response/);
  for (const path of ['/api/raise-after', '/api/unfinished']) {
    const conn = await RawConnection.open(server.port);
    conn.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitClosed();
    const got = conn.pending.toString('latin1');
    assert.match(got, /^HTTP\/1\.1 200 /, path);
    assert.ok(got.includes('partial'), `${path}: the start of the body was sent`);
    assert.ok(!got.endsWith('0\r\n\r\n'), `${path}: the response never looks complete`);
  }
});

test('a body that does not keep to its Content-Length: short, the connection is cut; long, the rest is dropped and the next answer follows cleanly', async () => {
  for (const parts of ['only', 'on,ly']) {
    const conn = await RawConnection.open(server.port);
    conn.write(`GET /api/off-length?declared=100&parts=${parts} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitClosed();
    const got = conn.pending.toString('latin1');
    assert.match(got, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\non(ly)?$/, `${parts}: the start of the body, then the cut: ${JSON.stringify(got)}`);
  }
  await server.waitFor(/GET \/api\/off-length\?declared=100&parts=on,ly: response had Content-Length 100 but the app sent 4 bytes; connection aborted/);
  for (const parts of ['helloEXTRA', 'hel,loEX,TRA']) {
    const conn = await RawConnection.open(server.port);
    conn.write(`GET /api/off-length?declared=5&parts=${parts} HTTP/1.1\r\nHost: x\r\n\r\nGET /api/pid HTTP/1.1\r\nHost: x\r\n\r\n`);
    const first = await conn.readResponse();
    assert.equal(first.body.toString(), 'hello', parts);
    const second = await conn.readResponse();
    assert.equal(second.status, 200, parts);
    assert.match(second.body.toString(), /"pid"/, parts);
    conn.close();
  }
  await server.waitFor(/GET \/api\/off-length\?declared=5&parts=hel,loEX,TRA: the app sent more than its Content-Length \(5\); the rest was dropped/);
  const head = await RawConnection.open(server.port);
  head.write('HEAD /api/off-length?declared=100&parts= HTTP/1.1\r\nHost: x\r\n\r\n');
  const r = await head.readResponse(5000, { headRequest: true });
  assert.equal(r.status, 200, 'HEAD: a length with no body is what HEAD is');
  head.close();
});

test('a body that is not bytes: 500, and the log says what was sent', async () => {
  const r = await request(server.url, '/api/str-body', { timeoutMs: 5000 });
  assert.equal(r.status, 500);
  await server.waitFor(/GET \/api\/str-body: http\.response\.body's body must be bytes, got str/);
});

test('the same start message again and again: each response gets its own length, hop-by-hop headers dropped every time, a bad header refused every time', async () => {
  // The worker keeps what it made of a start it has seen (gatehouse_asgi_response.py): nothing of one response may reach the next.
  for (const query of ['abc', 'abcdefghij', 'a', 'sized', 'abc', 'sized']) {
    const r = await request(server.url, `/api/same-start?${query}`);
    const length = query === 'sized' ? 5 : query.length;
    assert.equal(r.status, 200, query);
    assert.equal(r.body, 'x'.repeat(length), query);
    assert.equal(r.headers['content-length'], String(length), query);
    assert.equal(r.headers['content-type'], 'text/plain', query);
    assert.notEqual(r.headers['keep-alive'], 'timeout=99', `${query}: the app's Keep-Alive is the front's to decide`);
  }
  for (let i = 0; i < 2; i++) assert.equal((await request(server.url, '/api/bad-start')).status, 500);
});

test('max_temp_file_size: a client that reads nothing holds back an ASGI app that only sends (its sends wait), and gets it all once it reads', async () => {
  const reader = connect(server.port, '127.0.0.1');
  let received = 0;
  let tail = '';
  reader.on('data', (d: Buffer) => {
    received += d.length;
    tail = (tail + d.toString('latin1', Math.max(0, d.length - 16))).slice(-16);
  });
  reader.pause();
  reader.write(`GET /api/flood HTTP/1.1\r\nHost: x\r\n\r\n`);
  try {
    let chunks = 0;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      chunks = (json(await request(server.url, '/api/flooded')) as { chunks: number }).chunks;
    }
    // 4,096 chunks of 64 KiB if nothing held it: what the socket buffers, the front and its spool take is far less.
    assert.ok(chunks > 0 && chunks < 512, `the app sent ${chunks} chunks of 64 KiB to a client that read none`);
    const ended = new Promise<void>((resolve) => reader.on('data', () => tail.endsWith('\r\n0\r\n\r\n') && resolve()));
    reader.resume();
    await ended;
    assert.ok(received > 4096 * 65536, `${received} bytes received`);
    assert.deepEqual(json(await request(server.url, '/api/flooded')), { chunks: 4096, ended: 'done' });
  } finally {
    reader.destroy();
  }
});

test('max_temp_file_size: a client that leaves while its response holds the app back: the waiting send() raises, the app stops', async () => {
  const reader = connect(server.port, '127.0.0.1');
  reader.pause();
  reader.write(`GET /api/flood HTTP/1.1\r\nHost: x\r\n\r\n`);
  type Flooded = { chunks: number; ended: string };
  let last = -1;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const { chunks } = json(await request(server.url, '/api/flooded')) as Flooded;
    if (chunks > 0 && chunks === last) break; // held
    last = chunks;
  }
  reader.destroy();
  let flooded: Flooded = { chunks: 0, ended: '' };
  for (let i = 0; i < 50 && flooded.ended === ''; i++) {
    await new Promise((r) => setTimeout(r, 50));
    flooded = json(await request(server.url, '/api/flooded')) as Flooded;
  }
  assert.equal(flooded.ended, 'ClientDisconnected');
  assert.ok(flooded.chunks < 512, `${flooded.chunks} chunks sent`);
});

test('one worker runs many slow requests at once', async () => {
  const t0 = Date.now();
  const all = await Promise.all(Array.from({ length: 40 }, () => request(server.url, '/api/slow?s=1')));
  const ms = Date.now() - t0;
  for (const r of all) assert.equal(r.status, 200, r.body);
  assert.equal(new Set(all.map((r) => r.body)).size, 1, 'one worker process served them all');
  assert.ok(ms < 6000, `40 requests of 1 s on one worker took ${ms} ms`);
});

test('--max-concurrency: a worker never runs more than that at once (1 included: ASGI requests are never pipelined)', async () => {
  for (const limit of [1, 2]) {
    await withServer([`${ASGI_APPS}:app`, '--python', SYSTEM_PYTHON, '--max-concurrency', String(limit), '--interface', 'asgi'], async (gh) => {
      assert.match(gh.output(), new RegExp(`Using worker: asgi \\(up to ${limit} requests at once per process\\)`));
      const all = await Promise.all(Array.from({ length: 3 * limit }, () => request(gh.url, '/slow?s=0.4')));
      for (const r of all) assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse((await request(gh.url, '/most-at-once')).body), { most: limit });
    });
  }
});

test('over HTTPS and HTTP/2: scheme https, http_version 2, no pseudo-headers', { skip: hasCommand('openssl') ? false : 'openssl is not installed' }, async () => {
  const crt = join(dir, 'h2.crt');
  const key = join(dir, 'h2.key');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  await withServer([`${ASGI_APPS}:app`, '--python', SYSTEM_PYTHON, '--certfile', crt, '--keyfile', key], async (gh) => {
    const session = h2connect(`https://127.0.0.1:${gh.port}`, { rejectUnauthorized: false });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/scope?h2=1' });
        let text = '';
        stream.on('data', (c: Buffer) => (text += c.toString()));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      const scope = JSON.parse(body) as { http_version: string; scheme: string; query_string: string; headers: Array<[string, string]> };
      assert.equal(scope.http_version, '2');
      assert.equal(scope.scheme, 'https');
      assert.equal(scope.query_string, 'h2=1');
      assert.ok(scope.headers.every(([n]) => !n.startsWith(':')), JSON.stringify(scope.headers));
    } finally {
      session.close();
    }
  });
});

test('on a unix-socket listener the scope\'s server is [path, None] and client is None', async () => {
  const sock = join(dir, 'asgi.sock');
  await withServer([`${ASGI_APPS}:app`, '--bind', `unix:${sock}`, '--python', SYSTEM_PYTHON], async () => {
    const scope = json(await request({ socketPath: sock }, '/scope'));
    assert.deepEqual(scope.server, [sock, null]);
    assert.equal(scope.client, null);
  });
});
