/**
 * The memory store's layout: a response packed into one block and unpacked
 * again answers as it did (status, headers, body, policy and its verdicts,
 * bookkeeping), for responses with every part a StoredResponse can have; the
 * store keeps its own copy, unpacks it once, counts what it keeps against
 * its bound, drops the least recently used across many evictions, and once
 * full takes the slabs it empties back instead of allocating new ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { ageOf, evaluate, toStore, type PolicySettings, type StoredResponse } from '../src/cache/cache-policy.js';
import type { HeaderMap } from '../src/cache/capture-response.js';
import { MemoryStore } from '../src/cache/memory-store.js';
import { packedVariant, packResponse, unpackResponse } from '../src/cache/packed-response.js';
import { SLAB_SIZE } from '../src/cache/slab-blocks.js';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const POLICY: PolicySettings = { defaultTtl: 0, staleWhileRevalidate: 30, staleIfError: 0, grace: 0, storeSetCookie: true, storePrivate: false };

function stored(key: string, req: IncomingHttpHeaders, headers: HeaderMap, body: Buffer, settings = POLICY): StoredResponse {
  const s = toStore(key, req, 200, headers, body, settings);
  assert.notEqual(typeof s, 'string', `storable: ${String(s)}`);
  return s as StoredResponse;
}

/** Every field as it was, the policy as it serializes, and the same answers to the same requests. */
function assertSame(back: StoredResponse, s: StoredResponse, key: string, requests: IncomingHttpHeaders[]): void {
  const { body, policy, ...rest } = s;
  const { body: backBody, policy: backPolicy, ...backRest } = back;
  assert.deepEqual(backRest, rest);
  assert.deepEqual(Object.keys(back), Object.keys(s), 'the same fields, in the same order');
  assert.ok(backBody.equals(body));
  assert.deepEqual(backPolicy.toObject(), policy.toObject());
  for (const req of requests) assert.deepEqual(evaluate(back, key, req), evaluate(s, key, req), JSON.stringify(req));
  // Read either side of the other's reading: a second may turn between them.
  const before = ageOf(s).ttl;
  const ttl = ageOf(back).ttl;
  const after = ageOf(s).ttl;
  assert.ok(ttl === before || ttl === after, `ttl ${ttl}, the original's ${before} then ${after}`);
}

const CASES: { name: string; key: string; req: IncomingHttpHeaders; headers: HeaderMap; body: Buffer }[] = [
  {
    name: 'a plain response, its policy made from the last one alike',
    key: 'http://example.com/1k?a=1',
    req: { host: 'example.com' },
    headers: { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=3600' },
    body: Buffer.alloc(1024, 'x'),
  },
  {
    name: 'Vary, a request Cache-Control and Authorization (the policy keeps request headers), validators, cookies, tags',
    key: 'https://example.com/v',
    req: { host: 'example.com', 'accept-encoding': 'gzip, br', 'accept-language': 'fr', 'cache-control': 'max-stale=5', authorization: 'Basic eA==' },
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'public, s-maxage=60, must-revalidate',
      vary: 'Accept-Encoding, Accept-Language',
      etag: '"v1"',
      'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT',
      'set-cookie': ['a=1; Path=/', 'b=2'],
      'cache-tag': 'page, user-7',
    },
    body: Buffer.from('<p>bonjour</p>'),
  },
  {
    name: 'text beyond ASCII in headers and key, an empty body, no freshness but a validator',
    key: 'http://example.com/caf\u00e9?q=\u2192',
    req: { host: 'example.com', 'x-note': '\u00e9' },
    headers: { 'content-disposition': "attachment; filename*=UTF-8''caf\u00e9 \u2192 \ud83d\ude00", etag: 'W/"\u00e9"', 'x-empty': '' },
    body: Buffer.alloc(0),
  },
];

for (const c of CASES) {
  test(`packed and unpacked, a response answers as it did: ${c.name}`, () => {
    const s = stored(c.key, c.req, c.headers, c.body);
    const back = unpackResponse(packResponse(s));
    assertSame(back, s, c.key, [c.req, {}, { ...c.req, 'cache-control': 'no-cache' }, { ...c.req, 'accept-encoding': 'identity' }]);
    assert.equal(packedVariant(packResponse(s)), s.variant);
  });
}

test("packed, a response keeps the memcached store's tag versions", () => {
  const s = { ...stored('k', {}, { 'cache-control': 'max-age=60', 'surrogate-key': 'a b' }, Buffer.from('x')), tagVersions: { a: '3', b: '0' } };
  const back = unpackResponse(packResponse(s));
  assert.deepEqual(back.tagVersions, { a: '3', b: '0' });
  assert.deepEqual(back.tags, ['a', 'b']);
});

test('what is not a packed response is refused', () => {
  assert.throws(() => unpackResponse(Buffer.from('not packed at all, not even close')));
});

test('the memory store keeps a copy of its own, unpacks it once, and tells whether an unpacked one is still stored', () => {
  const store = new MemoryStore(1 << 20, 1 << 16);
  const body = Buffer.from('hello');
  const s = stored('k', {}, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, body);
  store.put('k', s);
  body.write('HELLO'); // a capture's buffer used again after the response was stored
  assert.equal(store.holds('k', s), false, 'the response the miss made is not kept');
  const [first] = store.get('k');
  assert.equal(first!.body.toString(), 'hello');
  assertSame(first!, { ...s, body: Buffer.from('hello') }, 'k', [{}]);
  assert.equal(store.get('k')[0], first, 'the same object on the next hit');
  assert.equal(store.holds('k', first!), true);
  store.put('k', stored('k', {}, { 'cache-control': 'max-age=60' }, Buffer.from('new')));
  assert.equal(store.holds('k', first!), false, 'replaced');
  assert.equal(store.get('k')[0]!.body.toString(), 'new');
});

test('the memory store counts what it keeps: within its bound, at least the bodies, more once unpacked', () => {
  const max = 1 << 20;
  const store = new MemoryStore(max, 1 << 16);
  const keys = Array.from({ length: 1000 }, (_, i) => `http://example.com/page?${i}`);
  for (const k of keys) store.put(k, stored(k, {}, { 'cache-control': 'max-age=60' }, Buffer.alloc(1024, 'x')));
  const kept = keys.filter((k) => store.has(k));
  assert.ok(store.size <= max);
  assert.ok(kept.length * 1024 < store.size, 'each counts more than its body');
  assert.ok(kept.length > max / 2048, `most of the room holds bodies (${kept.length} kept)`);
  assert.deepEqual(kept, keys.slice(-kept.length), 'the newest kept');
  for (const k of kept.slice(-10)) store.get(k);
  assert.ok(keys.filter((k) => store.has(k)).length < kept.length, 'unpacked ones count more: older ones went');
  assert.ok(kept.slice(-10).every((k) => store.has(k)), 'the ones used stay');
  assert.ok(store.size <= max);
});

test('the memory store drops the least recently used across many evictions, after the oldest went and after a flush', () => {
  const name = (i: number) => `k${String(i).padStart(3, '0')}`;
  const response = (k: string) => stored(k, {}, { 'cache-control': 'max-age=60' }, Buffer.alloc(100));
  // A store too small for slabs: each response costs the same, its own.
  const probe = new MemoryStore(1 << 16, 1 << 16);
  probe.put(name(0), response(name(0)));
  const room = 20; // keys of one length, responses alike
  const store = new MemoryStore(probe.size * room, 1 << 16);
  const put = (i: number) => store.put(name(i), response(name(i)));
  const present = (from: number, to: number) => [...Array(to - from).keys()].map((i) => name(from + i)).filter((k) => store.has(k));
  for (let i = 0; i < room; i++) put(i);
  assert.equal(present(0, room).length, room, 'all fit');
  put(5); // stored again: used last
  for (let i = room; i < 2 * room - 1; i++) put(i);
  assert.deepEqual(present(0, room), [name(5)], 'the others of the first went, oldest first');
  put(100);
  assert.deepEqual(present(0, room), [], '5 was the least recently used then');
  assert.equal(present(room, 2 * room - 1).length, room - 1);
  store.flush();
  assert.equal(store.size, 0);
  for (let i = 200; i < 200 + room + 3; i++) put(i);
  assert.deepEqual(present(200, 200 + room + 3), present(203, 200 + room + 3));
  assert.equal(present(200, 200 + room + 3).length, room);
});

test('the memory store: a key with several variants and tags, replaced variant by variant, goes with either tag', () => {
  const store = new MemoryStore(1 << 20, 1 << 16);
  const varying = (lang: string, tag: string, body: string) =>
    stored('k', { 'accept-language': lang }, { 'cache-control': 'max-age=60', vary: 'accept-language', 'cache-tag': tag }, Buffer.from(body));
  store.put('k', varying('fr', 'a', 'fr1'));
  store.put('k', varying('de', 'b', 'de1'));
  store.put('k', varying('fr', 'a', 'fr2'));
  assert.deepEqual(store.get('k').map((v) => v.body.toString()).sort(), ['de1', 'fr2']);
  assert.equal(store.deleteTag('b'), 1);
  assert.equal(store.has('k'), false);
  assert.equal(store.size, 0);
  store.put('k', varying('fr', 'a', 'fr3'));
  assert.equal(store.deleteTag('a'), 1);
  assert.equal(store.deleteTag('a'), 0);
});

test('the memory store drops a response past its use on the next look-up', () => {
  const store = new MemoryStore(1 << 20, 1 << 16);
  const s = stored('k', {}, { 'cache-control': 'max-age=60' }, Buffer.from('x'));
  store.put('k', { ...s, keepUntil: Date.now() - 1 });
  assert.deepEqual(store.get('k'), []);
  assert.equal(store.has('k'), false);
  assert.equal(store.size, 0);
});

test('a store of some size packs small responses into slabs: each answers with its own bytes, the bound holds, and answering ones do not keep their slabs', () => {
  const max = 16 << 20;
  const store = new MemoryStore(max, 1 << 16);
  const key = (i: number) => `http://example.com/p?${i}`;
  const put = (i: number) => store.put(key(i), stored(key(i), {}, { 'cache-control': 'max-age=60', 'x-i': String(i) }, Buffer.alloc(1024, i % 251)));
  const kept = (from: number, to: number) => [...Array(to - from).keys()].map((i) => from + i).filter((i) => store.has(key(i)));
  const answersRight = (i: number) => {
    const [v] = store.get(key(i));
    return v !== undefined && v.headers['x-i'] === String(i) && v.body.length === 1024 && v.body.every((b) => b === i % 251);
  };
  for (let i = 0; i < 30000; i++) put(i);
  const full = kept(0, 30000);
  assert.ok(store.size <= max);
  assert.ok(full.length > max / 2048, `most of the room holds responses (${full.length} kept)`);
  assert.deepEqual(full, [...Array(full.length).keys()].map((i) => 30000 - full.length + i), 'the newest kept');
  // A response whose slab neighbours went (deleted out of use order) keeps its slab: the slab is not filled again.
  const lone = full[100]!;
  for (const i of [...full.slice(0, 300), ...full.slice(-2000)]) if (i !== lone) store.delete(key(i));
  for (let i = 40000; i < 41000; i++) put(i);
  assert.ok(answersRight(lone), 'the lone response answers with its own bytes');
  for (let i = 40000; i < 41000; i++) store.delete(key(i));
  for (const i of full.slice(-2000)) put(i);
  const hot = full.filter((_, n) => n % 200 === 0 && n > 300);
  for (const i of hot) assert.ok(answersRight(i), `response ${i}`);
  for (let i = 30000; i < 30000 + full.length / 2; i++) put(i);
  assert.ok(hot.every((i) => store.has(key(i))), 'the ones that answered stayed');
  const now = kept(0, 30000 + full.length);
  assert.ok(now.length > full.length * 0.9, `the ones that answered keep no slab from the others (${now.length} kept, ${full.length} before)`);
  assert.ok(store.size <= max);
  // Emptied slabs are filled again: every response still stored answers with its own bytes (as each
  // answers it is unpacked, and counts more: older ones go).
  let checked = 0;
  for (const i of now) if (store.has(key(i)) && ++checked) assert.ok(answersRight(i), `response ${i}`);
  assert.ok(checked > now.length / 2, `${checked} checked`);
  for (const i of kept(0, 30000 + full.length)) store.delete(key(i));
  assert.ok(store.size < 1 << 20, `only the slab being filled is left (${store.size})`);
});

test('a full store that goes on storing new responses fills the slabs it empties again: it allocates no new slab', (t) => {
  const max = 16 << 20;
  const store = new MemoryStore(max, 1 << 16);
  const key = (i: number) => `http://example.com/p?${i}`;
  const put = (i: number) => store.put(key(i), stored(key(i), {}, { 'cache-control': 'max-age=60' }, Buffer.alloc(1024, i % 251)));
  // Full, and evicting for a while (a slab holds some 190 of these).
  for (let i = 0; i < 20000; i++) put(i);
  const allocUnsafeSlow = Buffer.allocUnsafeSlow;
  let slabs = 0;
  t.mock.method(Buffer, 'allocUnsafeSlow', (size: number) => {
    if (size === SLAB_SIZE) slabs++;
    return allocUnsafeSlow(size);
  });
  for (let i = 20000; i < 40000; i++) put(i);
  assert.equal(slabs, 0, 'slabs allocated while the store was full');
  assert.ok(store.size <= max);
  assert.ok(store.has(key(39999)) && !store.has(key(20000)), 'the newest kept, the oldest gone');
});

test('a full store keeps no object per response on the heap (its keys are in its slabs), so storing and evicting leaves the collector nothing to do', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const store = new MemoryStore(16 << 20, 1 << 16);
  const key = (i: number) => `http://example.com/page?a-query-string-of-some-length=${i}`;
  const response = stored(key(0), {}, { 'cache-control': 'max-age=60' }, Buffer.alloc(1024, 'x'));
  // Full and evicting.
  for (let i = 0; i < 30000; i++) store.put(key(i), { ...response });
  const kept = [...Array(30000).keys()].filter((i) => store.has(key(i))).length;
  assert.ok(kept > 5000 && kept < 30000, `full and evicting (${kept} kept)`);
  gc();
  const full = getHeapStatistics().used_heap_size;
  store.flush();
  gc();
  const held = full - getHeapStatistics().used_heap_size;
  // A key as a string takes some 90 bytes of heap, and its place in a Map's table more.
  assert.ok(held < 40 * kept, `the full store held ${held} bytes of heap for ${kept} responses`);
});

test('a store under 16 MiB packs small responses into slabs of its size: memory is taken a slab at a time, not a response at a time', (t) => {
  const allocUnsafeSlow = Buffer.allocUnsafeSlow;
  const sizes: number[] = [];
  t.mock.method(Buffer, 'allocUnsafeSlow', (size: number) => {
    sizes.push(size);
    return allocUnsafeSlow(size);
  });
  for (const max of [8 << 20, 1 << 20]) {
    sizes.length = 0;
    const store = new MemoryStore(max, 1 << 16);
    const key = (i: number) => `http://example.com/p?${i}`;
    const body = max > 1 << 20 ? 1024 : 300;
    for (let i = 0; i < 20000; i++) store.put(key(i), stored(key(i), {}, { 'cache-control': 'max-age=60', 'x-i': String(i) }, Buffer.alloc(body, i % 251)));
    assert.ok(store.size <= max);
    const slabs = sizes.filter((s) => s >= 16 * 1024);
    assert.ok(sizes.length - slabs.length < 10, `${max}: ${sizes.length - slabs.length} responses in memory of their own`);
    assert.ok(slabs.length <= 64 + 2 && slabs.every((s) => s * 64 <= max), `${max}: ${slabs.length} slabs of ${slabs[0]} bytes`);
    const [v] = store.get(key(19999));
    assert.ok(v !== undefined && v.headers['x-i'] === '19999' && v.body.length === body && v.body.every((b) => b === 19999 % 251));
  }
});
