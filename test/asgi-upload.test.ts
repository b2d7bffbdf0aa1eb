/**
 * ASGI request bodies streamed to the app as they arrive (REQ_STREAM):
 * a 128 MiB upload hashed piece by piece while the front holds little of it,
 * a slow client that does not block its worker, backpressure on an app that
 * never reads, max_request_body and a faulty chunk mid-stream, a client reset mid-body seen as
 * http.disconnect, Starlette's request.body() and request.stream(), and an
 * HTTP/2 upload without Content-Length. Apps: test/apps/asgi_upload_apps.py.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasCommand, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launchConfig, withServer, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';

const UPLOAD_APPS = `${APPS}/asgi_upload_apps.py`;
const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-upload-'));
const HAS_STARLETTE = hasSystemModule('starlette');
let server: Server;

const CONFIG = `
workers = 1
python = "${SYSTEM_PYTHON}"
body_timeout = 5

[[listeners]]
bind = "127.0.0.1:0"

[apps.raw]
app = "${UPLOAD_APPS}:app"
${HAS_STARLETTE ? `\n[apps.star]\napp = "${UPLOAD_APPS}:starlette_app"\n\n[[routes]]\npath = "/star"\napp = "star"\n` : ''}
[[routes]]
path = "/small"
app = "raw"
max_request_body = "1m"

[[routes]]
path = "/"
app = "raw"
max_request_body = "256m"
`;

before(async () => {
  server = await launchConfig(dir, CONFIG, HAS_STARLETTE ? 2 : 1);
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** The front's peak resident memory so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

function sha256(data: Buffer | Buffer[]): string {
  const h = createHash('sha256');
  for (const b of Array.isArray(data) ? data : [data]) h.update(b);
  return h.digest('hex');
}

/** Writes `data` with backpressure; resolves with when the last write began (ms since the epoch). */
async function writeAll(socket: Socket, pieces: Buffer[]): Promise<number> {
  let lastAt = 0;
  for (const piece of pieces) {
    lastAt = Date.now();
    if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  return lastAt;
}

function chunked(piece: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
}

test('a 128 MiB upload reaches the app in many http.request messages, while the client is still sending, and the front never holds it', async () => {
  const piece = randomBytes(1024 * 1024);
  const pieces = Array.from({ length: 128 }, () => piece);
  const before = peakRss(server.pid);
  const conn = await RawConnection.open(server.port);
  conn.write(`POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: ${128 * piece.length}\r\n\r\n`);
  const lastWriteAt = await writeAll(conn.socket, pieces);
  const r = await conn.readResponse();
  conn.close();
  assert.equal(r.status, 200, r.body.toString());
  const seen = JSON.parse(r.body.toString()) as { sha256: string; length: number; messages: number; first_at: number };
  assert.equal(seen.length, 128 * piece.length);
  assert.equal(seen.sha256, sha256(pieces));
  assert.ok(seen.messages > 16, `the body came in ${seen.messages} messages`);
  assert.ok(seen.first_at < lastWriteAt, 'the app saw the first piece before the client sent the last');
  // What the front read and let go of is freed at V8's leisure: read buffers are external memory, collected in bulk once
  // some tens of MB of it are waiting, however large the body. So the body is twice that, and the bound lies between.
  const grew = peakRss(server.pid) - before;
  assert.ok(grew < 96 * 1024 * 1024, `the front's peak RSS grew by ${grew} bytes`);
});

/** A chunked POST /hash of five pieces, `gapMs` apart (each piece pushed to `sent` as it goes). */
async function slowHashUpload(conn: RawConnection, sent: Buffer[], gapMs: number): Promise<void> {
  conn.write('POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (let i = 0; i < 5; i++) {
    const piece = Buffer.from(`piece ${i};`);
    sent.push(piece);
    conn.write(chunked(piece));
    await sleep(gapMs);
  }
  conn.write('0\r\n\r\n');
}

test('a chunked body sent slowly does not block the worker: other requests are answered meanwhile', async () => {
  const conn = await RawConnection.open(server.port);
  const sent: Buffer[] = [];
  const slow = slowHashUpload(conn, sent, 250);
  await sleep(100);
  const fast = await request(server.url, '/fast');
  assert.equal(fast.status, 200);
  assert.ok(fast.ms < 500, `a request took ${fast.ms} ms beside the slow upload`);
  await slow;
  const r = await conn.readResponse();
  conn.close();
  const seen = JSON.parse(r.body.toString()) as { sha256: string; messages: number };
  assert.equal(seen.sha256, sha256(sent));
  assert.ok(seen.messages >= 5, `the body came in ${seen.messages} messages`);
});

test('--timeout counts the app\'s time, not a slow client\'s: a body sent over longer than --timeout is answered', async () => {
  await withServer([`${UPLOAD_APPS}:app`, '--python', SYSTEM_PYTHON, '--timeout', '1'], async (gh) => {
    const conn = await RawConnection.open(gh.port);
    const sent: Buffer[] = [];
    await slowHashUpload(conn, sent, 400);
    const r = await conn.readResponse();
    conn.close();
    assert.equal(r.status, 200, r.body.toString());
    assert.equal((JSON.parse(r.body.toString()) as { sha256: string }).sha256, sha256(sent));
  });
});

test('an app that never reads the body holds the client back, and its answer still arrives', async () => {
  const piece = Buffer.alloc(256 * 1024, 1);
  const total = 256;
  const socket = connect({ port: server.port, host: '127.0.0.1' });
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => {});
  socket.write(`POST /never HTTP/1.1\r\nHost: x\r\nContent-Length: ${total * piece.length}\r\n\r\n`);
  let written = 0;
  let stop = false;
  const writing = (async () => {
    for (let i = 0; i < total && !stop; i++) {
      if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      written += piece.length;
    }
  })();
  assert.ok(await waitUntil(() => received.includes('"read": false'), 10000), `no answer: ${received.slice(0, 200)}`);
  stop = true;
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.ok(written < (total * piece.length) / 2, `the client got ${written} bytes out of ${total * piece.length} before the answer`);
  socket.destroy();
  await writing.catch(() => {});
});

test('a chunked body past the route max_request_body gets 413 mid-stream', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('POST /small/hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  const piece = chunked(Buffer.alloc(256 * 1024, 2));
  for (let i = 0; i < 6 && !conn.closed; i++) {
    conn.write(piece);
    await sleep(20);
  }
  const r = await conn.readResponse();
  conn.close();
  assert.equal(r.status, 413);
  const after = await request(server.url, '/fast');
  assert.equal(after.status, 200);
});

test('a chunk that is not well formed mid-stream gets 400 at once (not 408 after body_timeout), and the connection closes', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('POST /small/hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  conn.write(chunked(Buffer.alloc(1024, 4)));
  await sleep(50);
  conn.write('4; =v\r\nabcd\r\n0\r\n\r\n');
  const r = await conn.readResponse();
  await conn.waitClosed();
  assert.equal(r.status, 400);
  assert.equal((await request(server.url, '/fast')).status, 200);
});

test('past max_request_body after the response started: the connection is cut, the response never ends', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('POST /small/early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  await conn.waitForData((b) => b.includes('started\n'));
  const piece = chunked(Buffer.alloc(256 * 1024, 3));
  for (let i = 0; i < 6 && !conn.closed; i++) {
    conn.write(piece);
    await sleep(20);
  }
  await conn.waitClosed();
  const text = conn.pending.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(text, /done\n|\r\n0\r\n\r\n$/);
});

test('a body that stops arriving for body_timeout gets 408, and the app receive() says http.disconnect', async () => {
  await withServer([`${UPLOAD_APPS}:app`, '--python', SYSTEM_PYTHON, '--body-timeout', '1'], async (gh) => {
    const conn = await RawConnection.open(gh.port);
    const started = Date.now();
    conn.write('POST /hold HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    conn.write(chunked(Buffer.from('only this')));
    const r = await conn.readResponse(5000);
    conn.close();
    assert.equal(r.status, 408);
    assert.ok(Date.now() - started >= 900, 'answered before body_timeout');
    const seen = await request(gh.url, '/seen');
    assert.deepEqual(JSON.parse(seen.body), { seen: ['http.request', 'http.disconnect'] });
  });
});

for (const framing of ['Transfer-Encoding: chunked', 'Content-Length: 1000000']) {
  test(`a client that resets mid-body (${framing}): the app receive() gets http.disconnect`, async () => {
    const conn = await RawConnection.open(server.port);
    conn.write(`POST /hold HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n`);
    conn.write(framing.startsWith('Transfer') ? chunked(Buffer.from('first')) : 'first');
    await sleep(300);
    conn.socket.resetAndDestroy();
    let seen: string[] = [];
    assert.ok(
      await waitUntil(() => {
        void request(server.url, '/seen').then((r) => (seen = (JSON.parse(r.body) as { seen: string[] }).seen), () => {});
        return seen.includes('http.disconnect');
      }, 5000),
      `the app saw ${JSON.stringify(seen)}`,
    );
    assert.deepEqual(seen, ['http.request', 'http.disconnect']);
  });
}

test('Starlette: request.body() and request.stream() get a streamed body whole', { skip: !HAS_STARLETTE && 'python3-starlette is not installed' }, async () => {
  const body = randomBytes(3 * 1024 * 1024 + 7);
  const whole = await request(server.url, '/star/whole', { method: 'POST', body });
  assert.equal(whole.status, 200, whole.body);
  assert.deepEqual(JSON.parse(whole.body), { sha256: sha256(body), length: body.length });
  const conn = await RawConnection.open(server.port);
  conn.write('POST /star/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (let at = 0; at < body.length; at += 500_000) conn.write(chunked(body.subarray(at, at + 500_000)));
  conn.write('0\r\n\r\n');
  const r = await conn.readResponse();
  conn.close();
  const streamed = JSON.parse(r.body.toString()) as { sha256: string; length: number; pieces: number };
  assert.equal(streamed.sha256, sha256(body));
  assert.ok(streamed.pieces > 1, `request.stream() gave ${streamed.pieces} pieces`);
});

test('an HTTP/2 upload without Content-Length is streamed to the app', { skip: !hasCommand('openssl') && 'openssl is not installed' }, async () => {
  const key = join(dir, 'key.pem');
  const crt = join(dir, 'crt.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  await withServer([`${UPLOAD_APPS}:app`, '--python', SYSTEM_PYTHON, '--certfile', crt, '--keyfile', key], async (gh) => {
    const session = h2connect(`https://127.0.0.1:${gh.port}`, { rejectUnauthorized: false });
    try {
      const body = randomBytes(4 * 1024 * 1024);
      const text = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/hash', ':method': 'POST' });
        let out = '';
        stream.on('data', (c: Buffer) => (out += c.toString()));
        stream.on('end', () => resolve(out));
        stream.on('error', reject);
        stream.end(body);
      });
      const seen = JSON.parse(text) as { sha256: string; length: number; messages: number };
      assert.equal(seen.sha256, sha256(body));
      assert.ok(seen.messages > 1, `the body came in ${seen.messages} messages`);
    } finally {
      session.close();
    }
  });
});
