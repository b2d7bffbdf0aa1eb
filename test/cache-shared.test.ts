/**
 * The cache shared through Redis (Debian's redis-server, started here): two
 * gatehouse instances, each with its own origin app that counts its calls,
 * see each other's stored responses, purges, tag invalidations and flushes;
 * a store killed under load turns hits into misses, never into errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { Redis } from 'ioredis';
import { launch, request, sleep, waitUntil, type Server, type SimpleResponse } from './helpers/harness.js';

const APP = `${APPS}/cache_origin.py:app`;
const skip = hasCommand('redis-server') ? false : 'needs redis-server (Debian package redis-server)';
const dir = mkdtempSync(join(tmpdir(), 'gh-cache-shared-'));
let port = 0;
let redis: ChildProcess | null = null;
let a: Server;
let b: Server;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts redis-server on `port`, resolves once it accepts connections. */
function startRedis(): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(proc);
      }
    });
    proc.once('exit', () => reject(new Error(`redis-server exited:\n${out}`)));
  });
}

function stopRedis(): Promise<void> {
  const proc = redis;
  redis = null;
  if (proc === null || proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

function at(path: string, q: Record<string, string> = {}): string {
  const query = new URLSearchParams(q).toString();
  return query === '' ? path : `${path}?${query}`;
}

async function calls(s: Server, path: string): Promise<number> {
  return (JSON.parse((await request(s.url, at('/__calls', { path }))).body) as { calls: number }).calls;
}

/**
 * GET on `s`, then waits until what it stored is in Redis: the store is
 * written once the client has its answer, so another instance may look a
 * moment too early.
 */
async function getAndStore(s: Server, path: string): Promise<SimpleResponse> {
  const r = await get(s, path);
  const client = new Redis(port, '127.0.0.1', { db: 3, lazyConnect: true });
  try {
    await client.connect();
    for (let i = 0; i < 100 && (await client.exists(`gatehouse:k:http://127.0.0.1${path}`)) === 0; i++) await sleep(20);
  } finally {
    client.disconnect();
  }
  return r;
}

function get(s: Server, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<SimpleResponse> {
  return request(s.url, path, { headers, method });
}

function status(r: SimpleResponse): string {
  return String(r.headers['cache-status'] ?? '');
}

before(async () => {
  if (skip) return;
  port = await freePort();
  redis = await startRedis();
  const args = [APP, '--python', SYSTEM_PYTHON, '--cache-store', `redis://127.0.0.1:${port}/3`, '--threads', '4'];
  [a, b] = await Promise.all([launch(args), launch(args)]);
  await Promise.all([a.waitFor(/cache store .*: connected/), b.waitFor(/cache store .*: connected/)]);
});

after(async () => {
  await a?.kill();
  await b?.kill();
  await stopRedis();
  rmSync(dir, { recursive: true, force: true });
});

test('a response stored by one instance is a hit on the other', { skip }, async () => {
  const path = at('/shared', { cc: 'max-age=60', etag: '"s1"' });
  const first = await getAndStore(a, path);
  assert.match(status(first), /stored/);
  const fromB = await get(b, path);
  assert.match(status(fromB), /^gatehouse; hit; ttl=\d+$/);
  assert.equal(fromB.body, first.body);
  const notModified = await get(b, path, { 'if-none-match': '"s1"' });
  assert.equal(notModified.status, 304);
  assert.equal(await calls(b, '/shared'), 0);
});

test('100 concurrent misses of one key through Redis: one origin call', { skip }, async () => {
  const path = at('/shared-herd', { cc: 'max-age=60', sleep: '0.3' });
  const answers = await Promise.all(Array.from({ length: 100 }, () => get(a, path)));
  assert.ok(answers.every((r) => r.status === 200 && /call 1 /.test(r.body)));
  assert.equal(await calls(a, '/shared-herd'), 1);
});

test('PURGE, tag invalidation and flush on one instance are seen by the other', { skip }, async () => {
  const page = at('/shared-purge', { cc: 'max-age=60' });
  await getAndStore(a, page);
  assert.match(status(await get(b, page)), /hit/);
  assert.equal((await get(b, page, {}, 'PURGE')).status, 200);
  assert.match(status(await get(a, page)), /miss/);

  const tagged = at('/shared-tag', { cc: 'max-age=60', tag: 'news' });
  const other = at('/shared-other', { cc: 'max-age=60', tag: 'sport' });
  await getAndStore(a, tagged);
  await getAndStore(a, other);
  assert.equal((await get(a, '/', { 'cache-tag': 'news' }, 'PURGE')).body.trim(), 'Purged 1');
  assert.match(status(await get(b, tagged)), /miss/);
  assert.match(status(await get(b, other)), /hit/);

  assert.equal((await get(b, '/', { 'cache-flush': 'all' }, 'PURGE')).status, 200);
  assert.match(status(await get(a, other)), /miss/);
});

test('Redis killed under load: misses, no client errors; back once it is', { skip }, async () => {
  const path = at('/shared-load', { cc: 'max-age=60' });
  await get(a, path);
  const results: number[] = [];
  let killed = false;
  const load = (async () => {
    for (let i = 0; i < 150; i++) {
      const batch = await Promise.all(Array.from({ length: 4 }, () => get(a, path).then((r) => r.status, () => 0)));
      results.push(...batch);
      if (i === 30) {
        await stopRedis();
        killed = true;
      }
    }
  })();
  await load;
  assert.ok(killed);
  assert.equal(results.length, 600);
  assert.deepEqual([...new Set(results)], [200], 'every request answered 200');
  assert.ok(await calls(a, '/shared-load') > 1, 'misses reached the origin once the store was gone');
  await a.waitFor(/cache store redis:\/\/127\.0\.0\.1:\d+\/3: (get|put|connection) failed, answering as a miss/);

  redis = await startRedis();
  assert.ok(await waitUntil(() => (a.output().match(/: connected/g) ?? []).length >= 2, 5000), 'reconnected');
  await getAndStore(a, path);
  assert.match(status(await get(a, path)), /hit/);
});
