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
 * A memcached that is down or slow must never fail a request: after a
 * failure the store answers as empty (a miss) for a second before trying
 * again, with a log line at most every few seconds.
 */
import { createHash } from 'node:crypto';
import memjs from 'memjs';
import type { Logger } from '../log/logger.js';
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { decodeVariants, encodeVariants } from './store-codec.js';

const TIMEOUT_S = 0.25;
const PAUSE_MS = 1000;
/** A whole operation (a get with its tags' versions, a put) past this is a failure. */
const DEADLINE_MS = 1000;
const WARN_EVERY_MS = 5000;
const GENERATION_MS = 1000;
/** memcached reads a longer expiry as a point in time. */
const MAX_EXPIRY_S = 30 * 24 * 3600;

function hashed(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

export class MemcachedStore implements CacheStore {
  private readonly client: memjs.Client;
  private pausedUntil = 0;
  private warnedAt = -Infinity;
  private generation = '0';
  private generationAt = -Infinity;

  constructor(
    /** memcached://HOST:PORT */
    private readonly url: string,
    private readonly logger: Logger,
    private readonly prefix = 'gatehouse:',
  ) {
    const { host } = new URL(url);
    this.client = memjs.Client.create(host, { retries: 0, timeout: TIMEOUT_S, conntimeout: TIMEOUT_S, keepAlive: true, logger: { log: () => {} } });
  }

  async get(key: string): Promise<StoredResponse[]> {
    return (await this.attempt('get', () => this.variants(key), [])).filter((v) => v.keepUntil > Date.now());
  }

  put(key: string, stored: StoredResponse): Promise<void> {
    return this.attempt('put', async () => {
      const variants = (await this.variants(key)).filter((v) => v.variant !== stored.variant);
      variants.push({ ...stored, tagVersions: await this.tagVersions(stored.tags) });
      const until = Math.max(...variants.map((v) => v.keepUntil));
      const expires = Math.min(MAX_EXPIRY_S, Math.max(1, Math.ceil((until - Date.now()) / 1000)));
      await this.client.set(await this.name(key), encodeVariants(variants), { expires });
    }, undefined);
  }

  delete(key: string): Promise<boolean> {
    return this.attempt('delete', async () => this.client.delete(await this.name(key)), false);
  }

  /** How many keys carried the tag is not known here: null. */
  deleteTag(tag: string): Promise<number | null> {
    return this.attempt('purge by tag', async () => {
      await this.client.increment(this.tagName(tag), 1, { initial: 1 });
      return null;
    }, null);
  }

  flush(): Promise<void> {
    return this.attempt('flush', async () => {
      const { value } = await this.client.increment(`${this.prefix}generation`, 1, { initial: 1 });
      this.generation = String(value ?? 1);
      this.generationAt = performance.now();
    }, undefined);
  }

  async stop(): Promise<void> {
    this.client.close();
  }

  /** A key's variants, without those whose tags were invalidated since they were stored. */
  private async variants(key: string): Promise<StoredResponse[]> {
    const { value } = await this.client.get(await this.name(key));
    if (value === null) return [];
    const variants = decodeVariants(value);
    const tags = [...new Set(variants.flatMap((v) => v.tags))];
    if (tags.length === 0) return variants;
    const now = await this.tagVersions(tags);
    return variants.filter((v) => v.tags.every((t) => v.tagVersions?.[t] === now[t]));
  }

  private async tagVersions(tags: readonly string[]): Promise<Record<string, string>> {
    const versions: Record<string, string> = {};
    await Promise.all(
      tags.map(async (tag) => {
        const { value } = await this.client.get(this.tagName(tag));
        versions[tag] = value?.toString() ?? '0';
      }),
    );
    return versions;
  }

  private async name(key: string): Promise<string> {
    if (performance.now() - this.generationAt > GENERATION_MS) {
      const { value } = await this.client.get(`${this.prefix}generation`);
      this.generation = value?.toString() ?? '0';
      this.generationAt = performance.now();
    }
    return `${this.prefix}${this.generation}:${hashed(key)}`;
  }

  private tagName(tag: string): string {
    return `${this.prefix}tag:${hashed(tag)}`;
  }

  /**
   * Runs a command unless the store is paused after a failure; a failure,
   * or no answer within the deadline (memjs can leave a promise pending when
   * its connection breaks), answers `otherwise`.
   */
  private async attempt<T>(what: string, command: () => Promise<T>, otherwise: T): Promise<T> {
    if (performance.now() < this.pausedUntil) return otherwise;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in time')), DEADLINE_MS);
    });
    try {
      return await Promise.race([command(), deadline]);
    } catch (err) {
      const now = performance.now();
      this.pausedUntil = now + PAUSE_MS;
      if (now - this.warnedAt >= WARN_EVERY_MS) {
        this.warnedAt = now;
        this.logger.warning(`cache store ${this.url}: ${what} failed, answering as a miss: ${(err as Error).message}`);
      }
      return otherwise;
    } finally {
      clearTimeout(timer);
    }
  }
}
