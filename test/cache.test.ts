/**
 * The HTTP cache (src/cache/): a real gatehouse with --cache in front of an
 * origin app of our own (test/apps/cache_origin.py) that counts its calls and
 * answers with the Cache-Control, Vary, ETag, Set-Cookie... it is asked for;
 * every rule is checked by what a client gets and how often the origin was
 * called. A second gatehouse runs a config file's per-route rules.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, runCli, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';

const APP = `${APPS}/cache_origin.py:app`;
const dir = mkdtempSync(join(tmpdir(), 'gh-cache-'));
let server: Server;
let routed: Server;

/** A path with the origin's answer described by its query. */
function at(path: string, q: Record<string, string> = {}): string {
  const query = new URLSearchParams(q).toString();
  return query === '' ? path : `${path}?${query}`;
}

async function calls(s: Server, path: string): Promise<{ calls: number; not_modified: number }> {
  const r = await request(s.url, at('/__calls', { path }));
  return JSON.parse(r.body) as { calls: number; not_modified: number };
}

function get(s: Server, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<SimpleResponse> {
  return request(s.url, path, { headers, method });
}

function status(r: SimpleResponse): string {
  return String(r.headers['cache-status'] ?? '');
}

before(async () => {
  server = await launch([APP, '--python', SYSTEM_PYTHON, '--cache', '16m', '--threads', '4', '--access-log', '-']);
  const config = join(dir, 'gatehouse.toml');
  writeFileSync(
    config,
    `
python = "${SYSTEM_PYTHON}"
workers = 1
threads = 4
bind = ["127.0.0.1:0"]
app = "${APP}"

[cache]
size = "4m"
max_object_size = "1k"
lock_timeout = 1
default_ttl = 60
bypass_cookies = ["session"]
purge_allow = ["10.0.0.0/8"]

[[routes]]
path = "/"
app = "main"

[[routes]]
path = "/cookies"
app = "main"
cache = { store_set_cookie = true }

[[routes]]
path = "/nokey"
app = "main"
cache = { key = "$host$uri" }

[[routes]]
path = "/off"
app = "main"
cache = false
`,
  );
  routed = await launch(['--config', config], { workers: 1 });
});

after(async () => {
  await server?.kill();
  await routed?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('a fresh response is stored and answered from the cache, with Age and Cache-Status', async () => {
  const path = at('/fresh', { cc: 'max-age=60' });
  const first = await get(server, path);
  assert.equal(first.status, 200);
  assert.match(status(first), /^gatehouse; fwd=uri-miss; fwd-status=200; stored$/);
  const second = await get(server, path);
  assert.equal(second.body, first.body);
  assert.match(status(second), /^gatehouse; hit; ttl=\d+$/);
  assert.match(String(second.headers.age), /^\d+$/);
  assert.equal(second.headers['content-length'], String(Buffer.byteLength(first.body)));
  assert.equal((await calls(server, '/fresh')).calls, 1);
  // Its header names are spelled as the origin's, not as the store keeps them (lower case).
  const raw = await rawHead(`GET ${path} HTTP/1.1\r\n`);
  for (const name of ['Cache-Control', 'Content-Type', 'Age', 'Cache-Status', 'Content-Length']) assert.match(raw, new RegExp(`\r\n${name}: `), raw);
});

/** The head of a request sent on a raw connection: its header names as the client reads them. */
async function rawHead(head: string): Promise<string> {
  const c = await RawConnection.open(server.port);
  try {
    c.write(`${head}Host: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    return (await c.readResponse(5000, { headRequest: head.startsWith('HEAD ') })).rawHead;
  } finally {
    c.socket.destroy();
  }
}

test('answers the cache makes itself (a HEAD miss not stored, only-if-cached) spell their header names too', async () => {
  // HEAD asks the origin for the GET and answers with its head: not storable here (Set-Cookie).
  const head = await rawHead(`HEAD ${at('/spelled-head', { cc: 'max-age=60', cookie: 'a=b' })} HTTP/1.1\r\n`);
  for (const name of ['Content-Type', 'Cache-Control', 'Set-Cookie', 'Cache-Status', 'Content-Length']) assert.match(head, new RegExp(`\r\n${name}: `), head);
  assert.doesNotMatch(head, /\r\n[a-z][a-z-]*: /, head);
  const refused = await rawHead(`GET ${at('/spelled-504')} HTTP/1.1\r\nCache-Control: only-if-cached\r\n`);
  assert.match(refused, /^HTTP\/1\.1 504 /);
  for (const name of ['Content-Type', 'Content-Length', 'Cache-Status']) assert.match(refused, new RegExp(`\r\n${name}: `), refused);
});

test('a hit answered again from the front (same second) is not given to requests it does not fit', async () => {
  const path = at('/reused', { cc: 'max-age=60', etag: '"x1"' });
  await get(server, path);
  for (let i = 0; i < 3; i++) assert.match(status(await get(server, path)), /^gatehouse; hit; ttl=\d+$/);
  assert.match(status(await get(server, path, { authorization: 'Basic dTpw' })), /^gatehouse; fwd=bypass$/);
  assert.match(status(await get(server, path, { 'cache-control': 'no-cache' })), /fwd=request; fwd-status=304/);
  assert.match(status(await get(server, path, { pragma: 'no-cache' })), /fwd=request; fwd-status=304/);
  assert.deepEqual(await calls(server, '/reused'), { calls: 4, not_modified: 2 });
});

// Each is asked twice: none may answer from the cache, so the origin answers both.
const NOT_STORED: { name: string; q: Record<string, string>; headers?: Record<string, string>; status: RegExp }[] = [
  { name: 'no-store', q: { cc: 'no-store' }, status: /fwd=uri-miss; fwd-status=200; detail=not-storable/ },
  { name: 'private', q: { cc: 'private, max-age=60' }, status: /detail=not-storable/ },
  { name: 'Set-Cookie', q: { cc: 'max-age=60', cookie: 'a=b' }, status: /detail=set-cookie/ },
  { name: 'Vary: *', q: { cc: 'max-age=60', vary: '*' }, status: /detail=vary-star/ },
  // Kept for grace (an origin failure), never a hit.
  { name: 'max-age=0', q: { cc: 'max-age=0' }, status: /^gatehouse; fwd=(uri-miss|stale); fwd-status=200/ },
  { name: 's-maxage=0 beats max-age', q: { cc: 'max-age=60, s-maxage=0' }, status: /^gatehouse; fwd=(uri-miss|stale); fwd-status=200/ },
  { name: 'Authorization', q: { cc: 'max-age=60' }, headers: { authorization: 'Basic dTpw' }, status: /^gatehouse; fwd=bypass$/ },
  { name: 'a status not cacheable by default without freshness', q: { status: '500' }, status: /detail=not-storable/ },
];

for (const c of NOT_STORED) {
  test(`never a hit: ${c.name}`, async () => {
    const path = at(`/not-stored/${encodeURIComponent(c.name)}`, c.q);
    for (let i = 0; i < 2; i++) assert.match(status(await get(server, path, c.headers)), c.status);
    assert.equal((await calls(server, `/not-stored/${c.name}`)).calls, 2);
  });
}

test("requests' Cache-Control: no-cache and max-age=0 revalidate, only-if-cached never reaches the origin", async () => {
  const path = at('/req-cc', { cc: 'max-age=60', etag: '"r1"' });
  await get(server, path);
  const noCache = await get(server, path, { 'cache-control': 'no-cache' });
  // RFC 9211's `request`: a fresh response was stored, the request's own directives sent it on.
  assert.match(status(noCache), /fwd=request; fwd-status=304; stored/);
  const maxAge0 = await get(server, path, { 'cache-control': 'max-age=0' });
  assert.match(status(maxAge0), /fwd=request; fwd-status=304/);
  assert.match(status(await get(server, path, { 'cache-control': 'max-stale=5' })), /hit/);
  assert.deepEqual(await calls(server, '/req-cc'), { calls: 3, not_modified: 2 });
  const cached = await get(server, path, { 'cache-control': 'only-if-cached' });
  assert.equal(cached.status, 200);
  const uncached = await get(server, at('/req-cc-none', { cc: 'max-age=60' }), { 'cache-control': 'only-if-cached' });
  assert.equal(uncached.status, 504);
  assert.equal((await calls(server, '/req-cc-none')).calls, 0);
});

test('must-revalidate: answered while fresh (the library alone would not)', async () => {
  const path = at('/must', { cc: 'max-age=60, must-revalidate' });
  await get(server, path);
  assert.match(status(await get(server, path)), /hit/);
  assert.equal((await calls(server, '/must')).calls, 1);
});

test('the client of a coalesced miss leaves: the requests waiting for it are still answered', async () => {
  const path = at('/leaver', { cc: 'max-age=60', sleep: '0.5' });
  const leaver = request(server.url, path, { timeoutMs: 100 }).then(
    () => 'answered',
    () => 'left',
  );
  await sleep(50);
  const waiter = get(server, path);
  assert.equal(await leaver, 'left');
  const answer = await waiter;
  assert.equal(answer.status, 200);
  assert.match(answer.body, /^GET \/leaver call \d /);
});

test('the client of a coalesced miss resets mid-answer (fast path): the request waiting for it fetches for itself at once', async () => {
  // lock_timeout is 5 s: the stale response is what a wait ended by it answers with (lock-timeout),
  // or one told that the fetch failed (stale-if-error).
  const path = at('/reset-leaver', { cc: 'max-age=1', chunked: '1', size: '768' });
  await get(server, path);
  await sleep(2100);
  const leaver = await RawConnection.open(server.port);
  try {
    leaver.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: 3\r\n\r\n`);
    // Its answer has started: the head and the first part are out, the rest comes seconds later.
    await leaver.waitForData((b) => b.includes('\r\n\r\n'));
    const waiter = get(server, path);
    await sleep(200);
    leaver.socket.resetAndDestroy();
    const answer = await waiter;
    assert.equal(answer.status, 200);
    assert.match(status(answer), /^gatehouse; fwd=stale; fwd-status=200/);
    assert.equal((await calls(server, '/reset-leaver')).calls, 3);
  } finally {
    leaver.close();
  }
});

test("requests node:http reads (a repeated Connection header: HTTP/1.0, a chunked body) are cached and invalidate as the front's own do", async () => {
  const page = at('/node-path', { cc: 'max-age=60' });
  const ask10 = async () => {
    const c = await RawConnection.open(server.port);
    c.write(`GET ${page} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\nConnection: close\r\n\r\n`);
    const r = await c.readResponse();
    c.socket.destroy();
    return r;
  };
  const first = await ask10();
  assert.equal(first.status, 200);
  assert.match(first.header('cache-status') ?? '', /fwd=uri-miss; fwd-status=200; stored/);
  const second = await ask10();
  assert.match(second.header('cache-status') ?? '', /^gatehouse; hit/);
  assert.equal(second.body.toString(), first.body.toString());
  assert.match((await get(server, page)).headers['cache-status'] as string, /hit/, 'the same key on the fast path');
  const c = await RawConnection.open(server.port);
  c.write(`POST ${page} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
  const post = await c.readResponse();
  c.socket.destroy();
  assert.equal(post.status, 200);
  assert.equal(post.header('cache-status'), 'gatehouse; fwd=method');
  assert.match(status(await get(server, page)), /miss/);
});

test('HEAD is answered from a stored GET, and a HEAD miss stores the GET', async () => {
  const path = at('/head', { cc: 'max-age=60' });
  const head = await get(server, path, {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.match(status(head), /fwd=uri-miss; fwd-status=200; stored/);
  const full = await get(server, path);
  assert.match(status(full), /hit/);
  assert.match(full.body, /^GET \/head call 1/, 'the origin was asked for a GET');
  assert.equal(head.headers['content-length'], String(full.body.length));
  const again = await get(server, path, {}, 'HEAD');
  assert.match(status(again), /hit/);
  assert.equal(again.headers['content-length'], String(full.body.length));
  assert.equal((await calls(server, '/head')).calls, 1);
});

test("clients' conditional and range requests are answered from the stored full response", async () => {
  const path = at('/cond', { cc: 'max-age=60', etag: '"v1"' });
  const full = await get(server, path, { 'if-none-match': '"v1"' });
  assert.equal(full.status, 200, 'a miss asks the origin for the whole response');
  const notModified = await get(server, path, { 'if-none-match': '"v1"' });
  assert.equal(notModified.status, 304);
  assert.match(status(notModified), /hit/);
  assert.equal(notModified.headers.etag, '"v1"');
  const range = await get(server, path, { range: 'bytes=0-3' });
  assert.equal(range.status, 206);
  assert.equal(range.body, full.body.slice(0, 4));
  assert.equal(range.headers['content-range'], `bytes 0-3/${full.body.length}`);
  const past = await get(server, path, { range: 'bytes=9999-' });
  assert.equal(past.status, 416);
  const otherTag = await get(server, path, { range: 'bytes=0-3', 'if-range': '"v0"' });
  assert.equal(otherTag.status, 200, 'If-Range with another ETag: the whole response');
  assert.deepEqual(await calls(server, '/cond'), { calls: 1, not_modified: 0 });
});

test("If-Match and If-Unmodified-Since on a hit: 412 when they fail, evaluated in RFC 9110's order", async () => {
  const path = at('/precond', { cc: 'max-age=60', etag: '"p1"', lm: 'Wed, 01 Jan 2025 00:00:00 GMT' });
  await get(server, path);
  const before = 'Tue, 31 Dec 2024 00:00:00 GMT';
  const after = 'Thu, 02 Jan 2025 00:00:00 GMT';
  const cases: [Record<string, string>, number][] = [
    [{ 'if-match': '"p1"' }, 200],
    [{ 'if-match': '"p0", "p1"' }, 200],
    [{ 'if-match': '*' }, 200],
    [{ 'if-match': '"p0"' }, 412],
    [{ 'if-match': 'W/"p1"' }, 412],
    [{ 'if-unmodified-since': after }, 200],
    [{ 'if-unmodified-since': before }, 412],
    [{ 'if-unmodified-since': 'not a date' }, 200],
    [{ 'if-match': '"p1"', 'if-unmodified-since': before }, 200],
    [{ 'if-match': '"p0"', 'if-none-match': '"p1"' }, 412],
    [{ 'if-match': '"p1"', 'if-none-match': '"p1"' }, 304],
    [{ 'if-none-match': '"p1"', 'if-modified-since': before }, 304],
    [{ 'if-unmodified-since': before, range: 'bytes=0-3' }, 412],
  ];
  for (const [headers, expected] of cases) {
    const r = await get(server, path, headers);
    assert.equal(r.status, expected, JSON.stringify(headers));
    assert.match(status(r), /^gatehouse; hit/);
  }
  const head = await get(server, path, { 'if-match': '"p0"' }, 'HEAD');
  assert.equal(head.status, 412);
  assert.equal(head.body, '');
  const notStoredStatus = at('/precond-404', { cc: 'max-age=60', etag: '"p1"', status: '404' });
  await get(server, notStoredStatus);
  assert.equal((await get(server, notStoredStatus, { 'if-match': '"p0"' })).status, 404, 'preconditions apply to 2xx answers only');
  assert.equal((await calls(server, '/precond')).calls, 1);
});

test('several ranges of a stored response: one multipart/byteranges 206, as nginx', async () => {
  const path = at('/multi', { cc: 'max-age=60', size: '100' });
  const full = (await get(server, path)).body;
  const r = await get(server, path, { range: 'bytes=0-9,20-29' });
  assert.equal(r.status, 206);
  assert.match(status(r), /^gatehouse; hit/);
  const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(String(r.headers['content-type']))?.[1];
  assert.ok(boundary !== undefined, String(r.headers['content-type']));
  const part = (from: number, to: number) => `--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes ${from}-${to}/100\r\n\r\n${full.slice(from, to + 1)}`;
  assert.equal(r.body, `${part(0, 9)}\r\n${part(20, 29)}\r\n--${boundary}--\r\n`);
  assert.equal(r.headers['content-length'], String(r.raw.length));
  const head = await get(server, path, { range: 'bytes=0-9,20-29' }, 'HEAD');
  assert.equal(head.status, 206);
  assert.equal(head.body, '');
  const overlapping = await get(server, path, { range: 'bytes=0-9,5-14' });
  assert.equal(overlapping.headers['content-range'], 'bytes 0-14/100', 'overlapping ranges are one part');
  assert.equal(overlapping.body, full.slice(0, 15));
  assert.equal((await calls(server, '/multi')).calls, 1);
});

test('a stale response is revalidated with the origin; its 304 refreshes the stored one', async () => {
  const path = at('/reval', { cc: 'max-age=1', etag: '"e1"' });
  const first = await get(server, path);
  await sleep(2100);
  const second = await get(server, path);
  assert.equal(second.status, 200);
  assert.equal(second.body, first.body);
  assert.match(status(second), /fwd=stale; fwd-status=304; stored/);
  const third = await get(server, path);
  assert.match(status(third), /hit/);
  assert.deepEqual(await calls(server, '/reval'), { calls: 2, not_modified: 1 });
});

test('Vary: each variant stored apart', async () => {
  const path = at('/vary', { cc: 'max-age=60', vary: 'Accept-Language' });
  const en = await get(server, path, { 'accept-language': 'en' });
  const fr = await get(server, path, { 'accept-language': 'fr' });
  assert.match(en.body, /lang=en/);
  assert.match(fr.body, /lang=fr/);
  assert.match(status(fr), /^gatehouse; fwd=vary-miss; fwd-status=200; stored$/);
  const enAgain = await get(server, path, { 'accept-language': 'en' });
  assert.equal(enAgain.body, en.body);
  assert.match(status(enAgain), /hit/);
  const frAgain = await get(server, path, { 'accept-language': 'fr' });
  assert.equal(frAgain.body, fr.body);
  // A request directive: the library matches the Vary headers itself, against those it kept of the stored response's request.
  const withDirective = await get(server, path, { 'accept-language': 'en', 'cache-control': 'max-age=600' });
  assert.equal(withDirective.body, en.body);
  assert.match(status(withDirective), /hit/);
  assert.equal((await calls(server, '/vary')).calls, 2);
});

test('a compressed variant never goes to a client that did not accept it', async () => {
  const path = at('/gz', { cc: 'max-age=60', size: '4000' });
  const gz = await get(server, path, { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  const gzHit = await get(server, path, { 'accept-encoding': 'gzip' });
  assert.match(status(gzHit), /hit/);
  assert.match(gunzipSync(gzHit.raw).toString(), /^GET \/gz call 1 /);
  const plain = await get(server, path);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.length, 4000);
  assert.match(plain.body, /^GET \/gz call 2 /, 'the identity variant is fetched and stored apart');
  const plainHit = await get(server, path);
  assert.match(status(plainHit), /hit/);
  assert.equal(plainHit.headers['content-encoding'], undefined);
  const spelledOtherwise = await get(server, path, { 'accept-encoding': 'deflate;q=0, GZIP' });
  assert.match(status(spelledOtherwise), /hit/, 'Accept-Encoding that accepts the same codings: the same variant');
  assert.equal(spelledOtherwise.headers['content-encoding'], 'gzip');
  assert.equal((await calls(server, '/gz')).calls, 2);
});

test('100 concurrent misses of one key: one origin call', async () => {
  const path = at('/herd', { cc: 'max-age=60', sleep: '0.3' });
  const answers = await Promise.all(Array.from({ length: 100 }, () => get(server, path)));
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.match(a.body, /call 1 /);
  }
  assert.equal((await calls(server, '/herd')).calls, 1);
});

test('concurrent misses of a response that is not storable each reach the origin', async () => {
  const path = at('/herd-uncacheable', { cc: 'no-store', sleep: '0.1' });
  await get(server, path);
  const answers = await Promise.all(Array.from({ length: 5 }, () => get(server, path)));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
  assert.equal((await calls(server, '/herd-uncacheable')).calls, 6);
});

test('stale-while-revalidate: the stale response at once, refreshed in the background', async () => {
  const path = at('/swr', { cc: 'max-age=1, stale-while-revalidate=30' });
  await get(server, path);
  await sleep(2100);
  const stale = await get(server, path);
  assert.match(stale.body, /call 1 /);
  assert.match(status(stale), /hit; ttl=-\d+; detail=stale-while-revalidate/);
  let n = 0;
  for (let i = 0; i < 40 && n < 2; i++) {
    n = (await calls(server, '/swr')).calls;
    if (n < 2) await sleep(50);
  }
  assert.equal(n, 2, 'the background refresh reached the origin');
  const fresh = await get(server, path);
  assert.match(fresh.body, /call 2 /);
  assert.match(status(fresh), /hit; ttl=\d+$/);
});

test('one access log line per client request: a HEAD miss, a revalidation and a background refresh add none of the origin fetch', async () => {
  const tag = `log${Date.now()}`;
  const head = at(`/${tag}-head`, { cc: 'max-age=60' });
  const reval = at(`/${tag}-reval`, { cc: 'max-age=1', etag: '"e1"' });
  const swr = at(`/${tag}-swr`, { cc: 'max-age=1, stale-while-revalidate=30' });
  await get(server, head, {}, 'HEAD');
  await get(server, reval);
  await get(server, swr);
  await sleep(2100);
  assert.match(status(await get(server, reval)), /fwd-status=304/);
  assert.match(status(await get(server, swr)), /stale-while-revalidate/);
  for (let i = 0; i < 50 && (await calls(server, `/${tag}-swr`)).calls < 2; i++) await sleep(100);
  assert.equal((await calls(server, `/${tag}-swr`)).calls, 2, 'the background refresh ran');
  await sleep(300);
  const lines = (what: string) => server.output().split('\n').filter((l) => new RegExp(`"(GET|HEAD) /${tag}-${what}`).test(l));
  assert.equal(lines('head').length, 1, lines('head').join('\n'));
  assert.match(lines('head')[0]!, /"HEAD .* 200 /);
  assert.equal(lines('reval').length, 2, lines('reval').join('\n'));
  assert.equal(lines('swr').length, 2, lines('swr').join('\n'));
});

test('stale-if-error and grace: a stale response answers while the origin fails', async () => {
  const sie = at('/sie', { cc: 'max-age=1, stale-if-error=60' });
  const grace = at('/grace', { cc: 'max-age=1' });
  const none = at('/no-grace', { cc: 'max-age=1, must-revalidate' });
  const first = await get(server, sie);
  await get(server, grace);
  await get(server, none);
  await sleep(2100);
  await request(server.url, at('/__fail', { on: '1' }));
  try {
    const stale = await get(server, sie);
    assert.equal(stale.status, 200);
    assert.equal(stale.body, first.body);
    assert.match(status(stale), /hit; ttl=-\d+; fwd-status=503; detail=stale-if-error/);
    const graced = await get(server, grace);
    assert.equal(graced.status, 200, 'within the default grace (10 s)');
    const failed = await get(server, none);
    assert.equal(failed.status, 503, 'must-revalidate: never served stale');
  } finally {
    await request(server.url, at('/__fail', { on: '0' }));
  }
});

test('requests waiting on a fetch that fails get the stale response within grace, not a fetch each', async () => {
  const path = at('/grace-herd', { cc: 'max-age=1', sleep: '0.3' });
  const first = await get(server, path);
  await sleep(2100);
  await request(server.url, at('/__fail', { on: '1' }));
  try {
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(server, path)));
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.body, first.body);
      assert.match(status(a), /^gatehouse; hit; ttl=-\d+;( fwd-status=503;)? detail=stale-if-error$/);
    }
    assert.equal((await calls(server, '/grace-herd')).calls, 2, 'one fetch for all of them');
  } finally {
    await request(server.url, at('/__fail', { on: '0' }));
  }
});

test('requests waiting past the lock timeout on a slow fetch get the stale response within grace', async () => {
  // routed: lock_timeout = 1
  const path = at('/slow-herd', { cc: 'max-age=1', sleep: '1.6' });
  const first = await get(routed, path);
  await sleep(2100);
  const answers = await Promise.all(Array.from({ length: 4 }, () => get(routed, path)));
  const stale = answers.filter((a) => /detail=lock-timeout/.test(status(a)));
  assert.equal(stale.length, 3, answers.map(status).join('\n'));
  for (const a of stale) assert.equal(a.body, first.body);
  assert.equal((await calls(routed, '/slow-herd')).calls, 2);
});

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
