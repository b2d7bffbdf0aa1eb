/**
 * A client that half-closes (FIN after a complete request: `nc -N`,
 * `socket.end()`) while its request is with an app or a back end has gone
 * away, as nginx sees it (ngx_http_upstream_check_broken_connection): the
 * work stops, the access log says 499, and nothing is sent. The same on the
 * fast path, on node:http (a repeated Connection header) and on a gateway
 * listener; a body still being buffered when the FIN comes counts too.
 * Answers that need no app or back end (static files) still go out.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server as NetServer } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { waitUntil } from './helpers/wait.js';
import { tempDir } from './helpers/back-ends.js';
import { startUpstream, type Upstream } from './helpers/upstreams.js';
import { encodeScgiHead } from '../src/upstream/netstring.js';
import { encodeRecord, FCGI } from '../src/upstream/fastcgi-records.js';

const LARGE = 24 * 1024 * 1024;
let tmp: ReturnType<typeof tempDir>;
let up: Upstream;
let gh: Server;
let accessLog: string;
let scgiSock: string;
/** A FastCGI back end that reads requests and never answers; how many of its connections gatehouse closed. */
let fcgi: NetServer;
let fcgiRequests = 0;
let fcgiClosed = 0;

before(async () => {
  tmp = tempDir('half-close');
  up = await startUpstream('up');
  accessLog = join(tmp.dir, 'access.log');
  scgiSock = join(tmp.dir, 'scgi.sock');
  writeFileSync(join(tmp.dir, 'a.txt'), 'static text\n');
  for (const name of ['p1', 'p2', 'p3', 'q1', 'q2']) writeFileSync(join(tmp.dir, `${name}.txt`), `file ${name}\n`);
  // Too large to be answered from memory: streamed, and more than the socket buffers hold.
  writeFileSync(join(tmp.dir, 'large.bin'), Buffer.alloc(LARGE, 'L'));
  fcgi = createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => d.includes(encodeRecord(FCGI.STDIN, 1)) && fcgiRequests++);
    s.once('close', () => fcgiClosed++);
  });
  await new Promise<void>((resolve) => fcgi.listen(0, '127.0.0.1', resolve));
  const config = join(tmp.dir, 'site.toml');
  writeFileSync(config, `access_log = "${accessLog}"
[apps.main]
app = "${APPS}/pool_apps.py:sleepy"
workers = 2
[[routes]]
path = "/php"
fastcgi = { pass = "127.0.0.1:${(fcgi.address() as { port: number }).port}" }
[[routes]]
path = "/up"
proxy = { upstreams = ["${up.address}"] }
[[routes]]
path = "/static"
static = { root = "${tmp.dir}" }
[[routes]]
path = "/"
app = "main"
`);
  gh = await launch(['--config', config, '--bind', '127.0.0.1:0', '--scgi-socket', `unix:${scgiSock}`], { workers: 2 });
});

after(async () => {
  await gh?.kill();
  await up?.close();
  fcgi?.close();
  tmp?.remove();
});

/** Sends `bytes` and half-closes; what came back by the time the server closed the connection. */
async function halfClose(bytes: string | Buffer, target: { port: number } | { path: string } = { port: gh.port }): Promise<string> {
  const socket = connect('port' in target ? { port: target.port, host: '127.0.0.1' } : { path: target.path });
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => {});
  socket.end(bytes);
  await new Promise((resolve) => socket.once('close', resolve));
  return got;
}

function logged(line: RegExp): Promise<boolean> {
  return waitUntil(() => line.test(readFileSync(accessLog, 'utf8')), 3000);
}

const big = 'x'.repeat(400 * 1024);
/** How each request reaches gatehouse: the fast path, node:http (a repeated Connection header), a body spilled to disk. */
const REQUESTS: Array<[string, (path: string) => string, string]> = [
  ['fast path GET', (p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`, 'GET'],
  ['fast path POST', (p) => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`, 'POST'],
  // Buffered to a temp file when the FIN comes: the app's or upstream's request starts only after it.
  ['fast path POST of 400 KiB', (p) => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n${big}`, 'POST'],
  ['fast path HTTP/1.0 GET', (p) => `GET ${p} HTTP/1.0\r\nHost: x\r\n\r\n`, 'GET'],
  // A repeated Connection header: node:http's (the fast path leaves repeated framing fields to llhttp).
  ['node:http HTTP/1.0 GET', (p) => `GET ${p} HTTP/1.0\r\nHost: x\r\nConnection: close\r\nConnection: close\r\n\r\n`, 'GET'],
  ['fast path chunked POST', (p) => `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 'POST'],
  ['node:http chunked POST', (p) => `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 'POST'],
];

test('a half-close while an app runs the request: nothing is sent, 499', async () => {
  for (const [how, bytes, method] of REQUESTS) {
    const path = `/sleep/0.3?${how.replace(/\W+/g, '-')}`;
    assert.equal(await halfClose(bytes(path)), '', how);
    assert.ok(await logged(new RegExp(`"${method} ${path.replace(/[?.]/g, '\\$&')} HTTP/1\\.\\d" 499 `)), `${how}:\n${readFileSync(accessLog, 'utf8')}`);
  }
});

test('a half-close while the upstream works on a proxied request: the upstream request is cancelled, 499', async () => {
  for (const [how, bytes, method] of REQUESTS) {
    const path = `/up/${how.replace(/\W+/g, '-')}/sleep-300`;
    const c = await RawConnection.open(gh.port);
    c.write(bytes(path));
    assert.ok(await waitUntil(() => up.hits.has(path), 3000), how);
    c.socket.end();
    await c.waitClosed(3000);
    assert.equal(c.pending.length, 0, how);
    assert.ok(await logged(new RegExp(`"${method} ${path} HTTP/1\\.\\d" 499 `)), `${how}:\n${readFileSync(accessLog, 'utf8')}`);
  }
  // The upstream's connections were closed under them: none of its answers went out.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual([...up.finished], []);
});

test('a half-close while a FastCGI back end works on the request: its connection is closed, 499', async () => {
  const c = await RawConnection.open(gh.port);
  c.write('GET /php/index.php HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.ok(await waitUntil(() => fcgiRequests === 1, 3000));
  c.socket.end();
  await c.waitClosed(3000);
  assert.equal(c.pending.length, 0);
  assert.ok(await waitUntil(() => fcgiClosed === 1, 3000), 'the back end connection was left open');
  assert.ok(await logged(/"GET \/php\/index\.php HTTP\/1\.1" 499 /), readFileSync(accessLog, 'utf8'));
});

test('a half-close after a request that needs no app: the answer still goes out (fast path and node:http)', async () => {
  for (const version of ['1.1', '1.0']) {
    const got = await halfClose(`GET /static/a.txt HTTP/${version}\r\nHost: x\r\n\r\n`);
    assert.match(got, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nstatic text\n$/, version);
  }
  // A keep-alive client that half-closes once answered is not cut short either.
  const c = await RawConnection.open(gh.port);
  c.write('GET /quick HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match((await c.readResponse()).body.toString(), /^\/quick \d+$/);
  c.socket.end();
  await c.waitClosed(3000);
});

test('a gateway listener (SCGI) treats a front end that half-closes the same way: 499', async () => {
  const head = encodeScgiHead(0, [['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/sleep/0.3?scgi'], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['HTTP_HOST', 'x'], ['SERVER_NAME', 'x'], ['SERVER_PORT', '80']]);
  assert.equal(await halfClose(head, { path: scgiSock }), '');
  assert.ok(await logged(/"GET \/sleep\/0\.3\?scgi HTTP\/1\.1" 499 /), readFileSync(accessLog, 'utf8'));
});

/** The bodies of the whole responses in `got`, in order (bodies with a Content-Length, as static files have). */
function bodies(got: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const end = got.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const length = Number(/content-length: (\d+)/i.exec(got.toString('latin1', at, end))?.[1]);
    if (end + 4 + length > got.length) return out;
    out.push(got.toString('latin1', end + 4, Math.min(end + 4 + length, end + 4 + 40)));
    at = end + 4 + length;
  }
}

/**
 * Pipelines GETs of `paths`, then half-closes once `finWhen` resolves; reads
 * nothing until then (and `pauseMs` more), then all that comes until the
 * server closes.
 */
async function pipelineThenFin(paths: string[], finWhen: Promise<unknown> = Promise.resolve(), pauseMs = 0): Promise<Buffer> {
  const socket = connect({ port: gh.port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => {});
  socket.pause();
  socket.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
  await finWhen;
  socket.end();
  setTimeout(() => socket.resume(), pauseMs);
  await new Promise((resolve) => socket.once('close', resolve));
  return Buffer.concat(chunks);
}

// nginx (checked with 1.22 in front of a slow back end) answers pipelined requests one at a time:
// those before the one that goes to a back end are answered, that one is logged 499 when the FIN
// is seen, and nothing after it is read.
test('pipelined requests, then FIN: each one sent before the FIN is answered, in order', async () => {
  // Files not read before: their answers load (the FIN is seen meanwhile).
  assert.deepEqual(bodies(await pipelineThenFin(['/static/p1.txt', '/static/p2.txt', '/static/p3.txt'])), ['file p1\n', 'file p2\n', 'file p3\n']);
});

test('pipelined requests, then FIN: those before an app request are answered, the app request is cut (499), nothing after it is', async () => {
  const got = await pipelineThenFin(['/static/q1.txt', '/sleep/0.5?pipelined', '/static/q2.txt']);
  assert.deepEqual(bodies(got), ['file q1\n']);
  assert.ok(await logged(/"GET \/sleep\/0\.5\?pipelined HTTP\/1\.1" 499 /), readFileSync(accessLog, 'utf8'));
});

test('pipelined requests, then FIN: an answer being written before a proxied request that is cut still goes out whole', async () => {
  const path = '/up/after-large/sleep-500';
  // The FIN once the upstream has the request; the client has read nothing: the large answer is still being written.
  const got = await pipelineThenFin(['/static/large.bin', path, '/static/a.txt'], waitUntil(() => up.hits.has(path), 3000), 200);
  const head = got.indexOf('\r\n\r\n');
  assert.match(got.toString('latin1', 0, head), new RegExp(`^HTTP/1\\.1 200 OK\r\n[^]*content-length: ${LARGE}`, 'i'));
  assert.equal(got.length - head - 4, LARGE);
  assert.ok(await logged(/"GET \/up\/after-large\/sleep-500 HTTP\/1\.1" 499 /), readFileSync(accessLog, 'utf8'));
});
