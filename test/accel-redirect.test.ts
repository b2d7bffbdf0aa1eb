/**
 * nginx's X-Accel-Redirect and `internal` routes (src/http/accel-redirect.ts,
 * src/front/internal-redirect.ts): an app (WSGI, ASGI), a proxied upstream
 * or an SCGI/uwsgi back end answers with the header, and the front sends the
 * file of an internal static route instead, as it sends any static file
 * (ranges, conditional requests), with the app's Content-Type,
 * Content-Disposition and Set-Cookie. The apps are test/apps/accel_apps.py;
 * the SCGI and uwsgi back end is a second gatehouse whose listeners speak
 * them, which passes the header on (the web server in front follows it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { RequestListener, Server as HttpServer } from 'node:http';
import { connect as h2connect, type IncomingHttpHeaders as H2Headers } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accelSite, HAS_OPENSSL, launchBackend, listening, startUpstream, stopSite } from './helpers/accel-site.js';
import { APPS } from './helpers/gatehouse.js';
import { launchConfig, runCli, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/accel_apps.py`;
const dir = mkdtempSync(join(tmpdir(), 'gh-accel-'));
const backendDir = join(dir, 'backend');
/** The protected file: 50,000 bytes, each its offset's low byte. */
const FILE = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i & 0xff));
let server: Server;
let backend: Server;
let upstream: HttpServer;
let tlsUrl = '';

/** The upstream of the proxy routes: /up/send answers with X-Accel-Redirect and a body of its own. */
const upstreamAnswer: RequestListener = (req, res) => {
  if (req.url?.startsWith('/up/send')) {
    res.writeHead(200, { 'Content-Type': 'application/pdf', 'X-Accel-Redirect': '/protected/report.pdf', 'Set-Cookie': 'up=1', 'Content-Length': 14 });
    return void res.end('upstream body!');
  }
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('upstream plain');
};

before(async () => {
  mkdirSync(join(dir, 'protected'));
  writeFileSync(join(dir, 'protected', 'report.pdf'), FILE);
  let upstreamPort: number;
  ({ upstream, port: upstreamPort } = await startUpstream(upstreamAnswer));
  backend = await launchBackend(backendDir, APP, ['scgi', 'uwsgi']);
  server = await launchConfig(
    dir,
    accelSite(
      dir,
      APP,
      'workers = 1\naccess_log = "access.log"',
      `
[[routes]]
path = "/c"
app = "wsgi"
cache = true

[[routes]]
path = "/protected"
internal = true
static = { root = "protected" }

[[routes]]
path = "/dated"
internal = true
static = { root = "protected", expires = 3600 }

[[routes]]
path = "/private-app"
internal = true
app = "wsgi"

[[routes]]
path = "/up"
proxy = { upstreams = ["127.0.0.1:${upstreamPort}"] }

[[routes]]
path = "/up-ignored"
proxy = { upstreams = ["127.0.0.1:${upstreamPort}"], pass_path = "/up", response_headers = { X-Accel-Redirect = "" } }

[[routes]]
path = "/scgi"
scgi = { pass = "${listening(backend, 'scgi')}" }

[[routes]]
path = "/uwsgi"
uwsgi = { pass = "${listening(backend, 'uwsgi')}" }
`,
    ),
    2,
  );
  if (HAS_OPENSSL) tlsUrl = `https://${listening(server, 'https')}`;
});

after(() => stopSite(dir, server, backend, upstream));

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** The file, with the app's own headers in place of the static route's. */
function assertFile(r: { status: number; headers: Record<string, unknown>; raw: Buffer }, what: string): void {
  assert.equal(r.status, 200, what);
  assert.equal(md5(r.raw), md5(FILE), `${what}: the file's bytes`);
  assert.equal(r.headers['content-type'], 'application/pdf', `${what}: the app's Content-Type`);
  assert.equal(r.headers['x-accel-redirect'], undefined, `${what}: the header never reaches the client`);
}

test('internal is a boolean, checked as any route key', async () => {
  const file = join(dir, 'bad.toml');
  writeFileSync(file, `app = "${APP}:application"\n\n[[routes]]\npath = "/p"\ninternal = "yes"\nstatic = { root = "protected" }\n`);
  const r = await runCli(['--config', file, '--check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /routes\[0\]\.internal: must be true or false/);
});

test('an ordinary app answer is unchanged', async () => {
  const r = await request(server.url, '/app/plain');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'plain answer');
  assert.equal(r.headers['x-plain'], 'yes');
  assert.equal(r.headers['content-type'], 'text/plain');
});

test('a WSGI app answering X-Accel-Redirect: the internal route sends the file, with the app\'s Content-Type, Content-Disposition and Set-Cookie', async () => {
  const r = await request(server.url, '/app/send?log=1');
  assertFile(r, 'WSGI');
  assert.equal(r.headers['content-length'], String(FILE.length));
  assert.equal(r.headers['content-disposition'], 'attachment; filename="report.pdf"');
  assert.deepEqual(r.headers['set-cookie'], ['downloaded=1; Path=/']);
  assert.equal(r.headers['x-app-only'], undefined, 'other headers of the redirecting answer are dropped, as nginx does');
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.ok(r.headers.etag, 'the file\'s validators');
  const streamed = await request(server.url, '/app/stream');
  assertFile(streamed, 'a streamed WSGI answer');
  const head = await request(server.url, '/app/send', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(FILE.length));
  assert.equal(head.raw.length, 0);
});

test('through the redirect, a Range request gets 206 with its bytes and a fresh ETag 304', async () => {
  const ranged = await request(server.url, '/app/send', { headers: { Range: 'bytes=1000-1099' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers['content-range'], `bytes 1000-1099/${FILE.length}`);
  assert.deepEqual(ranged.raw, FILE.subarray(1000, 1100));
  assert.equal(ranged.headers['content-type'], 'application/pdf');
  const etag = (await request(server.url, '/app/send')).headers.etag!;
  const fresh = await request(server.url, '/app/send', { headers: { 'If-None-Match': etag } });
  assert.equal(fresh.status, 304);
  assert.equal(fresh.raw.length, 0);
  assert.deepEqual(fresh.headers['set-cookie'], ['downloaded=1; Path=/'], 'Set-Cookie goes with a 304 too');
});

test('an internal route answers 404 to a client, however it asks (also once its file is in the front\'s memory)', async () => {
  await request(server.url, '/app/send');
  for (const method of ['GET', 'HEAD', 'GET']) {
    const r = await request(server.url, '/protected/report.pdf', { method });
    assert.equal(r.status, 404, method);
  }
  assert.equal((await request(server.url, '/private-app/echo')).status, 404, 'an internal app route too');
  const viaApp = await request(server.url, '/app/send?to=/private-app/echo');
  assert.equal(JSON.parse(viaApp.body).method, 'GET', 'an internal app route answers a redirect');
});

test('a POST answered with X-Accel-Redirect gets the file: the redirected request is a GET without the body', async () => {
  const r = await request(server.url, '/app/send', { method: 'POST', body: 'a=1&b=2', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assertFile(r, 'POST');
  const echo = await request(server.url, '/app/send?to=%2Fapp%2Fecho%3Fpage%3D2', { method: 'POST', body: 'x'.repeat(100) });
  assert.equal(echo.status, 200);
  assert.deepEqual(JSON.parse(echo.body), { method: 'GET', path: '/echo', query: 'page=2', length: '' }, 'GET, the query kept, no body');
});

test('a target no file is at: 404; a value that is not a path: 500 and an error log line naming it', async () => {
  assert.equal((await request(server.url, '/app/send?to=/protected/missing.pdf')).status, 404);
  assert.equal((await request(server.url, '/app/send?to=/nowhere/x')).status, 404, 'no route: 404');
  assert.equal((await request(server.url, '/app/send?to=/protected/../app/plain')).status, 404, 'unsafe: 404, as nginx');
  const relative = await request(server.url, '/app/send?to=protected/report.pdf');
  assert.equal(relative.status, 500);
  assert.equal(relative.headers['content-disposition'], undefined);
  await server.waitFor(/ERROR.*GET \/app\/send\?to=protected\/report\.pdf: X-Accel-Redirect "protected\/report\.pdf" is not a path/, 5000);
  assert.equal((await request(server.url, '/app/send?to=@files')).status, 500, 'named locations are refused');
});

test('an app redirecting to itself: 500 after 10 redirects, and the worker still serves', async () => {
  const r = await request(server.url, '/app/loop');
  assert.equal(r.status, 500);
  await server.waitFor(/GET \/app\/loop: X-Accel-Redirect "\/app\/loop": more than 10 internal redirects/, 5000);
  assert.equal((await request(server.url, '/app/plain')).body, 'plain answer');
});

test('an ASGI app answering X-Accel-Redirect gets the file too', async () => {
  const r = await request(server.url, '/asgi/download');
  assertFile(r, 'ASGI');
  assert.equal(r.headers['content-disposition'], 'attachment; filename="report.pdf"');
  const ranged = await request(server.url, '/asgi/download', { headers: { Range: 'bytes=-10' } });
  assert.equal(ranged.status, 206);
  assert.deepEqual(ranged.raw, FILE.subarray(FILE.length - 10));
});

test('a proxied upstream answering X-Accel-Redirect: the file, its body dropped; response_headers removing the header turns it off', async () => {
  for (let i = 0; i < 2; i++) {
    const r = await request(server.url, '/up/send');
    assertFile(r, `proxy, try ${i}`);
    assert.deepEqual(r.headers['set-cookie'], ['up=1']);
  }
  assert.equal((await request(server.url, '/up/plain')).body, 'upstream plain');
  const ignored = await request(server.url, '/up-ignored/send');
  assert.equal(ignored.status, 200);
  assert.equal(ignored.body, 'upstream body!', 'as nginx\'s proxy_ignore_headers X-Accel-Redirect');
});

test('SCGI and uwsgi back ends answering X-Accel-Redirect (through another gatehouse\'s listeners, which pass it on): the file', async () => {
  for (const route of ['/scgi', '/uwsgi']) {
    const r = await request(server.url, `${route}/send`);
    assertFile(r, route);
    assert.equal(r.headers['content-disposition'], 'attachment; filename="report.pdf"');
  }
});

test('a cached app route: the X-Accel-Redirect answer is not stored, each request reaches the app', async () => {
  const first = await request(server.url, '/c/cached');
  const second = await request(server.url, '/c/cached');
  assertFile(first, 'cached route');
  assertFile(second, 'cached route again');
  assert.deepEqual(first.headers['set-cookie'], ['calls=1']);
  assert.deepEqual(second.headers['set-cookie'], ['calls=2'], 'the app answered again');
  assert.equal(second.headers['cache-control'], 'public, max-age=60', 'the app\'s Cache-Control');
});

test('an internal static route with its own expires: its Cache-Control and Expires go over the app\'s, as nginx\'s expires does', async () => {
  const r = await request(server.url, '/app/cached?to=/dated/report.pdf');
  assertFile(r, 'dated route');
  assert.equal(r.headers['cache-control'], 'public, max-age=3600', 'the route\'s, not the app\'s max-age=60');
  const expires = Date.parse(String(r.headers.expires));
  assert.ok(Math.abs(expires - (Date.now() + 3600_000)) < 120_000, `Expires an hour ahead: ${r.headers.expires}`);
  assert.match(String(r.headers['set-cookie']), /^calls=\d+$/, 'the other kept headers stay');
  const plain = await request(server.url, '/app/cached');
  assert.equal(plain.headers['cache-control'], 'public, max-age=60', 'a route without expires keeps the app\'s');
});

test('the access log shows the client\'s request line with the final status and bytes', async () => {
  const log = join(dir, 'access.log');
  let text = '';
  for (let i = 0; i < 50 && !/"GET \/app\/send\?log=1 HTTP\/1.1" 200 50000/.test(text); i++) {
    await sleep(100);
    text = readFileSync(log, 'utf8');
  }
  assert.match(text, /"GET \/app\/send\?log=1 HTTP\/1.1" 200 50000/);
  assert.doesNotMatch(text, /protected\/report\.pdf HTTP\/1\.1" 20/, 'never the internal target (a client asking for it gets 404)');
});

test('over HTTP/2 (TLS): the file, and a range of it', { skip: HAS_OPENSSL ? false : 'openssl is not installed' }, async () => {
  const session = h2connect(tlsUrl, { rejectUnauthorized: false });
  try {
    const get = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ headers: H2Headers; raw: Buffer }>((resolve, reject) => {
        const stream = session.request({ ':path': path, ...headers });
        const chunks: Buffer[] = [];
        let head: H2Headers = {};
        stream.on('response', (h) => (head = h));
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve({ headers: head, raw: Buffer.concat(chunks) }));
        stream.on('error', reject);
        stream.end();
      });
    const whole = await get('/app/send');
    assertFile({ status: Number(whole.headers[':status']), headers: whole.headers, raw: whole.raw }, 'HTTP/2');
    assert.equal(whole.headers['content-disposition'], 'attachment; filename="report.pdf"');
    const ranged = await get('/asgi/download', { range: 'bytes=0-9' });
    assert.equal(ranged.headers[':status'], 206);
    assert.deepEqual(ranged.raw, FILE.subarray(0, 10));
    assert.equal((await get('/protected/report.pdf')).headers[':status'], 404);
  } finally {
    session.close();
  }
});
