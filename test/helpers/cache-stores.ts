/**
 * What the tests of the cache shared through Redis and memcached use
 * (test/cache-shared.test.ts, test/memcached-pages.test.ts): the two stores
 * and how to start them, a store's responses read and written from outside
 * gatehouse, waits for what two instances see of a store, and a hop that
 * makes every compare-and-swap write to memcached lose.
 */
import { connect, createServer } from 'node:net';
import memjs from 'memjs';
import { toStore, type PolicySettings, type StoredResponse } from '../../src/cache/cache-policy.js';
import { at, get, status } from './cache-origin.js';
import type { Server } from './launch.js';
import { request, type SimpleResponse } from './request.js';
import { sleep } from './wait.js';

export const POLICY: PolicySettings = { defaultTtl: 0, staleWhileRevalidate: 0, staleIfError: 0, grace: 0, storeSetCookie: false, storePrivate: false };

export interface StoreKind {
  name: string;
  command: string;
  args(port: number, dir: string): string[];
  url(port: number): string;
  /** What PURGE by tag answers for one tagged key (memcached cannot count). */
  purgedOne: string;
  /** A flush on one instance shows on another within this long (memcached: its generation is read once a second). */
  flushMs: number;
}

export const STORES: StoreKind[] = [
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

export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function calls(s: Server, path: string): Promise<number> {
  return (JSON.parse((await request(s.url, at('/__calls', { path }))).body) as { calls: number }).calls;
}

/**
 * GET on `s`, then waits until the store has what it stored (asking `s`
 * with only-if-cached, which never reaches the app): the store is written
 * once the client has its answer, so another instance may look too early.
 */
export async function getAndStore(s: Server, path: string): Promise<SimpleResponse> {
  const r = await get(s, path);
  for (let i = 0; (await get(s, path, { 'cache-control': 'only-if-cached' })).status !== 200; i++) {
    if (i === 100) throw new Error(`${path}: not in the store 2 s after it was fetched`);
    await sleep(20);
  }
  return r;
}

/** Waits until `s` stores and finds responses in its store again (after the store stopped or failed). */
export async function storeBack(s: Server): Promise<void> {
  for (let i = 0; ; i++) {
    const probe = at(`/store-back-${i}`, { cc: 'max-age=60' });
    await get(s, probe);
    await sleep(50);
    if ((await get(s, probe, { 'cache-control': 'only-if-cached' })).status === 200) return;
    if (i === 60) throw new Error('the store did not come back within 3 s');
  }
}

/** GETs until the answer is a miss (a flush on another instance may take flushMs to show). */
export async function missWithin(s: Server, path: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = status(await get(s, path, { 'cache-control': 'only-if-cached' }));
    if (!/hit/.test(r) || Date.now() >= deadline) return r;
    await sleep(50);
  }
}

/** A stored variant of `key` for Accept-Language `lang`, its body the language. */
export function variant(key: string, lang: string): StoredResponse {
  return toStore(key, { 'accept-language': lang }, 200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, Buffer.from(lang), POLICY) as StoredResponse;
}

/**
 * A TCP hop between a store and memcached: before it passes on each
 * compare-and-swap SET, another client writes the same item (what a key
 * busy with other instances' writes sees), so every such SET loses.
 */
export async function contendingProxy(port: number): Promise<{ port: number; contended(): number; close(): void }> {
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
