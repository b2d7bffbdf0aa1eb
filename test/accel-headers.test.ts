/**
 * nginx's other X-Accel-* response headers (src/http/accel-headers.ts): none
 * reaches the client from an app (WSGI whole and streamed, ASGI), a proxied
 * upstream or a uwsgi back end, over HTTP/1.1 and HTTP/2; a request on a
 * uwsgi listener gets them as sent (the web server in front reads them).
 * `X-Accel-Buffering: no` holds the app back while its client does not
 * read; `X-Accel-Expires` sets a cached route's freshness. The apps are
 * test/apps/accel_headers_apps.py; the uwsgi back end is a second
 * gatehouse whose listener speaks uwsgi.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, RequestListener, Server as HttpServer } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeUwsgiPacket } from '../src/upstream/uwsgi-packet.js';
import { accelSite, HAS_OPENSSL, launchBackend, listening, startUpstream, stopSite } from './helpers/accel-site.js';
import { APPS } from './helpers/gatehouse.js';
import { launchConfig, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/accel_headers_apps.py`;
const dir = mkdtempSync(join(tmpdir(), 'gh-accel-headers-'));
const backendDir = join(dir, 'backend');
const HIDDEN = ['x-accel-expires', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset', 'x-accel-redirect'];
/** The streamed body of /big: CHUNKS chunks of 256 KiB, far more than the sockets' buffers hold. */
const CHUNK = 256 * 1024;
const CHUNKS = 128;
let server: Server;
let backend: Server;
let upstream: HttpServer;
let tlsUrl = '';

/** The upstream of the proxy route: every X-Accel-* header, and one that only looks like them. */
const upstreamAnswer: RequestListener = (_req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'X-Accel-Expires': '30',
    'X-Accel-Limit-Rate': '1024',
    'X-Accel-Buffering': 'no',
    'X-Accel-Charset': 'utf-8',
    'X-Accelerated': 'kept',
  });
  res.end('upstream body');
};

before(async () => {
  let upstreamPort: number;
  ({ upstream, port: upstreamPort } = await startUpstream(upstreamAnswer));
  backend = await launchBackend(backendDir, APP, ['uwsgi']);
  server = await launchConfig(
    dir,
    accelSite(
      dir,
      APP,
      'workers = 2',
      `
[[routes]]
path = "/c"
app = "wsgi"
cache = true

[[routes]]
path = "/up"
proxy = { upstreams = ["127.0.0.1:${upstreamPort}"] }

[[routes]]
path = "/uwsgi"
uwsgi = { pass = "${listening(backend, 'uwsgi')}" }
`,
    ),
    4,
  );
  if (HAS_OPENSSL) tlsUrl = `https://${listening(server, 'https')}`;
});

after(() => stopSite(dir, server, backend, upstream));

function assertHidden(headers: IncomingHttpHeaders, what: string): void {
  for (const name of HIDDEN) assert.equal(headers[name], undefined, `${what}: ${name} never reaches the client`);
  assert.equal(headers['x-accelerated'], 'kept', `${what}: a header that only looks like one goes on`);
}

test('an app\'s X-Accel-* headers never reach the client: WSGI whole (GET and HEAD) and streamed, ASGI', async () => {
  for (const [path, body] of [['/app/all', 'all hidden'], ['/app/stream', 'streamed body'], ['/asgi/all', 'asgi hidden']] as const) {
    const r = await request(server.url, path);
    assert.equal(r.status, 200, path);
    assert.equal(r.body, body, path);
    assertHidden(r.headers, path);
    assert.equal(r.headers['content-type'], 'text/plain', `${path}: the other headers`);
  }
  const head = await request(server.url, '/app/all', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '10');
  assertHidden(head.headers, 'HEAD');
});

test('a proxied upstream\'s and a uwsgi back end\'s X-Accel-* headers never reach the client', async () => {
  const proxied = await request(server.url, '/up/anything');
  assert.equal(proxied.body, 'upstream body');
  assertHidden(proxied.headers, 'proxy');
  const uwsgi = await request(server.url, '/uwsgi/all');
  assert.equal(uwsgi.body, 'all hidden');
  assertHidden(uwsgi.headers, 'uwsgi');
});

test('a request on a uwsgi listener gets them as the app sent them: the web server in front reads them', async () => {
  const [host, port] = listening(backend, 'uwsgi').split(':') as [string, string];
  const socket = connect(Number(port), host);
  const got: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('end', resolve);
    socket.on('error', reject);
    const vars: [string, string][] = [['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/all'], ['PATH_INFO', '/all'], ['QUERY_STRING', ''], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['HTTP_HOST', 'example.com']];
    socket.write(encodeUwsgiPacket(vars)!);
  });
  const answer = Buffer.concat(got).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/, answer);
  for (const line of ['X-Accel-Expires: 30', 'x-accel-limit-rate: 1024', 'X-ACCEL-BUFFERING: yes', 'X-Accel-Charset: utf-8']) assert.ok(answer.includes(`\r\n${line}\r\n`), `${line} in ${answer}`);
});

test('over HTTP/2 (TLS): hidden too', { skip: HAS_OPENSSL ? false : 'openssl is not installed' }, async () => {
  const session = h2connect(tlsUrl, { rejectUnauthorized: false });
  try {
    for (const path of ['/app/all', '/app/stream', '/asgi/all']) {
      const headers = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
        const stream = session.request({ ':path': path });
        let head: IncomingHttpHeaders = {};
        stream.on('response', (h) => (head = h as IncomingHttpHeaders));
        stream.resume();
        stream.on('end', () => resolve(head));
        stream.on('error', reject);
        stream.end();
      });
      assertHidden(headers, `HTTP/2 ${path}`);
    }
  } finally {
    session.close();
  }
});

/** How many chunks the app has handed over so far (its progress file). */
function produced(file: string): number {
  if (!existsSync(file)) return 0;
  return Number(readFileSync(file, 'latin1').trim() || '0');
}

/** Polls the progress file until it stops moving for a second (or reaches the end); its count. */
async function settled(file: string): Promise<number> {
  let last = -1;
  let still = 0;
  for (let waited = 0; waited < 20_000; waited += 100) {
    const now = produced(file);
    if (now === CHUNKS) return now;
    still = now === last ? still + 100 : 0;
    if (still >= 1000 && now > 0) return now;
    last = now;
    await sleep(100);
  }
  return produced(file);
}

/**
 * GET `path` over HTTP/1.0 (the body then ends with the connection, without
 * chunks) from a client that reads nothing until the app's progress has
 * settled; that count, then the whole body once read.
 */
async function pausedClient(path: string, file: string): Promise<{ whilePaused: number; head: string; body: Buffer }> {
  const socket: Socket = connect(server.port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`);
    const whilePaused = await settled(file);
    const got: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (d: Buffer) => got.push(d));
      socket.on('end', resolve);
      socket.on('error', reject);
    });
    const all = Buffer.concat(got);
    const at = all.indexOf('\r\n\r\n');
    return { whilePaused, head: all.toString('latin1', 0, at), body: all.subarray(at + 4) };
  } finally {
    socket.destroy();
  }
}

function assertBigBody(r: { head: string; body: Buffer }, what: string): void {
  assert.match(r.head, /^HTTP\/1\.1 200 OK\r\n/, what);
  assert.doesNotMatch(r.head, /x-accel/i, `${what}: the header is hidden`);
  const body = r.body;
  assert.equal(body.length, CHUNK * CHUNKS, `${what}: the whole body`);
  for (let i = 0; i < CHUNKS; i++) {
    const at = i * CHUNK;
    assert.ok(body[at] === i % 256 && body[at + CHUNK - 1] === i % 256, `${what}: chunk ${i} intact`);
  }
}

for (const app of ['app', 'asgi'] as const) {
  test(`X-Accel-Buffering: no (${app === 'app' ? 'WSGI' : 'ASGI'}): the app waits for a client that does not read; without it the front takes the whole body`, async (t) => {
    const buffered = join(dir, `${app}-buffered.progress`);
    const plain = await pausedClient(`/${app}/big?n=${CHUNKS}&progress=${buffered}`, buffered);
    assert.equal(plain.whilePaused, CHUNKS, 'buffered: the app handed over everything while the client read nothing');
    assertBigBody(plain, 'buffered');
    const unbuffered = join(dir, `${app}-unbuffered.progress`);
    const held = await pausedClient(`/${app}/big?n=${CHUNKS}&progress=${unbuffered}&buffering=No`, unbuffered);
    t.diagnostic(`unbuffered: ${held.whilePaused} of ${CHUNKS} chunks handed over while the client read nothing`);
    assert.ok(held.whilePaused < CHUNKS / 2, `unbuffered: the app was held back (${held.whilePaused} of ${CHUNKS} chunks handed over)`);
    assertBigBody(held, 'unbuffered');
  });
}

test('X-Accel-Expires on a cached route: 60 stores a no-cache answer (the client sees the app\'s Cache-Control); 0 stores nothing', async () => {
  const fresh = '/c/cached?cc=no-cache&expires=60';
  const first = await request(server.url, fresh);
  const second = await request(server.url, fresh);
  assert.equal(first.body, 'call 1');
  assert.equal(second.body, 'call 1', 'a hit: the app was called once');
  assert.match(String(second.headers['cache-status']), /^gatehouse; hit; ttl=(59|60)$/);
  assert.equal(second.headers['cache-control'], 'no-cache', 'the app\'s Cache-Control');
  assertHiddenExpires(first.headers);
  assertHiddenExpires(second.headers);
  const at = `/c/cached?cc=max-age%3D0&expires=%40${Math.floor(Date.now() / 1000) + 120}`;
  await request(server.url, at);
  const atHit = await request(server.url, at);
  assert.equal(atHit.body, 'call 1', '@ and a Unix time');
  assert.match(String(atHit.headers['cache-status']), /^gatehouse; hit; ttl=1[12]\d$/);
  const off = '/c/cached?cc=public%2C%20max-age%3D60&expires=0';
  const one = await request(server.url, off);
  const two = await request(server.url, off);
  assert.equal(one.body, 'call 1');
  assert.equal(two.body, 'call 2', 'not stored: the app answered again');
  assert.match(String(two.headers['cache-status']), /detail=x-accel-expires/);
  assert.equal(two.headers['cache-control'], 'public, max-age=60');
});

function assertHiddenExpires(headers: IncomingHttpHeaders): void {
  assert.equal(headers['x-accel-expires'], undefined, 'X-Accel-Expires never reaches the client');
}
