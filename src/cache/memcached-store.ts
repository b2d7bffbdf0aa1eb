/**
 * The memcached store, shared by several gatehouse instances (memjs, the
 * binary protocol). memcached cannot list keys, so tags and flushes are
 * versions: a tag's version is a counter, each stored variant records the
 * versions of its tags, and a variant whose tag moved on since is dropped
 * when read; a flush moves a generation that is part of every key name
 * (read again at most once a second, so another instance's flush shows
 * within a second). Key names are hashed: memcached takes at most 250
 * bytes, no spaces.
 *
 * A key's variants are one item, rewritten with compare-and-swap: two
 * instances storing variants of one URL at once lose neither (the second
 * write fails, and is made again over the first). The fetch lock across
 * instances is a key taken with `add`, holding a token of its holder, and let
 * go only by it (a delete while the token is still there, with CAS). A
 * memcached that is down or slow answers as an empty store (a miss): see
 * memcached-connection.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { MemcachedConnection } from './memcached-connection.js';
import { decodeVariants, encodeVariants } from './store-codec.js';

const GENERATION_MS = 1000;
/** memcached reads a longer expiry as a point in time. */
const MAX_EXPIRY_S = 30 * 24 * 3600;
/** Writes of a key's variants lost to other instances' before this one gives up (the cache is an optimisation). */
const CAS_TRIES = 8;

function hashed(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

export class MemcachedStore implements CacheStore {
  private readonly memcached: MemcachedConnection;
  private generation = '0';
  private generationAt = -Infinity;
  /** This instance's token in each lock it holds. */
  private readonly tokens = new Map<string, string>();

  constructor(
    /** memcached://HOST:PORT */
    private readonly url: string,
    private readonly logger: Logger,
    private readonly prefix = 'gatehouse:',
  ) {
    this.memcached = new MemcachedConnection(new URL(url).host, logger, `cache store ${url}`);
  }

  async get(key: string): Promise<StoredResponse[]> {
    return this.memcached.run('get', async (client) => this.live((await client.get(await this.name(key))).value), []);
  }

  put(key: string, stored: StoredResponse): Promise<void> {
    return this.memcached.run('put', async (client) => {
      const name = await this.name(key);
      const entry = { ...stored, tagVersions: await this.tagVersions(stored.tags) };
      for (let i = 0; i < CAS_TRIES; i++) {
        const { value, cas } = await this.memcached.gets(name);
        const variants = (await this.live(value)).filter((v) => v.variant !== stored.variant);
        variants.push(entry);
        const until = Math.max(...variants.map((v) => v.keepUntil));
        const expires = Math.min(MAX_EXPIRY_S, Math.max(1, Math.ceil((until - Date.now()) / 1000)));
        const encoded = encodeVariants(variants);
        if (cas === null ? await client.add(name, encoded, { expires }) : await this.memcached.setIfUnchanged(name, encoded, expires, cas)) return;
      }
      // The key is busy with other instances' writes: this variant is not stored (a later fetch stores it).
      this.logger.warning(`cache store ${this.url}: ${key}: not stored, its variants' item was written by other instances ${CAS_TRIES} times in a row (compare-and-swap lost)`);
    }, undefined);
  }

  delete(key: string): Promise<boolean> {
    return this.memcached.run('delete', async (client) => client.delete(await this.name(key)), false);
  }

  /** How many keys carried the tag is not known here: null. */
  deleteTag(tag: string): Promise<number | null> {
    return this.memcached.run('purge by tag', async (client) => {
      await client.increment(this.tagName(tag), 1, { initial: 1 });
      return null;
    }, null);
  }

  /** memcached's `add` stores only when the key is absent: the lock, with an expiry of whole seconds. */
  lock(key: string, ms: number): Promise<boolean> {
    const expires = Math.max(1, Math.ceil(ms / 1000));
    const token = randomBytes(9).toString('base64');
    return this.memcached.run('lock', async (client) => {
      if (!(await client.add(this.lockName(key), Buffer.from(token), { expires }))) return false;
      this.tokens.set(key, token);
      return true;
    }, true);
  }

  locked(key: string): Promise<boolean> {
    return this.memcached.run('lock', async (client) => (await client.get(this.lockName(key))).value !== null, false);
  }

  /** Deletes the lock only while it holds this instance's token: once it expired, another instance may have it. */
  async unlock(key: string): Promise<void> {
    const token = this.tokens.get(key);
    this.tokens.delete(key);
    if (token === undefined) return;
    await this.memcached.run('unlock', async () => {
      const { value, cas } = await this.memcached.gets(this.lockName(key));
      if (cas !== null && value!.toString() === token) await this.memcached.deleteIfUnchanged(this.lockName(key), cas);
    }, undefined);
  }

  flush(): Promise<void> {
    return this.memcached.run('flush', async (client) => {
      const { value } = await client.increment(`${this.prefix}generation`, 1, { initial: 1 });
      this.generation = String(value ?? 1);
      this.generationAt = performance.now();
    }, undefined);
  }

  async stop(): Promise<void> {
    this.memcached.close();
  }

  /** The variants in a key's item that are still of use: not expired, none of their tags invalidated since they were stored. */
  private async live(value: Buffer | null): Promise<StoredResponse[]> {
    if (value === null) return [];
    const now = Date.now();
    const variants = decodeVariants(value).filter((v) => v.keepUntil > now);
    const tags = [...new Set(variants.flatMap((v) => v.tags))];
    if (tags.length === 0) return variants;
    const versions = await this.tagVersions(tags);
    return variants.filter((v) => v.tags.every((t) => v.tagVersions?.[t] === versions[t]));
  }

  private async tagVersions(tags: readonly string[]): Promise<Record<string, string>> {
    const versions: Record<string, string> = {};
    await Promise.all(
      tags.map(async (tag) => {
        const { value } = await this.memcached.client.get(this.tagName(tag));
        versions[tag] = value?.toString() ?? '0';
      }),
    );
    return versions;
  }

  private async name(key: string): Promise<string> {
    if (performance.now() - this.generationAt > GENERATION_MS) {
      const { value } = await this.memcached.client.get(`${this.prefix}generation`);
      this.generation = value?.toString() ?? '0';
      this.generationAt = performance.now();
    }
    return `${this.prefix}${this.generation}:${hashed(key)}`;
  }

  private lockName(key: string): string {
    return `${this.prefix}lock:${hashed(key)}`;
  }

  private tagName(tag: string): string {
    return `${this.prefix}tag:${hashed(tag)}`;
  }
}
