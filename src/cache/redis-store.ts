/**
 * The Redis store, shared by several gatehouse instances: a key's variants
 * as one value (store-codec.ts) that expires when the last of them is of no
 * more use, and a set per tag naming the keys that carry it. Redis bounds
 * its own memory (maxmemory and its eviction policy).
 *
 * A store that is down or slow must never fail a request: commands are not
 * queued while disconnected and time out quickly, and every failure answers
 * as an empty store (a miss), with a log line at most every few seconds.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { decodeVariants, encodeVariants } from './store-codec.js';

/** A command slower than this counts as a failure: a miss costs less than waiting. */
const COMMAND_TIMEOUT_MS = 250;
const RECONNECT_MS = 1000;
const WARN_EVERY_MS = 5000;
const TAG_SET_MS = 24 * 3600_000;

export class RedisStore implements CacheStore {
  private readonly redis: Redis;
  private warnedAt = -Infinity;

  constructor(
    /** redis://HOST:PORT[/DB] */
    private readonly url: string,
    private readonly logger: Logger,
    /** Names every key and tag set, so a flush drops only the cache's own. */
    private readonly prefix = 'gatehouse:',
  ) {
    // Loaded only for a Redis store: servers without one do not carry its memory.
    const { Redis: Client } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.redis = new Client(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: () => RECONNECT_MS,
      lazyConnect: false,
    });
    this.redis.on('error', (err: Error) => this.failed('connection', err));
    this.redis.on('ready', () => this.logger.info(`cache store ${url}: connected`));
  }

  async get(key: string): Promise<StoredResponse[]> {
    try {
      const value = await this.redis.getBuffer(this.keyName(key));
      if (value === null) return [];
      const now = Date.now();
      return decodeVariants(value).filter((v) => v.keepUntil > now);
    } catch (err) {
      this.failed('get', err as Error);
      return [];
    }
  }

  async put(key: string, stored: StoredResponse): Promise<void> {
    try {
      const variants = (await this.get(key)).filter((v) => v.variant !== stored.variant);
      variants.push(stored);
      const until = Math.max(...variants.map((v) => v.keepUntil));
      const ttl = Math.max(1, Math.ceil(until - Date.now()));
      const multi = this.redis.multi().set(this.keyName(key), encodeVariants(variants), 'PX', ttl);
      // A tag's set outlives the keys in it (the longest-lived of them is not known here).
      for (const tag of stored.tags) multi.sadd(this.tagName(tag), key).pexpire(this.tagName(tag), Math.max(ttl, TAG_SET_MS));
      await multi.exec();
    } catch (err) {
      this.failed('put', err as Error);
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.redis.del(this.keyName(key))) > 0;
    } catch (err) {
      this.failed('delete', err as Error);
      return false;
    }
  }

  async deleteTag(tag: string): Promise<number> {
    try {
      const keys = await this.redis.smembers(this.tagName(tag));
      const deleted = keys.length === 0 ? 0 : await this.redis.del(...keys.map((k) => this.keyName(k)));
      await this.redis.del(this.tagName(tag));
      return deleted;
    } catch (err) {
      this.failed('purge by tag', err as Error);
      return 0;
    }
  }

  async flush(): Promise<void> {
    try {
      let cursor = '0';
      do {
        const [next, names] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
        if (names.length > 0) await this.redis.del(...names);
        cursor = next;
      } while (cursor !== '0');
    } catch (err) {
      this.failed('flush', err as Error);
    }
  }

  async stop(): Promise<void> {
    this.redis.disconnect();
  }

  private keyName(key: string): string {
    return `${this.prefix}k:${key}`;
  }

  private tagName(tag: string): string {
    return `${this.prefix}t:${tag}`;
  }

  private failed(what: string, err: Error): void {
    const now = performance.now();
    if (now - this.warnedAt < WARN_EVERY_MS) return;
    this.warnedAt = now;
    this.logger.warning(`cache store ${this.url}: ${what} failed, answering as a miss: ${err.message}`);
  }
}
