/**
 * The cache shared through Redis and memcached (Debian's redis-server and
 * memcached, started here), the same tests for each: two gatehouse
 * instances, each with its own origin app that counts its calls, see each
 * other's stored responses, purges, tag invalidations and flushes; a store
 * killed under load turns hits into misses, never into errors, and the cache
 * comes back with the store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import memjs from 'memjs';
import { toStore, type PolicySettings, type StoredResponse } from '../src/cache/cache-policy.js';
import type { CacheStore } from '../src/cache/cache-store.js';
import { MemcachedStore } from '../src/cache/memcached-store.js';
import { RedisStore } from '../src/cache/redis-store.js';
import { Logger } from '../src/log/logger.js';
import { freePorts } from './helpers/back-ends.js';
import { APPS, hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { countMatches, launch, type Server } from './helpers/launch.js';
import { stopProcess } from './helpers/processes.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/cache_origin.py:app`;
const POLICY: PolicySettings = { defaultTtl: 0, staleWhileRevalidate: 0, staleIfError: 0, grace: 0, storeSetCookie: false, storePrivate: false };

interface StoreKind {
  name: string;
  command: string;
  args(port: number, dir: string): string[];
  url(port: number): string;
  /** What PURGE by tag answers for one tagged key (memcached cannot count). */
  purgedOne: string;
  /** A flush on one instance shows on another within this long (memcached: its generation is read once a second). */
  flushMs: number;
}

const STORES: StoreKind[] = [
  {
    name: 'Redis',
    command: 'redis-server',
    args: (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    url: (port) => `redis://127.0.0.1:${port}/3`,
    purgedOne: 'Purged 1',
    flushMs: 0,
  },
  {
    name: 'memcached',
    command: 'memcached',
    // memcached refuses to run as root without a user to switch to.
    args: (port) => ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '16', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])],
    url: (port) => `memcached://127.0.0.1:${port}`,
    purgedOne: 'Purged',
    flushMs: 1500,
  },
];


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function at(path: string, q: Record<string, string> = {}): string {
  const query = new URLSearchParams(q).toString();
  return query === '' ? path : `${path}?${query}`;
}

async function calls(s: Server, path: string): Promise<number> {
  return (JSON.parse((await request(s.url, at('/__calls', { path }))).body) as { calls: number }).calls;
}

function get(s: Server, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<SimpleResponse> {
  return request(s.url, path, { headers, method });
}

/**
 * GET on `s`, then waits until the store has what it stored (asking `s`
 * with only-if-cached, which never reaches the app): the store is written
 * once the client has its answer, so another instance may look too early.
 */
async function getAndStore(s: Server, path: string): Promise<SimpleResponse> {
  const r = await get(s, path);
  for (let i = 0; (await get(s, path, { 'cache-control': 'only-if-cached' })).status !== 200; i++) {
    if (i === 100) throw new Error(`${path}: not in the store 2 s after it was fetched`);
    await sleep(20);
  }
  return r;
}

/** Waits until `s` stores and finds responses in its store again (after the store stopped or failed). */
async function storeBack(s: Server): Promise<void> {
  for (let i = 0; ; i++) {
    const probe = at(`/store-back-${i}`, { cc: 'max-age=60' });
    await get(s, probe);
    await sleep(50);
    if ((await get(s, probe, { 'cache-control': 'only-if-cached' })).status === 200) return;
    if (i === 60) throw new Error('the store did not come back within 3 s');
  }
}

/** GETs until the answer is a miss (a flush on another instance may take flushMs to show). */
async function missWithin(s: Server, path: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = status(await get(s, path, { 'cache-control': 'only-if-cached' }));
    if (!/hit/.test(r) || Date.now() >= deadline) return r;
    await sleep(50);
  }
}

/** A stored variant of `key` for Accept-Language `lang`, its body the language. */
function variant(key: string, lang: string): StoredResponse {
  return toStore(key, { 'accept-language': lang }, 200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, Buffer.from(lang), POLICY) as StoredResponse;
}

function status(r: SimpleResponse): string {
  return String(r.headers['cache-status'] ?? '');
}

/**
 * A TCP hop between a store and memcached: before it passes on each
 * compare-and-swap SET, another client writes the same item (what a key
 * busy with other instances' writes sees), so every such SET loses.
 */
async function contendingProxy(port: number): Promise<{ port: number; contended(): number; close(): void }> {
  const other = memjs.Client.create(`127.0.0.1:${port}`, { logger: { log: () => {} } });
  let contended = 0;
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    upstream.pipe(client);
    for (const s of [client, upstream]) s.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let pending = Buffer.alloc(0);
    let inOrder = Promise.resolve();
    client.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      // The binary protocol: a 24-byte header (opcode at 1, key length at 2, extras length at 4, body length at 8, CAS at 16).
      while (pending.length >= 24 && pending.length >= 24 + pending.readUInt32BE(8)) {
        const request = pending.subarray(0, 24 + pending.readUInt32BE(8));
        pending = pending.subarray(request.length);
        inOrder = inOrder.then(async () => {
          if (request[1] === 0x01 && request.readBigUInt64BE(16) !== 0n) {
            const keyAt = 24 + request[4]!;
            const keyEnd = keyAt + request.readUInt16BE(2);
            await other.set(request.toString('latin1', keyAt, keyEnd), request.subarray(keyEnd), { expires: 60 });
            contended++;
          }
          upstream.write(request);
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    contended: () => contended,
    close: () => {
      server.close();
      other.close();
    },
  };
}

for (const kind of STORES) {
  const skip = hasCommand(kind.command) ? false : `needs ${kind.command} (Debian package ${kind.command})`;
  describe(`cache shared through ${kind.name}`, { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cache-shared-'));
    let port = 0;
    let store: ChildProcess | null = null;
    let a: Server;
    let b: Server;

    async function startStore(): Promise<void> {
      store = spawn(kind.command, kind.args(port, dir), { stdio: 'ignore' });
      for (let i = 0; i < 200; i++) {
        if (await accepts(port)) return;
        await sleep(25);
      }
      throw new Error(`${kind.command} does not accept connections on port ${port}`);
    }

    function stopStore(): Promise<void> {
      const proc = store;
      store = null;
      if (proc === null || proc.exitCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      });
    }

    before(async () => {
      port = (await freePorts(1))[0]!;
      await startStore();
      const args = [APP, '--python', SYSTEM_PYTHON, '--cache-store', kind.url(port), '--threads', '4', '--access-log', '-'];
      [a, b] = await Promise.all([launch(args), launch(args)]);
    });

    after(async () => {
      await a?.kill();
      await b?.kill();
      await stopStore();
      rmSync(dir, { recursive: true, force: true });
    });

    test('a response stored by one instance is a hit on the other', async () => {
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

    test('100 concurrent misses of one key: one origin call', async () => {
      const path = at('/shared-herd', { cc: 'max-age=60', sleep: '0.3' });
      const answers = await Promise.all(Array.from({ length: 100 }, () => get(a, path)));
      assert.ok(answers.every((r) => r.status === 200 && /call 1 /.test(r.body)));
      assert.equal(await calls(a, '/shared-herd'), 1);
    });

    test('50 concurrent misses of one key spread over both instances: one origin call between them', async () => {
      const path = at('/shared-burst', { cc: 'max-age=60', sleep: '0.3' });
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => get(i % 2 === 0 ? a : b, path)));
      assert.deepEqual([...new Set(answers.map((r) => r.status))], [200]);
      assert.equal(new Set(answers.map((r) => r.body)).size, 1, 'every client got the one answer');
      assert.equal((await calls(a, '/shared-burst')) + (await calls(b, '/shared-burst')), 1);
    });

    test("a client that leaves while its instance waits for the other's fetch: 499, nothing sent, and the requests waiting behind it are answered", async () => {
      const path = at('/shared-leaver', { cc: 'max-age=60', sleep: '1' });
      const first = get(a, path);
      for (let i = 0; i < 100 && (await calls(a, '/shared-leaver')) === 0; i++) await sleep(20);
      // On b: the leaver holds b's lock and waits for a's (in the store); another request waits behind it.
      const leaver = connect({ port: b.port, host: '127.0.0.1' });
      let got = '';
      leaver.on('data', (d: Buffer) => (got += d.toString('latin1')));
      leaver.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${b.port}\r\nUser-Agent: shared-leaver\r\n\r\n`);
      await sleep(150);
      const behind = get(b, path);
      await sleep(150);
      leaver.end();
      await new Promise((resolve) => leaver.once('close', resolve));
      assert.equal(got, '', 'nothing sent to the client that half-closed');
      for (const answer of [await first, await behind]) {
        assert.equal(answer.status, 200);
        assert.match(answer.body, /^GET \/shared-leaver call 1 /);
      }
      assert.match((await b.waitFor(/"GET \/shared-leaver\S* HTTP\/1\.1" (\d+) .*"shared-leaver"/, 3000))[1]!, /^499$/);
      assert.equal((await calls(a, '/shared-leaver')) + (await calls(b, '/shared-leaver')), 1);
    });

    /** Two stores on the same server, as two gatehouse instances have, each connected (until then its commands fail, as a miss). */
    async function twoStores(): Promise<CacheStore[]> {
      const open = () => (kind.name === 'Redis' ? new RedisStore(kind.url(port), new Logger('error')) : new MemcachedStore(kind.url(port), new Logger('error')));
      const stores = [open(), open()];
      for (const store of stores) {
        for (let i = 0; i < 100 && (await store.get('probe')).length === 0; i++) {
          await store.put('probe', variant('probe', 'de'));
          await sleep(20);
        }
      }
      return stores;
    }

    test('clients that leave while the store is asked: 499, nothing sent, and no origin call for them', async () => {
      const stored = at('/store-leaver-hit', { cc: 'max-age=60' });
      const missing = at('/store-leaver-miss', { cc: 'max-age=60' });
      await getAndStore(a, stored);
      await stopProcess(store!);
      let got = '';
      try {
        await Promise.all(
          [stored, missing].map(async (path) => {
            const c = connect({ port: a.port, host: '127.0.0.1' });
            c.on('data', (d: Buffer) => (got += d.toString('latin1')));
            c.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${a.port}\r\nUser-Agent: store-leaver\r\n\r\n`);
            await sleep(50);
            c.end();
            await new Promise((resolve) => c.once('close', resolve));
          }),
        );
      } finally {
        // Well before the store's command deadline: it answers after the clients have gone.
        store!.kill('SIGCONT');
      }
      assert.equal(got, '', 'nothing sent to the clients that half-closed');
      for (const path of ['hit', 'miss']) {
        assert.match((await a.waitFor(new RegExp(`"GET /store-leaver-${path}\\S* HTTP/1\\.1" (\\d+) .*"store-leaver"`), 3000))[1]!, /^499$/);
      }
      await sleep(200);
      assert.equal(await calls(a, '/store-leaver-hit'), 1);
      assert.equal(await calls(a, '/store-leaver-miss'), 0);
      // If the stop outlasted a request's deadline (a loaded machine), the instance's connection to the store
      // rests for a second, storing nothing: the next tests need it back.
      await storeBack(a);
    });

    test('two instances storing variants of one key at once lose none', async () => {
      const stores = await twoStores();
      try {
        const langs = ['de', 'en', 'fr', 'it', 'nl', 'pt'];
        for (let round = 0; round < 20; round++) {
          const key = `atomic-${round}`;
          await Promise.all(langs.map((lang, i) => stores[i % 2]!.put(key, variant(key, lang))));
          assert.deepEqual((await stores[round % 2]!.get(key)).map((v) => v.body.toString()).sort(), langs, `round ${round}`);
        }
      } finally {
        await Promise.all(stores.map((s) => s.stop()));
      }
    });

    if (kind.name === 'memcached') test('memcached: a write of a key\'s variants that loses compare-and-swap 8 times in a row gives up with one warning naming the key', async () => {
      const proxy = await contendingProxy(port);
      let log = '';
      const logger = new Logger('info', new Writable({ write: (chunk: Buffer, _e, done) => ((log += chunk.toString()), done()) }));
      const store = new MemcachedStore(`memcached://127.0.0.1:${proxy.port}`, logger, 'contended:');
      try {
        // Until it is connected its commands fail, as a miss; an item that is not there yet is added, which no one contends.
        for (let i = 0; i < 100 && (await store.get('busy-key')).length === 0; i++) {
          await store.put('busy-key', variant('busy-key', 'de'));
          await sleep(20);
        }
        await store.put('busy-key', variant('busy-key', 'en'));
        assert.equal(countMatches(log, /\[WARNING\] cache store memcached:\/\/127\.0\.0\.1:\d+: busy-key: not stored, .* 8 times in a row/g), 1, log);
        assert.equal(proxy.contended(), 8);
      } finally {
        await store.stop();
        proxy.close();
      }
    });

    test("an instance whose fetch lock expired and was taken by another does not let go of the other's", async () => {
      const [first, second] = await twoStores();
      try {
        // memcached's expiry is in whole seconds: one second is the shortest lock there.
        assert.equal(await first!.lock!('locked-key', 1000), true);
        assert.equal(await second!.lock!('locked-key', 1000), false);
        let taken = false;
        for (let i = 0; i < 60 && !taken; i++) {
          await sleep(50);
          taken = await second!.lock!('locked-key', 5000);
        }
        assert.ok(taken, 'the lock never expired');
        await first!.unlock!('locked-key');
        assert.equal(await second!.locked!('locked-key'), true, "the first instance deleted the second's lock");
        await second!.unlock!('locked-key');
        assert.equal(await second!.locked!('locked-key'), false);
      } finally {
        await Promise.all([first!.stop(), second!.stop()]);
      }
    });

    test('PURGE, tag invalidation and flush on one instance are seen by the other', async () => {
      const page = at('/shared-purge', { cc: 'max-age=60' });
      await getAndStore(a, page);
      assert.match(status(await get(b, page)), /hit/);
      assert.equal((await get(b, page, {}, 'PURGE')).status, 200);
      assert.match(status(await get(a, page)), /miss/);

      const tagged = at('/shared-tag', { cc: 'max-age=60', tag: 'news' });
      const other = at('/shared-other', { cc: 'max-age=60', tag: 'sport' });
      await getAndStore(a, tagged);
      await getAndStore(a, other);
      assert.equal((await get(a, '/', { 'cache-tag': 'news' }, 'PURGE')).body.trim(), kind.purgedOne);
      assert.match(status(await get(b, tagged)), /miss/);
      assert.match(status(await get(b, other)), /hit/);

      assert.equal((await get(b, '/', { 'cache-flush': 'all' }, 'PURGE')).status, 200);
      assert.doesNotMatch(await missWithin(a, other, kind.flushMs + 2000), /hit/);
    });

    test('the store killed under load: misses, no client errors; back once it is', async () => {
      const path = at('/shared-load', { cc: 'max-age=60' });
      await getAndStore(a, path);
      const results: number[] = [];
      for (let i = 0; i < 150; i++) {
        const batch = await Promise.all(Array.from({ length: 4 }, () => get(a, path).then((r) => r.status, () => 0)));
        results.push(...batch);
        if (i === 30) await stopStore();
      }
      assert.equal(results.length, 600);
      assert.deepEqual([...new Set(results)], [200], 'every request answered 200');
      assert.ok((await calls(a, '/shared-load')) > 1, 'misses reached the origin once the store was gone');
      await a.waitFor(/cache store \S+: (get|put|connection) failed, answering as a miss/);

      await startStore();
      let back = '';
      for (let i = 0; i < 60 && !/hit/.test(back); i++) {
        await get(a, path);
        await sleep(100);
        back = status(await get(a, path));
      }
      assert.match(back, /hit/, 'the cache is back with the store');
    });
  });
}

describe("the memcached route option: pages the app put in memcached, the app on a miss", { skip: hasCommand('memcached') ? false : 'needs memcached (Debian package memcached)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-memcached-pages-'));
  let port = 0;
  let memcached: ChildProcess | null = null;
  let server: Server;
  let writer: memjs.Client;

  before(async () => {
    port = (await freePorts(1))[0]!;
    memcached = spawn('memcached', ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '16', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !(await accepts(port)); i++) await sleep(25);
    const config = join(dir, 'gatehouse.toml');
    writeFileSync(
      config,
      `python = "${SYSTEM_PYTHON}"
workers = 1
bind = ["127.0.0.1:0"]
app = "${APP}"
access_log = "-"

[[routes]]
path = "/"
app = "main"
memcached = { server = "127.0.0.1:${port}", key = "page:$uri" }
`,
    );
    server = await launch(['--config', config], { workers: 1 });
    writer = memjs.Client.create(`127.0.0.1:${port}`, { logger: { log: () => {} } });
  });

  after(async () => {
    writer?.close();
    await server?.kill();
    memcached?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('a client that leaves while memcached is asked: its page is not sent, and the line says 499', async () => {
    await writer.set('page:/left', Buffer.from('cached'), {});
    await stopProcess(memcached!);
    try {
      const c = await RawConnection.open(server.port);
      c.write('GET /left HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(50);
      c.close();
      await sleep(30);
    } finally {
      // Well before the lookup's deadline: memcached answers the page after the client has gone.
      memcached!.kill('SIGCONT');
    }
    await server.waitFor(/"GET \/left HTTP\/1\.1" 499 /, 3000);
    assert.equal(await calls(server, '/left'), 0);
  });

  test('a page in memcached is served from there; a miss goes to the app; memcached gone: the app', async () => {
    const miss = await get(server, '/article?x=1');
    assert.match(miss.body, /^GET \/article call 1 /);
    await writer.set('page:/article', Buffer.from('<h1>from memcached</h1>'), {});
    const hit = await get(server, '/article?x=1');
    assert.equal(hit.status, 200);
    assert.equal(hit.body, '<h1>from memcached</h1>');
    assert.equal(hit.headers['content-type'], 'text/html; charset=utf-8');
    const head = await get(server, '/article', {}, 'HEAD');
    assert.equal(head.headers['content-length'], String('<h1>from memcached</h1>'.length));
    assert.equal(head.body, '');
    const post = await get(server, '/article', {}, 'POST');
    assert.match(post.body, /^POST \/article call 2 /, 'only GET and HEAD look memcached up');
    memcached!.kill('SIGKILL');
    await sleep(100);
    const fallback = await get(server, '/article');
    assert.equal(fallback.status, 200);
    assert.match(fallback.body, /^GET \/article call 3 /);
    assert.equal(await calls(server, '/article'), 3);
  });
});
