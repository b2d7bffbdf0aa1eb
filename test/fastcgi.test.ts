/**
 * The `fastcgi` action against a real php-fpm (Debian's php-fpm; the tests
 * skip without it): $_SERVER as PHP sees it, POST bodies (a 1 MiB upload
 * spilled to disk and streamed), Status/Location handling, STDERR in the
 * error log, kept-alive connections reused and replaced when php-fpm
 * recycles a child, a big response.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { APPS } from './helpers/gatehouse.js';
import { countingRelay, hasPhpFpm, startPhpFpm, tempDir, type Peer } from './helpers/back-ends.js';

const skip = hasPhpFpm() ? false : 'needs Debian php-fpm (php-fpm8.2)';
const ROOT = join(APPS, 'php');
let tmp: ReturnType<typeof tempDir>;
let fpm: Peer;
let recycling: Peer;
let relay: Awaited<ReturnType<typeof countingRelay>>;
let gh: Server;

before(async () => {
  if (skip) return;
  tmp = tempDir('fastcgi');
  const sock = join(tmp.dir, 'php.sock');
  fpm = await startPhpFpm(tmp.dir, sock);
  // A second php-fpm whose only child is replaced after every 3 requests, behind a relay that counts connections.
  const sock2 = join(tmp.dir, 'php2.sock');
  const dir2 = join(tmp.dir, 'second');
  mkdirSync(dir2);
  recycling = await startPhpFpm(dir2, sock2, { 'pm.max_children': 1, 'pm.max_requests': 3 });
  relay = await countingRelay(sock2);
  // A route's root is joined with the whole URL path, as nginx's `root`: /kept/x.php is ROOT/kept/x.php.
  for (const prefix of ['kept', 'slow']) symlinkSync(ROOT, join(tmp.dir, prefix));
  const config = join(tmp.dir, 'site.toml');
  writeFileSync(
    config,
    `max_request_body = "16m"\n` +
      `[[routes]]\npath = "/"\nfastcgi = { pass = "unix:${sock}", root = ${JSON.stringify(ROOT)}, split_path_info = '^(.+\\.php)(/.*)$', params = { APP_ENV = "test" } }\n` +
      `[[routes]]\npath = "/kept"\nfastcgi = { pass = "127.0.0.1:${relay.port}", root = ${JSON.stringify(tmp.dir)}, keepalive = 4 }\n` +
      `[[routes]]\npath = "/slow"\nfastcgi = { pass = "unix:${sock}", root = ${JSON.stringify(tmp.dir)}, read_timeout = 1 }\n`,
  );
  gh = await launch(['--config', config, '--bind', '127.0.0.1:0'], { workers: 0 });
});

after(async () => {
  if (skip) return;
  await gh?.kill();
  await relay?.close();
  await fpm?.stop();
  await recycling?.stop();
  tmp.remove();
});

test('$_SERVER: CGI/1.1 variables as nginx fastcgi_params sends them, with split_path_info and extra params', { skip }, async () => {
  const res = await request(gh.url, '/info.php/extra/p%20ath?a=1&b=x%20y', { headers: { 'X-Custom': 'v1', Cookie: 'k=1', 'X-Forwarded-For': '6.6.6.6' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  const s = JSON.parse(res.body) as Record<string, unknown>;
  assert.equal(s.SCRIPT_NAME, '/info.php');
  assert.equal(s.PATH_INFO, '/extra/p ath');
  assert.equal(s.SCRIPT_FILENAME, join(ROOT, 'info.php'));
  assert.equal(s.DOCUMENT_ROOT, ROOT);
  assert.equal(s.QUERY_STRING, 'a=1&b=x%20y');
  assert.deepEqual(s.get, { a: '1', b: 'x y' });
  assert.equal(s.REQUEST_URI, '/info.php/extra/p%20ath?a=1&b=x%20y');
  assert.equal(s.DOCUMENT_URI, '/info.php/extra/p ath');
  assert.equal(s.REQUEST_METHOD, 'GET');
  assert.equal(s.SERVER_PROTOCOL, 'HTTP/1.1');
  assert.equal(s.GATEWAY_INTERFACE, 'CGI/1.1');
  assert.match(String(s.SERVER_SOFTWARE), /^gatehouse\//);
  assert.equal(s.REMOTE_ADDR, '127.0.0.1');
  assert.match(String(s.REMOTE_PORT), /^\d+$/);
  assert.equal(s.SERVER_ADDR, '127.0.0.1');
  assert.equal(s.SERVER_PORT, String(gh.port));
  assert.equal(s.REQUEST_SCHEME, 'http');
  assert.equal(s.HTTPS, null);
  assert.equal(s.HTTP_HOST, `127.0.0.1:${gh.port}`);
  assert.equal(s.HTTP_X_CUSTOM, 'v1');
  assert.equal(s.HTTP_COOKIE, 'k=1');
  assert.equal(s.HTTP_X_FORWARDED_FOR, null, 'an untrusted peer cannot forward a client address');
  assert.equal(s.APP_ENV, 'test');
  assert.equal(s.PHP_SELF, '/info.php/extra/p ath');
});

test('a directory URL runs the index file', { skip }, async () => {
  const res = await request(gh.url, '/');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'index of /index.php');
});

test('POST: a form, and a 1 MiB multipart upload (spilled to disk, streamed to php-fpm)', { skip }, async () => {
  const form = await request(gh.url, '/post.php', { method: 'POST', body: 'a=1&b=two', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(form.status, 200);
  assert.deepEqual(JSON.parse(form.body).post, { a: '1', b: 'two' });

  const raw = randomBytes(1024 * 1024 + 7);
  const plain = await request(gh.url, '/post.php', { method: 'POST', body: raw, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.deepEqual(JSON.parse(plain.body), { post: [], length: raw.length, md5: createHash('md5').update(raw).digest('hex'), files: [] });

  const boundary = 'gatehouse-boundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    raw,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const upload = await request(gh.url, '/post.php', { method: 'POST', body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
  assert.equal(upload.status, 200);
  assert.deepEqual(JSON.parse(upload.body).files, { f: { size: raw.length, md5: createHash('md5').update(raw).digest('hex') } });
});

test('Status and Location: a status with headers, Location alone is 302, an explicit 301, Status: with a reason', { skip }, async () => {
  const notFound = await request(gh.url, '/status.php?case=notfound');
  assert.equal(notFound.status, 404);
  assert.equal(notFound.headers['x-why'], 'missing');
  assert.equal(notFound.body, 'nope');
  assert.equal(notFound.headers.status, undefined, 'the Status header is not passed on');

  const found = await request(gh.url, '/status.php?case=location');
  assert.equal(found.status, 302);
  assert.equal(found.headers.location, '/there');

  const moved = await request(gh.url, '/status.php?case=moved');
  assert.equal(moved.status, 301);
  assert.equal(moved.headers.location, 'http://example.com/new');

  const teapot = await request(gh.url, '/status.php?case=teapot');
  assert.equal(teapot.status, 418);
  assert.equal(teapot.body, 'short and stout');

  const cookies = await request(gh.url, '/status.php?case=cookies');
  assert.deepEqual(cookies.headers['set-cookie'], ['a=1', 'b=2']);
});

test('STDERR lines go to the error log, naming the upstream', { skip }, async () => {
  const res = await request(gh.url, '/status.php?case=stderr&n=42');
  assert.equal(res.body, 'logged');
  const line = await gh.waitFor(/\[ERROR\] FastCGI unix:\S+php\.sock sent in stderr: "PHP message: marker-from-php 42"/, 5000);
  assert.ok(line);
});

test('a 4 MiB response streams through whole', { skip }, async () => {
  const res = await request(gh.url, '/status.php?case=big', { timeoutMs: 20000 });
  assert.equal(res.status, 200);
  assert.equal(res.raw.length, 256 * 16384);
  assert.equal(res.raw.subarray(16384, 16385).toString(), 'B');
});

test('kept-alive connections are reused, and replaced when php-fpm recycles its child', { skip }, async () => {
  const pids = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const res = await request(gh.url, '/kept/pid.php');
    assert.equal(res.status, 200, `request ${i}: ${res.body}`);
    pids.add(res.body);
  }
  // pm.max_requests = 3: four children in turn, each closing its connection as it exits.
  assert.ok(pids.size >= 4, `children: ${[...pids].join(', ')}`);
  assert.ok(relay.connections() >= 4 && relay.connections() <= 6, `${relay.connections()} connections for 12 requests`);
});

test('a script slower than read_timeout: 504 and an error-log line naming the upstream and the phase', { skip }, async () => {
  const started = Date.now();
  const res = await request(gh.url, '/slow/status.php?case=sleep');
  assert.equal(res.status, 504);
  assert.ok(Date.now() - started < 4000);
  await gh.waitFor(/upstream unix:\S+php\.sock failed while reading the response: timed out after 1 s \(504\)/, 3000);
});
