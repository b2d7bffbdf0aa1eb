/**
 * The HTTP cache's invalidation and settings (test/helpers/cache-origin.ts):
 * PURGE of a URL, a tag and everything, and who may send it; unsafe methods
 * invalidating; a config file's per-route rules (default_ttl, bypass
 * cookies, store_set_cookie, key, cache = false, max_object_size); and bad
 * cache settings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { APP, at, calls, dir, get, routed, serveCache, server, status } from './helpers/cache-origin.js';
import { runCli } from './helpers/launch.js';

serveCache({ routed: true });

test('Cache-Status says `stored` only when it is known at the head: a chunked body may outgrow max_object_size', async () => {
  // routed: max_object_size = 1k
  const big = at('/chunked-big', { cc: 'max-age=60', size: '3000', chunked: '1' });
  const first = await get(routed, big);
  assert.equal(first.headers['content-length'], undefined, 'the body went chunked');
  assert.equal(first.body.length, 3000);
  assert.equal(status(first), 'gatehouse; fwd=uri-miss; fwd-status=200');
  assert.match(status(await get(routed, big)), /fwd=/, 'it was not stored');
  const small = at('/chunked-small', { cc: 'max-age=60', size: '600', chunked: '1' });
  assert.equal(status(await get(routed, small)), 'gatehouse; fwd=uri-miss; fwd-status=200');
  assert.match(status(await get(routed, small)), /^gatehouse; hit/, 'stored all the same');
  const known = at('/chunked-known', { cc: 'max-age=60', size: '600' });
  assert.equal(status(await get(routed, known)), 'gatehouse; fwd=uri-miss; fwd-status=200; stored', 'a Content-Length tells at the head');
});

test('PURGE of a URL, of a tag, and a flush', async () => {
  const p = at('/purge', { cc: 'max-age=60' });
  await get(server, p);
  assert.match(status(await get(server, p)), /hit/);
  const purged = await get(server, p, {}, 'PURGE');
  assert.equal(purged.status, 200);
  assert.equal((await get(server, p, {}, 'PURGE')).status, 404);
  assert.match(status(await get(server, p)), /miss/);

  const a = at('/tag-a', { cc: 'max-age=60', tag: 'blog, a' });
  const b = at('/tag-b', { cc: 'max-age=60', tag: 'blog' });
  const c = at('/tag-c', { cc: 'max-age=60', tag: 'other' });
  for (const path of [a, b, c]) await get(server, path);
  const byTag = await get(server, '/', { 'cache-tag': 'blog' }, 'PURGE');
  assert.equal(byTag.body.trim(), 'Purged 2');
  assert.match(status(await get(server, a)), /miss/);
  assert.match(status(await get(server, b)), /miss/);
  assert.match(status(await get(server, c)), /hit/);

  assert.equal((await get(server, '/', { 'cache-flush': 'all' }, 'PURGE')).status, 200);
  assert.match(status(await get(server, c)), /miss/);
});

test('PURGE from an address not allowed: 403', async () => {
  const r = await get(routed, '/anything', {}, 'PURGE');
  assert.equal(r.status, 403);
});

test('an unsafe method that succeeds invalidates the URL and its Location', async () => {
  const page = at('/inv', { cc: 'max-age=60' });
  const other = at('/inv-other', { cc: 'max-age=60' });
  await get(server, page);
  await get(server, other);
  const post = await get(server, page, {}, 'POST');
  assert.match(status(post), /^gatehouse; fwd=method$/);
  assert.match(status(await get(server, page)), /miss/);
  await get(server, at('/inv-post', { loc: other }), {}, 'POST');
  assert.match(status(await get(server, other)), /miss/);
  await get(server, at('/inv-post', { loc: other, status: '500' }), {}, 'POST');
  assert.match(status(await get(server, other)), /hit/, 'a failed POST invalidates nothing');
  // RFC 9111 §4.4: a method whose safety is unknown invalidates too; a safe one does not.
  await get(server, page);
  assert.match(status(await get(server, page, {}, 'PROPFIND')), /^gatehouse; fwd=bypass$/);
  assert.match(status(await get(server, page)), /hit/, 'PROPFIND is safe');
  assert.match(status(await get(server, page, {}, 'BREW')), /^gatehouse; fwd=method$/);
  assert.match(status(await get(server, page)), /miss/, 'BREW, a method the cache does not know, invalidates');
});

test('route rules: default_ttl, bypass cookies, store_set_cookie, key, cache = false, max_object_size', async () => {
  const plain = '/rules-ttl';
  await get(routed, plain);
  assert.match(status(await get(routed, plain)), /hit; ttl=(59|60)/, 'default_ttl for a response that states no freshness');

  const session = await get(routed, plain, { cookie: 'x=1; session=abc' });
  assert.equal(status(session), 'gatehouse; fwd=bypass');
  assert.match(session.body, /call 2 /);

  const withCookie = at('/cookies/c', { cookie: 'a=b' });
  await get(routed, withCookie);
  const storedCookie = await get(routed, withCookie);
  assert.match(status(storedCookie), /hit/);
  assert.equal(storedCookie.headers['set-cookie']?.[0], 'a=b');

  await get(routed, '/nokey/k?x=1');
  assert.match(status(await get(routed, '/nokey/k?x=2')), /hit/, 'the key ignores the query');

  const off = await get(routed, '/off/x');
  assert.equal(off.headers['cache-status'], undefined);

  const big = at('/big', { size: '2000' });
  assert.match(status(await get(routed, big)), /detail=too-large/);
  await get(routed, big);
  assert.equal((await calls(routed, '/big')).calls, 2);
});

test('bad cache settings: GH_ERR_CONFIG naming the key', async () => {
  const bad = await runCli([APP, '--cache', 'lots', '--python', SYSTEM_PYTHON]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr + bad.stdout, /GH_ERR_CONFIG: --cache: must be a size such as 256m/);
  const store = await runCli([APP, '--cache-store', 'redis://127.0.0.1:6379/db', '--python', SYSTEM_PYTHON]);
  assert.match(store.stderr + store.stdout, /GH_ERR_CONFIG: --cache-store: must be memcached:\/\/HOST:PORT, redis:\/\/HOST:PORT or redis:\/\/HOST:PORT\/DB \(got "redis:\/\/127\.0\.0\.1:6379\/db"\)/);
  const file = join(dir, 'bad.toml');
  writeFileSync(
    file,
    `app = "${APP}"
[cache]
size = "1m"
lock_timeout = -1
purge_allow = ["nowhere"]

[[routes]]
path = "/"
app = "main"
cache = { key = "$path", ttl = 5 }

[[routes]]
path = "/s"
return = { status = 200 }
cache = true

[[routes]]
path = "/m"
app = "main"
memcached = { server = "localhost", key = "$uri" }

[[routes]]
path = "/n"
return = { status = 200 }
memcached = { server = "127.0.0.1:11211" }
`,
  );
  const r = await runCli(['--config', file]);
  const text = r.stderr + r.stdout;
  assert.notEqual(r.code, 0);
  assert.match(text, /cache\.lock_timeout: must be 0 or more seconds/);
  assert.match(text, /cache\.purge_allow\[0\]: must be an IP address/);
  assert.match(text, /routes\[0\]\.cache\.key: must use at least one of \$scheme/);
  assert.match(text, /routes\[0\]\.cache\.ttl: unknown setting/);
  assert.match(text, /routes\[1\]\.cache: only app routes are cached/);
  assert.match(text, /routes\[2\]\.memcached\.server: must be HOST:PORT/);
  assert.match(text, /routes\[3\]\.memcached: needs the app a miss falls through to/);
});
