/**
 * The cache's parts on their own: key templates, Accept-Encoding, the
 * memory store's LRU bound, policies made for responses alike, the codec
 * of a shared store, and the agreement
 * between the key a miss stores under (serveLean, the route's host) and the
 * key the front's fast path looks up (answerFromMemory, the Host header);
 * what the fetch lock tells its waiters, and that its fetches one after
 * another leave nothing to the old generation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { cacheKey, DEFAULT_KEY } from '../src/cache/cache-key.js';
import { acceptsCoding, ageOf, evaluate, toStore, type PolicySettings, type StoredResponse } from '../src/cache/cache-policy.js';
import { CachedHandler, type LeanHandler } from '../src/cache/cached-handler.js';
import { FetchLock } from '../src/cache/fetch-lock.js';
import { MemoryStore } from '../src/cache/memory-store.js';
import { PeerList } from '../src/http/peer-list.js';
import { decodeVariants, encodeVariants } from '../src/cache/store-codec.js';
import type { HttpResponse, LeanRouteRequest, MemoryResponse } from '../src/http/handler.js';
import { Logger } from '../src/log/logger.js';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const POLICY: PolicySettings = { defaultTtl: 0, staleWhileRevalidate: 0, staleIfError: 0, grace: 0, storeSetCookie: false, storePrivate: false };

test('key templates', () => {
  const parts = { scheme: 'https', host: 'example.com', url: '/a/b?x=1&y=2', cookie: 'lang=fr; sid=9' };
  const cases: [string, string][] = [
    [DEFAULT_KEY, 'https://example.com/a/b?x=1&y=2'],
    ['$host$uri', 'example.com/a/b'],
    ['$uri?$args', '/a/b?x=1&y=2'],
    ['$host$uri#$cookie_lang', 'example.com/a/b#fr'],
    ['$host$uri#$cookie_none', 'example.com/a/b#'],
  ];
  for (const [template, key] of cases) assert.equal(cacheKey(template, parts), key, template);
});

test('Accept-Encoding', () => {
  const cases: [string | undefined, string, boolean][] = [
    [undefined, 'gzip', false],
    ['gzip, br', 'gzip', true],
    ['br', 'gzip', false],
    ['gzip;q=0, *', 'gzip', false],
    ['*', 'br', true],
    ['*;q=0', 'br', false],
    ['GZIP;q=0.5', 'gzip', true],
  ];
  for (const [accept, coding, ok] of cases) assert.equal(acceptsCoding(accept, coding), ok, `${accept} / ${coding}`);
});

function stored(key: string, size: number, cc = 'max-age=60'): StoredResponse {
  const s = toStore(key, {}, 200, { 'cache-control': cc }, Buffer.alloc(size, 'x'), POLICY);
  assert.notEqual(typeof s, 'string');
  return s as StoredResponse;
}

test('the memory store drops the least recently used past its bound, and never stores past the object size', () => {
  const store = new MemoryStore(5000, 1500); // room for two of 1000 bytes (each costs 1000 + its overhead)
  store.put('a', stored('a', 1000));
  store.put('b', stored('b', 1000));
  assert.equal(store.get('a').length, 1); // a is now the most recently used
  store.put('c', stored('c', 1000));
  assert.equal(store.get('b').length, 0, 'b was the least recently used');
  assert.equal(store.get('a').length, 1);
  assert.equal(store.get('c').length, 1);
  store.put('big', stored('big', 2000));
  assert.equal(store.get('big').length, 0);
});

test('the memory store keeps its use order through deletes from any place, replacements and a flush', () => {
  // A response costs more once it has answered (it is kept unpacked too): room for four not yet used,
  // less one byte, holds one used and two more, not three.
  const probe = new MemoryStore(1 << 20, 1500);
  probe.put('a', stored('a', 1000));
  const packed = probe.size;
  probe.get('a');
  assert.ok(probe.size - packed < 2 * packed, 'the room for four holds one used and two more');
  const store = new MemoryStore(4 * packed - 1, 1500);
  const present = (keys: string[]) => keys.filter((k) => store.has(k));
  for (const k of ['a', 'b', 'c']) store.put(k, stored(k, 1000));
  assert.equal(store.delete('b'), true); // from the middle
  store.get('a');
  store.put('c', stored('c', 1000)); // a new response for c: used last
  store.put('d', stored('d', 1000));
  store.put('e', stored('e', 1000));
  assert.deepEqual(present(['a', 'c', 'd', 'e']), ['c', 'd', 'e'], 'a was the least recently used');
  assert.equal(store.delete('e'), true); // the most recently used
  assert.equal(store.delete('c'), true); // the least
  for (const k of ['f', 'g']) store.put(k, stored(k, 1000));
  assert.deepEqual(present(['d', 'f', 'g']), ['d', 'f', 'g']);
  store.put('h', stored('h', 1000));
  assert.deepEqual(present(['d', 'f', 'g', 'h']), ['f', 'g', 'h']);
  store.flush();
  for (const k of ['i', 'j', 'k', 'l']) store.put(k, stored(k, 1000));
  assert.deepEqual(present(['f', 'i', 'j', 'k', 'l']), ['j', 'k', 'l']);
});

test('responses stored one after another with the same headers each get a policy of their own', async () => {
  const directive = { 'cache-control': 'max-age=600' }; // a request directive: the library's own matching, URL included
  const first = toStore('k1', {}, 200, { 'cache-control': 'max-age=1' }, Buffer.from('1'), POLICY) as StoredResponse;
  await new Promise((resolve) => setTimeout(resolve, 5));
  const second = toStore('k2', {}, 200, { 'cache-control': 'max-age=1' }, Buffer.from('2'), POLICY) as StoredResponse;
  assert.equal(evaluate(second, 'k2', directive).kind, 'fresh');
  assert.equal(evaluate(second, 'k1', directive).kind, 'miss', 'made for its own URL');
  assert.equal(evaluate(first, 'k1', directive).kind, 'fresh');
  assert.ok(second.policy.age() < first.policy.age(), 'its own time of arrival');
  const other = toStore('k3', {}, 200, { 'cache-control': 'no-store' }, Buffer.from('3'), POLICY);
  assert.equal(other, 'not-storable', 'other headers: judged on their own');
});

test("a stored response's age follows the clock from one reading of it: no millisecond lost between two", () => {
  const realNow = Date.now;
  let t = 1_000_000;
  Date.now = () => t++; // every reading a millisecond after the last
  try {
    const s = toStore('k', {}, 200, { 'cache-control': 'max-age=60' }, Buffer.from('x'), POLICY) as StoredResponse;
    const arrived = s.policy.toObject().t as number;
    ageOf(s); // the policy's clock starts here
    Date.now = () => arrived + 2000;
    assert.deepEqual({ age: ageOf(s).age, ttl: ageOf(s).ttl }, { age: 2, ttl: 58 }, 'two seconds old exactly');
  } finally {
    Date.now = realNow;
  }
});

test("a shared store's codec keeps bodies and policies", () => {
  const variants = [stored('k', 10), stored('k', 0, 'max-age=60, stale-if-error=5')];
  const back = decodeVariants(encodeVariants(variants));
  assert.equal(back.length, 2);
  assert.deepEqual(back[0]!.body, variants[0]!.body);
  assert.equal(evaluate(back[0]!, 'k', {}).kind, 'fresh');
  assert.deepEqual(decodeVariants(Buffer.from('not ours')), []);
});

/** Records what is written to it, as a client's response would be sent. */
class Recorder extends EventEmitter implements HttpResponse {
  headersSent = false;
  destroyed = false;
  writableLength = 0;
  writableNeedDrain = false;
  shouldKeepAlive = true;
  status = 0;
  body = Buffer.alloc(0);
  writeHead(status: number, _reason: string, _headers?: OutgoingHttpHeaders | string[]): this {
    this.status = status;
    this.headersSent = true;
    return this;
  }
  removeHeader(): void {}
  getHeader(): undefined {
    return undefined;
  }
  write(chunk: Buffer): boolean {
    this.body = Buffer.concat([this.body, chunk]);
    return true;
  }
  end(chunk?: Buffer): this {
    if (chunk) this.write(chunk);
    return this;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

test("what a miss stores, the fast path's lookup finds (the Host's port is not part of the key)", async () => {
  let calls = 0;
  const inner: LeanHandler = {
    serve() {},
    serveLean(r) {
      calls++;
      r.res.writeHead(200, 'OK', ['Cache-Control', 'max-age=60', 'Content-Type', 'text/plain']);
      r.res.write(Buffer.from('hel'));
      r.res.end(Buffer.from('lo'));
    },
  };
  const rules = { ...POLICY, key: DEFAULT_KEY, bypassCookies: [], bypassHeaders: [], purge: new PeerList([]) };
  const store = new MemoryStore(1 << 20, 1 << 16);
  const handler = new CachedHandler(inner, rules, { store, maxObjectSize: 1 << 16, lock: new FetchLock(1000, store), logger: new Logger('error') });
  const headers = { host: 'Example.com:8080' };
  const client = new Recorder();
  const r: LeanRouteRequest = {
    req: { method: 'GET', url: '/page', httpVersion: '1.1', httpVersionMajor: 1, headers, rawHeaders: ['Host', headers.host], socket: {} as Socket },
    res: client,
    scheme: 'http',
    host: 'example.com',
    prefix: '',
    rest: '/page',
    query: '',
    maxRequestBody: 1024,
    log() {},
    reroute() {},
    lean: null,
    body: null,
  };
  handler.serveLean(r);
  assert.equal(client.body.toString(), 'hello');
  const answer = (await handler.answerFromMemory({ method: 'GET', url: '/page', httpVersion: '1.1', headers, scheme: 'http' })) as MemoryResponse;
  assert.equal(answer.status, 200);
  assert.equal(answer.body?.toString(), 'hello');
  assert.match(String(answer.headers['Cache-Status']), /^gatehouse; hit/);
  assert.equal(await handler.answerFromMemory({ method: 'GET', url: '/page', httpVersion: '1.1', headers, scheme: 'https' }), null, 'another scheme, another key');
  assert.equal(await handler.answerFromMemory({ method: 'GET', url: '/page', httpVersion: '1.1', headers: { ...headers, authorization: 'x' }, scheme: 'http' }), null);
  assert.equal(calls, 1);
});

test('the fetch lock: waiters learn whether the fetch failed or their wait timed out; a memory store needs no shared lock', async () => {
  const store = new MemoryStore(1 << 20, 1 << 16);
  const lock = new FetchLock(50, store);
  assert.equal(lock.acquire('k'), true);
  assert.equal(lock.acquire('k'), false);
  let shared = '';
  lock.acquireShared('k', (outcome) => (shared = outcome));
  assert.equal(shared, 'acquired', 'at once');
  const outcomes: string[] = [];
  lock.wait('k', (o) => outcomes.push(o));
  lock.wait('k', (o) => outcomes.push(o));
  lock.release('k', true);
  assert.deepEqual(outcomes, ['failed', 'failed']);
  lock.acquire('k');
  const timedOut = await new Promise((resolve) => lock.wait('k', resolve));
  assert.equal(timedOut, 'timeout');
  lock.release('k');
  lock.wait('k', (o) => outcomes.push(o));
  assert.equal(outcomes.at(-1), 'done', 'nothing under way: at once');
});

test('the fetch lock: fetches one after another, after it has lived a while, leave nothing to the old generation', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  const lock = new FetchLock(5000, new MemoryStore(1 << 20, 1 << 16));
  lock.acquire('k');
  lock.release('k');
  // A quiet spell: all it holds is in the old generation.
  gc();
  gc();
  const old = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
  const before = old();
  const misses = 40000;
  for (let i = 0; i < misses; i++) {
    const key = `http://example.com/p?${i}`;
    assert.equal(lock.acquire(key), true);
    lock.release(key);
    if (i % 200 === 0) gc({ type: 'minor' });
  }
  const grown = old() - before;
  // A table kept by the one before it for each fetch: some 180 bytes each.
  assert.ok(grown < 60 * misses, `the old generation grew by ${grown} bytes over ${misses} fetches`);
});
