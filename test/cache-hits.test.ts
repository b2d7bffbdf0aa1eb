/**
 * The HTTP cache (src/cache/, test/helpers/cache-origin.ts): what is
 * stored and answered from the store, and what never is: freshness,
 * Cache-Status and Age, the header names spelled as the origin's, requests'
 * Cache-Control, HEAD, requests node:http reads, conditional and range
 * requests answered from a stored response, Vary and compressed variants.
 * Every rule is checked by what a client gets and how often the origin was
 * called.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { at, calls, get, serveCache, server, status } from './helpers/cache-origin.js';
import { RawConnection } from './helpers/raw-connection.js';

serveCache();

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
