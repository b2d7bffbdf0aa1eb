/**
 * What a miss keeps from the response before it when the next looks alike
 * (the capture's header map, the judged headers, a plain policy's
 * storability and time to live, the stored headers and their facts, the
 * packed runs, the lookup the fast path made): a response that differs in
 * a way that matters (status, Cache-Control, Vary, Set-Cookie, validators,
 * Expires, Age, tags, the request's own headers) is judged, stored and
 * packed as it would have been on its own; a real gatehouse answers a run of
 * misses alike and unlike with what each asked for, and passes a large miss
 * on whole to a client that reads it slowly (the capture passes the
 * client's 'drain' on once a writer waits for it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import { toStore, type PolicySettings, type StoredResponse } from '../src/cache/cache-policy.js';
import { CachedHandler, type LeanHandler } from '../src/cache/cached-handler.js';
import { CaptureResponse, type HeaderMap } from '../src/cache/capture-response.js';
import { FetchLock } from '../src/cache/fetch-lock.js';
import { MemoryStore } from '../src/cache/memory-store.js';
import { packResponse, unpackResponse } from '../src/cache/packed-response.js';
import { DEFAULT_KEY } from '../src/cache/cache-key.js';
import type { HttpResponse, LeanRouteRequest } from '../src/http/handler.js';
import { PeerList } from '../src/http/peer-list.js';
import { Logger } from '../src/log/logger.js';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';

const POLICY: PolicySettings = { defaultTtl: 0, staleWhileRevalidate: 0, staleIfError: 0, grace: 0, storeSetCookie: false, storePrivate: false };
const BASE: HeaderMap = { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=3600', 'content-length': '1024' };
const BODY = Buffer.alloc(1024, 'x');

/** Responses (and requests) that differ from BASE's in one thing that matters. */
const UNLIKE: { name: string; headers: HeaderMap; status?: number; req?: IncomingHttpHeaders; settings?: PolicySettings }[] = [
  { name: 'another max-age', headers: { ...BASE, 'cache-control': 'public, max-age=60' } },
  { name: 'no-store', headers: { ...BASE, 'cache-control': 'no-store' } },
  { name: 'private', headers: { ...BASE, 'cache-control': 'private, max-age=3600' } },
  { name: 'must-revalidate', headers: { ...BASE, 'cache-control': 'public, max-age=3600, must-revalidate' } },
  { name: 'stale-if-error', headers: { ...BASE, 'cache-control': 'public, max-age=3600, stale-if-error=30' } },
  { name: 'Set-Cookie', headers: { ...BASE, 'set-cookie': 'a=1' } },
  { name: 'Set-Cookie, stored by the route', headers: { ...BASE, 'set-cookie': ['a=1', 'b=2'] }, settings: { ...POLICY, storeSetCookie: true } },
  { name: 'Vary', headers: { ...BASE, vary: 'Accept-Language' }, req: { 'accept-language': 'fr' } },
  { name: 'Vary: *', headers: { ...BASE, vary: '*' } },
  { name: 'an ETag', headers: { ...BASE, etag: '"v2"' } },
  { name: 'Expires instead of max-age', headers: { ...BASE, 'cache-control': 'public', expires: new Date(Date.now() + 120_000).toUTCString() } },
  { name: 'Last-Modified alone (heuristic freshness)', headers: { 'content-type': 'text/plain', 'last-modified': new Date(Date.now() - 86_400_000).toUTCString() } },
  { name: 'an Age', headers: { ...BASE, age: '100' } },
  { name: 'tags', headers: { ...BASE, 'cache-tag': 'a, b' } },
  { name: 'another content type', headers: { ...BASE, 'content-type': 'text/html' } },
  { name: 'another status', headers: BASE, status: 404 },
  { name: 'a status not cacheable by default', headers: { 'content-type': 'text/plain' }, status: 500 },
  { name: "the request's no-store", headers: BASE, req: { 'cache-control': 'no-store' } },
  { name: "the request's Authorization", headers: BASE, req: { authorization: 'Basic eA==' } },
  { name: 'a default TTL', headers: { 'content-type': 'text/plain' }, settings: { ...POLICY, defaultTtl: 30 } },
  { name: "the route's stale-if-error", headers: BASE, settings: { ...POLICY, staleIfError: 30 } },
];

/** What a stored response is, with its times as offsets from when it was made (ms). */
function shape(s: StoredResponse | string): unknown {
  if (typeof s === 'string') return s;
  const now = Date.now();
  const { body, policy, errorUntil, keepUntil, ...rest } = s;
  const { t, u, ...form } = policy.toObject();
  // As JSON: a request header copy's names without a value are not packed, as JSON leaves them out.
  return { ...rest, body: body.length, form: JSON.parse(JSON.stringify(form)) as unknown, u, ttl: Math.round(policy.timeToLive() / 1000), errorIn: Math.round((errorUntil - now) / 1000), keepIn: Math.round((keepUntil - now) / 1000), age: Math.round(now - t) > 1000 };
}

function judged(c: (typeof UNLIKE)[number], key: string): StoredResponse | string {
  return toStore(key, c.req ?? {}, c.status ?? 200, c.headers, BODY, c.settings ?? POLICY);
}

/** Responses unlike BASE and each other, judged before each case. */
const PRIMERS: { status: number; headers: HeaderMap }[] = [
  { status: 200, headers: { 'content-type': 'text/css', 'cache-control': 's-maxage=5' } },
  { status: 203, headers: { 'content-type': 'image/png', 'cache-control': 'max-age=7, stale-while-revalidate=3, stale-if-error=9', etag: '"p"', 'cache-tag': 'z' } },
];

test('toStore: a response unlike the one before it is judged as it is on its own, and so is the next alike', () => {
  // The same after either primer: nothing of the response before it is taken.
  const alone = (judge: () => StoredResponse | string) => {
    const shapes = PRIMERS.map((p) => {
      toStore('k0', {}, p.status, p.headers, BODY, POLICY);
      return shape(judge());
    });
    assert.deepEqual(shapes[1], shapes[0]);
    return shapes[0];
  };
  const base = () => toStore('k2', {}, 200, { ...BASE }, BODY, POLICY);
  const baseAlone = alone(base);
  for (const c of UNLIKE) {
    const expected = alone(() => judged(c, 'k1'));
    for (let i = 0; i < 2; i++) assert.deepEqual(shape(base()), baseAlone, `before: ${c.name}`);
    for (let i = 0; i < 2; i++) assert.deepEqual(shape(judged(c, 'k1')), expected, `after responses alike (${i}): ${c.name}`);
    assert.deepEqual(shape(base()), baseAlone, `after: ${c.name}`);
  }
  const plain = base() as StoredResponse;
  assert.equal(Math.round(plain.policy.timeToLive() / 1000), 3600);
  assert.equal(Math.round((plain.errorUntil - Date.now()) / 1000), 3600);
  const stale = judged(UNLIKE.find((c) => c.name === 'stale-if-error')!, 'k4') as StoredResponse;
  // Fresh for 3600 s, then 30 s of stale-if-error (counted once: the library's timeToLive() counts it in already).
  assert.equal(Math.round((stale.errorUntil - Date.now()) / 1000), 3630, 'stale-if-error read from its own Cache-Control');
  assert.equal(Math.round((stale.keepUntil - Date.now()) / 1000), 3630, 'kept no longer than it may answer');
});

test("toStore: responses alike whose freshness counts from their arrival (Expires, no Date) each get their own", async () => {
  const headers = { 'content-type': 'text/plain', expires: new Date(Date.now() + 600_000).toUTCString() };
  // Until when it may answer a failing origin: from its time to live as toStore worked it out.
  const ttl = () => (toStore('e', {}, 200, { ...headers }, BODY, POLICY) as StoredResponse).errorUntil - Date.now();
  const first = ttl();
  assert.ok(first > 500_000, String(first));
  assert.ok(Math.abs(ttl() - first) < 1000, 'alike at once');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  assert.ok(first - ttl() >= 1000, 'a second later, a second less');
});

test('packed after a response alike, each unpacks to itself', () => {
  const key = (i: number) => `http://example.com/p?${i}`;
  const cases = [
    toStore(key(0), {}, 200, BASE, BODY, POLICY),
    toStore(key(1), {}, 200, BASE, Buffer.from('short'), POLICY),
    ...UNLIKE.map((c, i) => judged(c, key(i + 2))),
    toStore(key(99), {}, 200, BASE, BODY, POLICY),
  ].filter((s): s is StoredResponse => typeof s !== 'string');
  assert.ok(cases.length > 12);
  const tagged = cases[0]!;
  cases.push({ ...tagged, tagVersions: { a: '1' } }, tagged);
  for (const s of [...cases, ...cases.reverse()]) {
    toStore('alike', {}, 200, BASE, BODY, POLICY);
    const back = unpackResponse(packResponse(s));
    assert.deepEqual(shape(back), shape(s));
    assert.ok(back.body.equals(s.body));
    assert.deepEqual(back.tagVersions, s.tagVersions);
  }
});

/** A client's response that records what it is given. */
class Client extends EventEmitter implements HttpResponse {
  headersSent = false;
  destroyed = false;
  writableLength = 0;
  writableNeedDrain = false;
  shouldKeepAlive = true;
  cacheStatus = '';
  writeHead(_status: number, _reason: string, headers?: OutgoingHttpHeaders | string[]): this {
    const list = Array.isArray(headers) ? headers : Object.entries(headers ?? {}).flat();
    this.cacheStatus = String(list[list.findIndex((h) => String(h).toLowerCase() === 'cache-status') + 1]);
    this.headersSent = true;
    return this;
  }
  removeHeader(): void {}
  getHeader(): undefined {
    return undefined;
  }
  write(): boolean {
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): void {}
}

test("the capture's header map: the same for the same list, its own for another, never changed by removeHeader", () => {
  const seen: HeaderMap[] = [];
  const capture = (list: string[]) => {
    const c = new CaptureResponse(new Client(), 1 << 16, { head: (_s, h) => (seen.push(h), { hold: false, cacheStatus: 'x' }), done: () => {}, rerouted: () => {} });
    c.writeHead(200, 'OK', list);
    return c;
  };
  const list = ['Content-Type', 'text/plain', 'Cache-Control', 'max-age=60', 'Content-Length', '5'];
  capture(list);
  capture([...list]);
  assert.equal(seen[1], seen[0], 'the same map for the same headers');
  capture([...list.slice(0, 3), 'no-store', ...list.slice(4)]);
  assert.deepEqual(seen[2], { 'content-type': 'text/plain', 'cache-control': 'no-store', 'content-length': '5' });
  const cut = capture([...list]);
  cut.removeHeader('Content-Length');
  assert.equal(cut.getHeader('content-length'), undefined);
  capture([...list]);
  assert.deepEqual(seen[4], { 'content-type': 'text/plain', 'cache-control': 'max-age=60', 'content-length': '5' }, 'removeHeader changed a copy');
  capture(['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  assert.deepEqual(seen[5], { 'set-cookie': ['a=1', 'b=2'] });
});

function leanRequest(url: string, headers: IncomingHttpHeaders, res: HttpResponse): LeanRouteRequest {
  return {
    req: { method: 'GET', url, httpVersion: '1.1', httpVersionMajor: 1, headers, rawHeaders: ['Host', String(headers.host)], socket: {} as Socket },
    res,
    scheme: 'http',
    host: 'example.com',
    prefix: '',
    rest: url,
    query: '',
    maxRequestBody: 1024,
    log() {},
    reroute() {},
    lean: null,
    body: null,
  };
}

test("the fast path's lookup serves its request's serveLean only while the store is unchanged", () => {
  let calls = 0;
  const inner: LeanHandler = {
    serve() {},
    serveLean(r) {
      calls++;
      r.res.writeHead(200, 'OK', ['Cache-Control', 'max-age=60', 'Content-Length', '2']);
      r.res.end(Buffer.from('hi'));
    },
  };
  const rules = { ...POLICY, key: DEFAULT_KEY, bypassCookies: [], bypassHeaders: [], purge: new PeerList([]) };
  const store = new MemoryStore(1 << 20, 1 << 16);
  const handler = new CachedHandler(inner, rules, { store, maxObjectSize: 1 << 16, lock: new FetchLock(1000, store), logger: new Logger('error') });
  const miss = (url: string, between: () => void) => {
    const headers = { host: 'example.com' };
    assert.equal(handler.answerFromMemory({ method: 'GET', url, httpVersion: '1.1', headers, scheme: 'http' }), null);
    between();
    const client = new Client();
    handler.serveLean(leanRequest(url, headers, client));
    return client.cacheStatus;
  };
  assert.match(miss('/a', () => {}), /fwd=uri-miss; fwd-status=200; stored/);
  assert.equal(calls, 1);
  // Stored between the lookup and serveLean: a hit, not a second fetch.
  const fresh = toStore('http://example.com/b', {}, 200, { 'cache-control': 'max-age=60' }, Buffer.from('b'), POLICY) as StoredResponse;
  assert.match(miss('/b', () => store.put('http://example.com/b', fresh)), /^gatehouse; hit/);
  assert.equal(calls, 1);
});

let server: Server;

before(async () => {
  server = await launch([`${APPS}/cache_origin.py:app`, '--python', SYSTEM_PYTHON, '--cache', '16m', '--threads', '2']);
});

after(async () => {
  await server?.kill();
});

test('a run of misses alike and unlike: each stored or not as its own headers say, and hit after only when stored', async () => {
  // size: bodies of one length, so that responses alike have the very same headers.
  const runs: { q: Record<string, string>; status: RegExp }[] = [
    { q: { cc: 'max-age=60' }, status: /fwd=uri-miss; fwd-status=200; stored$/ },
    { q: { cc: 'max-age=60' }, status: /fwd=uri-miss; fwd-status=200; stored$/ },
    { q: { cc: 'no-store' }, status: /detail=not-storable$/ },
    { q: { cc: 'max-age=60' }, status: /stored$/ },
    { q: { cc: 'max-age=60', cookie: 'a=b' }, status: /detail=set-cookie$/ },
    { q: { cc: 'max-age=60' }, status: /stored$/ },
    { q: { cc: 'max-age=60', vary: '*' }, status: /detail=vary-star$/ },
    { q: { cc: 'max-age=60' }, status: /stored$/ },
    { q: { cc: 'max-age=0' }, status: /fwd-status=200(; stored)?$/ },
    { q: { cc: 'max-age=60', status: '404' }, status: /fwd-status=404; stored$/ },
    { q: { cc: 'max-age=60' }, status: /stored$/ },
  ];
  const path = (i: number) => `/alike/${i}?${new URLSearchParams({ ...runs[i]!.q, size: '64' }).toString()}`;
  for (let i = 0; i < runs.length; i++) assert.match(String((await request(server.url, path(i))).headers['cache-status']), runs[i]!.status, `first: ${i}`);
  for (let i = 0; i < runs.length; i++) {
    const again = String((await request(server.url, path(i))).headers['cache-status']);
    const stored = runs[i]!.status.source.endsWith('stored$') && !runs[i]!.q.cc!.includes('max-age=0');
    if (stored) assert.match(again, /^gatehouse; hit; ttl=\d+$/, `again: ${i}`);
    else assert.doesNotMatch(again, /hit/, `again: ${i}`);
  }
});

test('a large miss to a client that reads slowly: passed on whole once the client reads', { timeout: 60_000 }, async () => {
  // More than the kernel buffers a loopback connection and the front holds (1 MiB), in parts (chunked): it waits for drain.
  const size = 16 * 1024 * 1024;
  const socket = connect(server.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /alike/large?cc=max-age%3D60&chunked=1&size=${size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  // Not read for a while: the front's buffers fill and the app's answer waits for 'drain'.
  socket.pause();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.resume();
  await new Promise((resolve) => socket.once('close', resolve));
  const all = Buffer.concat(chunks);
  const headEnd = all.indexOf('\r\n\r\n');
  const head = all.subarray(0, headEnd).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, /\r\ncache-status: gatehouse; fwd=uri-miss; fwd-status=200/i);
  let at = headEnd + 4;
  let body = 0;
  for (;;) {
    const eol = all.indexOf('\r\n', at);
    const n = parseInt(all.subarray(at, eol).toString('latin1'), 16);
    if (n === 0) break;
    body += n;
    at = eol + 2 + n + 2;
  }
  assert.equal(body, size);
});
