/**
 * The ASGI http.response.trailers extension: offered in the scope only when
 * the request says `TE: trailers`; the trailer fields come after the body as
 * the last chunk's trailer section over HTTP/1.1 (after compression too) and
 * as an HTTP/2 trailing HEADERS frame. App: test/apps/asgi_trailer_apps.py.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { APPS, hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, withServer, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';

const TRAILER_APPS = `${APPS}/asgi_trailer_apps.py`;
const BODY = 'first part, ' + 'second part, '.repeat(200) + 'last part\n';
const CHECKSUM = createHash('sha256').update(BODY).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-trailers-'));
let server: Server;

before(async () => {
  server = await launch([`${TRAILER_APPS}:app`, '--python', SYSTEM_PYTHON, '--compress', 'gzip']);
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('HTTP/1.1 with TE: trailers: the trailer fields follow the last chunk, and the connection goes on', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('GET /t HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n');
  await conn.waitForData((b) => b.toString('latin1').endsWith('x-parts: 3\r\n\r\n'));
  const text = conn.pending.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /\r\nTransfer-Encoding: chunked\r\n/i);
  assert.ok(text.endsWith(`\r\n0\r\nx-checksum: ${CHECKSUM}\r\nx-parts: 3\r\n\r\n`), JSON.stringify(text.slice(-200)));
  // The body between the head and the trailers is the app's, de-chunked.
  const chunks = text.slice(text.indexOf('\r\n\r\n') + 4);
  let body = '';
  for (let at = 0; ; ) {
    const eol = chunks.indexOf('\r\n', at);
    const size = parseInt(chunks.slice(at, eol), 16);
    if (size === 0) break;
    body += chunks.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
  assert.equal(body, BODY);
  conn.write('GET /again HTTP/1.1\r\nHost: x\r\n\r\n');
  await conn.waitForData((b) => b.toString('latin1').endsWith('no trailers offered\n'));
  conn.close();
});

test('compressed: the encoder ends before the trailers', async () => {
  const got = await new Promise<{ headers: IncomingHttpHeaders; trailers: NodeJS.Dict<string>; body: Buffer }>((resolve, reject) => {
    const req = httpRequest({ port: server.port, host: '127.0.0.1', path: '/z', headers: { TE: 'trailers', 'Accept-Encoding': 'gzip' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(got.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(got.body).toString(), BODY);
  assert.deepEqual(got.trailers, { 'x-checksum': CHECKSUM, 'x-parts': '3' });
});

test('without TE: trailers the scope offers no trailers extension', async () => {
  const conn = await RawConnection.open(server.port);
  conn.write('GET /t HTTP/1.1\r\nHost: x\r\nTE: gzip\r\n\r\n');
  const r = await conn.readResponse();
  conn.close();
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'no trailers offered\n');
  assert.doesNotMatch(conn.pending.toString('latin1'), /x-checksum/);
});

test('HTTP/2: the trailers arrive as trailing headers', { skip: !hasCommand('openssl') && 'openssl is not installed' }, async () => {
  const key = join(dir, 'key.pem');
  const crt = join(dir, 'crt.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  await withServer([`${TRAILER_APPS}:app`, '--python', SYSTEM_PYTHON, '--certfile', crt, '--keyfile', key], async (gh) => {
    const session = h2connect(`https://127.0.0.1:${gh.port}`, { rejectUnauthorized: false });
    try {
      const get = (headers: Record<string, string>) =>
        new Promise<{ body: string; trailers: Record<string, unknown> | null }>((resolve, reject) => {
          const stream = session.request({ ':path': '/t', ...headers });
          let body = '';
          let trailers: Record<string, unknown> | null = null;
          stream.on('data', (c: Buffer) => (body += c.toString()));
          stream.on('trailers', (t) => (trailers = { ...t }));
          stream.on('end', () => resolve({ body, trailers }));
          stream.on('error', reject);
        });
      const withTrailers = await get({ te: 'trailers' });
      assert.equal(withTrailers.body, BODY);
      assert.equal(withTrailers.trailers?.['x-checksum'], CHECKSUM);
      assert.equal(withTrailers.trailers?.['x-parts'], '3');
      const without = await get({});
      assert.equal(without.body, 'no trailers offered\n');
      assert.equal(without.trailers, null);
    } finally {
      session.close();
    }
  });
});
