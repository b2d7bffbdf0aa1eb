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
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import type { CacheStore } from '../src/cache/cache-store.js';
import { MemcachedStore } from '../src/cache/memcached-store.js';
import { RedisStore } from '../src/cache/redis-store.js';
import { Logger } from '../src/log/logger.js';
import { freePorts } from './helpers/back-ends.js';
import { APP, at, get, status } from './helpers/cache-origin.js';
import { accepts, calls, contendingProxy, getAndStore, missWithin, STORES, storeBack, variant } from './helpers/cache-stores.js';
import { hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { countMatches, launch, type Server } from './helpers/launch.js';
import { stopProcess } from './helpers/processes.js';
import { sleep } from './helpers/wait.js';

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
