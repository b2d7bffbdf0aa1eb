/**
 * The `uwsgi` and `scgi` actions against a real uWSGI (Debian's uwsgi and
 * uwsgi-plugin-python3; the tests skip without them) on --socket and
 * --scgi-socket: the environ as the app sees it, bodies, a big response,
 * statuses and headers, the 64 KiB uwsgi vars limit (431), a back end down
 * (502) or hung (504).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';
import { get } from 'node:http';
import { APPS, hasCommand } from './helpers/gatehouse.js';
import { hasUwsgi, startUwsgi, tempDir, type Peer } from './helpers/back-ends.js';

const skip = hasUwsgi() ? false : 'needs Debian uwsgi and uwsgi-plugin-python3';
let tmp: ReturnType<typeof tempDir>;
let uwsgi: Peer;
let gh: Server;
let uwsgiSock: string;

before(async () => {
  if (skip) return;
  tmp = tempDir('uwsgi');
  uwsgiSock = join(tmp.dir, 'uwsgi.sock');
  const scgiSock = join(tmp.dir, 'scgi.sock');
  uwsgi = await startUwsgi(tmp.dir, join(APPS, 'upstream_wsgi.py'), { socket: uwsgiSock, scgi: scgiSock }, ['--buffer-size', '131072']);
  const config = join(tmp.dir, 'site.toml');
  writeFileSync(
    config,
    `max_header_size = "256k"\nmax_request_body = "16m"\n` +
      `[[routes]]\npath = "/u"\nuwsgi = { pass = "unix:${uwsgiSock}", params = { EXTRA = "yes" } }\n` +
      `[[routes]]\npath = "/s"\nscgi = { pass = "unix:${scgiSock}" }\n` +
      `[[routes]]\npath = "/hung"\nuwsgi = { pass = "unix:${uwsgiSock}", read_timeout = 1, buffering = false }\n` +
      `[[routes]]\npath = "/unbuffered"\nuwsgi = { pass = "unix:${uwsgiSock}", buffering = false }\n` +
      `[[routes]]\npath = "/down"\nscgi = { pass = "unix:${join(tmp.dir, 'nothing.sock')}" }\n` +
      `[[routes]]\npath = "/refused"\nuwsgi = { pass = "127.0.0.1:1" }\n`,
  );
  gh = await launch(['--config', config, '--bind', '127.0.0.1:0'], { workers: 0 });
});

after(async () => {
  if (skip) return;
  await gh?.kill();
  await uwsgi?.stop();
  tmp.remove();
});

for (const [action, prefix] of [['uwsgi', '/u'], ['scgi', '/s']] as const) {
  test(`${action}: the environ as the app sees it (SCRIPT_NAME from the route, PATH_INFO decoded, headers)`, { skip }, async () => {
    const res = await request(gh.url, `${prefix}/a%20b/c?x=1&y=%41`, { headers: { 'X-Custom': 'v', Cookie: 'k=1' } });
    assert.equal(res.status, 200, res.body);
    const env = (JSON.parse(res.body) as { environ: Record<string, string> }).environ;
    assert.equal(env.SCRIPT_NAME, prefix);
    assert.equal(env.PATH_INFO, '/a b/c');
    assert.equal(env.QUERY_STRING, 'x=1&y=%41');
    assert.equal(env.REQUEST_URI, `${prefix}/a%20b/c?x=1&y=%41`);
    assert.equal(env.REQUEST_METHOD, 'GET');
    assert.equal(env.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal(env.REMOTE_ADDR, '127.0.0.1');
    assert.equal(env.SERVER_PORT, String(gh.port));
    assert.equal(env.HTTP_HOST, `127.0.0.1:${gh.port}`);
    assert.equal(env.HTTP_X_CUSTOM, 'v');
    assert.equal(env.HTTP_COOKIE, 'k=1');
    assert.equal(env['wsgi.url_scheme'], 'http');
    if (action === 'uwsgi') assert.equal(env.EXTRA, 'yes');
    else assert.equal(env.SCGI, '1');
  });

  test(`${action}: a 3 MiB POST body arrives whole`, { skip }, async () => {
    const body = randomBytes(3 * 1024 * 1024 + 3);
    const res = await request(gh.url, `${prefix}/post`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 20000 });
    const got = JSON.parse(res.body) as { length: number; md5: string; environ: Record<string, string> };
    assert.equal(got.length, body.length);
    assert.equal(got.md5, createHash('md5').update(body).digest('hex'));
    assert.equal(got.environ.CONTENT_LENGTH, String(body.length));
    assert.equal(got.environ.CONTENT_TYPE, 'application/octet-stream');
  });

  test(`${action}: a 5 MiB response streams through, with its Content-Length`, { skip }, async () => {
    const res = await request(gh.url, `${prefix}/big`, { timeoutMs: 20000 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(5 * 1024 * 1024));
    assert.equal(res.raw.length, 5 * 1024 * 1024);
    assert.equal(res.raw.subarray(5 * 1024 * 1024 - 16).toString(), '0123456789abcdef');
  });

  test(`${action}: the app's status, reason and repeated headers pass`, { skip }, async () => {
    const res = await request(gh.url, `${prefix}/status`);
    assert.equal(res.status, 404);
    assert.equal(res.body, 'not here');
    assert.equal(res.headers['x-why'], 'missing');
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  });
}

test('uwsgi: variables over 64 KiB get 431 and are not sent', { skip }, async () => {
  const res = await request(gh.url, '/u/x', { headers: { 'X-Big': 'v'.repeat(70 * 1024) } });
  assert.equal(res.status, 431);
  await gh.waitFor(/GET \/u\/x: its variables do not fit a uwsgi packet/, 3000);
  // Under the limit it reaches the app (uWSGI itself takes at most 64 KiB, with --buffer-size).
  for (const prefix of ['/u', '/s']) {
    const fits = await request(gh.url, `${prefix}/x`, { headers: { 'X-Big': 'v'.repeat(40 * 1024) } });
    assert.equal(JSON.parse(fits.body).environ.HTTP_X_BIG.length, 40 * 1024, prefix);
  }
});

test('back end down: 502 at once, and a log line naming the upstream and the phase', { skip }, async () => {
  const started = Date.now();
  const down = await request(gh.url, '/down/x');
  assert.equal(down.status, 502);
  const refused = await request(gh.url, '/refused/x');
  assert.equal(refused.status, 502);
  assert.ok(Date.now() - started < 2000);
  await gh.waitFor(/GET \/down\/x: upstream unix:\S+nothing\.sock failed while connecting: ENOENT \(502\)/, 3000);
  await gh.waitFor(/GET \/refused\/x: upstream 127\.0\.0\.1:1 failed while connecting: ECONNREFUSED \(502\)/, 3000);
});

test('back end hung past read_timeout: 504, and the next request is served', { skip }, async () => {
  const started = Date.now();
  const res = await request(gh.url, '/hung/sleep');
  assert.equal(res.status, 504);
  assert.ok(Date.now() - started < 4000, `${Date.now() - started} ms`);
  await gh.waitFor(/GET \/hung\/sleep: upstream unix:\S+uwsgi\.sock failed while reading the response: timed out after 1 s \(504\)/, 3000);
  assert.equal((await request(gh.url, '/u/x')).status, 200);
});

test('HTTP/2 clients reach uwsgi and scgi back ends (uWSGI answers "HTTP/2.0 200 OK")', { skip: skip || (hasCommand('openssl') ? false : 'needs openssl') }, async () => {
  const cert = join(tmp.dir, 'cert.pem');
  const key = join(tmp.dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1']);
  assert.equal(made.status, 0, String(made.stderr));
  const tls = await launch(['--config', join(tmp.dir, 'site.toml'), '--bind', '127.0.0.1:0', '--certfile', cert, '--keyfile', key], { workers: 0 });
  const session = h2connect(tls.url, { rejectUnauthorized: false });
  try {
    for (const path of ['/u/big', '/s/big', '/u/status']) {
      const got = await new Promise<{ status: number; length: number; protocol: string }>((resolve, reject) => {
        const stream = session.request({ ':path': path });
        let length = 0;
        let status = 0;
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (d: Buffer) => (length += d.length));
        stream.on('end', () => resolve({ status, length, protocol: session.alpnProtocol ?? '' }));
        stream.on('error', reject);
      });
      assert.equal(got.protocol, 'h2');
      assert.equal(got.status, path === '/u/status' ? 404 : 200, path);
      if (path !== '/u/status') assert.equal(got.length, 5 * 1024 * 1024, path);
    }
    for (const prefix of ['/u', '/s']) {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': `${prefix}/env` });
        let text = '';
        stream.on('data', (d: Buffer) => (text += d.toString()));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      const env = (JSON.parse(body) as { environ: Record<string, string> }).environ;
      assert.equal(env.HTTPS, 'on', prefix);
      assert.equal(env['wsgi.url_scheme'], 'https', `${prefix}: uWSGI takes the scheme from HTTPS=on`);
      assert.equal(env.SERVER_PROTOCOL, 'HTTP/2.0', prefix);
    }
  } finally {
    session.close();
    await tls.kill();
  }
});

/** A GET whose client stops reading for `ms` after the first bytes; resolves with what it got in the end. */
function stalledGet(url: string, ms: number): Promise<{ length: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let length = 0;
      let stalled = false;
      res.on('data', (d: Buffer) => {
        length += d.length;
        if (stalled) return;
        stalled = true;
        res.pause();
        void sleep(ms).then(() => res.resume());
      });
      res.on('end', () => resolve({ length, complete: res.complete }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

test('buffering (the default): slow clients do not hold the back end; with buffering = false they do', { skip }, async () => {
  const size = 32 * 1024 * 1024;
  for (const [prefix, buffered] of [['/u', true], ['/unbuffered', false]] as const) {
    // uWSGI runs 2 processes: two stalled clients of a big response, then a third request.
    const stalls = [stalledGet(`${gh.url}${prefix}/big?${size}`, 3000), stalledGet(`${gh.url}${prefix}/big?${size}`, 3000)];
    await sleep(700);
    const started = Date.now();
    assert.equal((await request(gh.url, `${prefix}/x`)).status, 200);
    const took = Date.now() - started;
    if (buffered) assert.ok(took < 1500, `buffered: the third request waited ${took} ms`);
    else assert.ok(took >= 1500, `unbuffered: the third request waited only ${took} ms`);
    for (const got of await Promise.all(stalls)) assert.deepEqual(got, { length: size, complete: true });
  }
});

test('unbuffered, a client slower than read_timeout still gets the whole response: the clock stops while it is waited for', { skip }, async () => {
  const got = await stalledGet(`${gh.url}/hung/big`, 2500);
  assert.deepEqual(got, { length: 5 * 1024 * 1024, complete: true });
  assert.doesNotMatch(gh.output(), /GET \/hung\/big/);
});
