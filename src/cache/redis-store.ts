/**
 * The Redis store, shared by several gatehouse instances: a key's variants
 * as a hash, one field per variant (store-codec.ts), so instances storing
 * two variants at once lose neither; the hash expires when the last of them
 * is of no more use. A set per tag names the keys that carry it. Redis
 * bounds its own memory (maxmemory and its eviction policy). The fetch lock
 * across instances is a key taken with SET NX PX, let go only by its holder.
 *
 * A store that is down or slow must never fail a request: commands are not
 * queued while disconnected and time out quickly, and every failure answers
 * as an empty store (a miss), with a log line at most every few seconds.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
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

/** Sets one variant's field and makes the hash live at least `ttl` ms more, in one step. */
const PUT_VARIANT = `redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
if redis.call('pttl', KEYS[1]) < tonumber(ARGV[3]) then redis.call('pexpire', KEYS[1], ARGV[3]) end`;
/** Deletes a lock only if it still holds this instance's token (it may have expired and been taken by another). */
const UNLOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/** The commands defined from the scripts above. */
interface Scripts {
  putVariant(key: string, field: string, value: Buffer, ttl: number): Promise<unknown>;
  unlockIfOurs(key: string, token: string): Promise<unknown>;
}

export class RedisStore implements CacheStore {
  private readonly redis: Redis & Scripts;
  private warnedAt = -Infinity;
  /** This instance's token in each lock it holds. */
  private readonly tokens = new Map<string, string>();

  constructor(
    /** redis://HOST:PORT[/DB] */
    private readonly url: string,
    private readonly logger: Logger,
    /** Names every key and tag set, so a flush drops only the cache's own. */
    private readonly prefix = 'gatehouse:',
  ) {
    // Loaded only for a Redis store: servers without one do not carry its memory.
    const { Redis: Client } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    const redis = new Client(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: () => RECONNECT_MS,
      lazyConnect: false,
    });
    redis.defineCommand('putVariant', { numberOfKeys: 1, lua: PUT_VARIANT });
    redis.defineCommand('unlockIfOurs', { numberOfKeys: 1, lua: UNLOCK });
    this.redis = redis as Redis & Scripts;
    this.redis.on('error', (err: Error) => this.failed('connection', err));
    this.redis.on('ready', () => this.logger.info(`cache store ${url}: connected`));
  }

  get(key: string): Promise<StoredResponse[]> {
    return this.guarded('get', [], async () => {
      const fields = await this.redis.hgetallBuffer(this.keyName(key));
      const now = Date.now();
      return Object.values(fields).flatMap((value) => decodeVariants(value).filter((v) => v.keepUntil > now));
    });
  }

  put(key: string, stored: StoredResponse): Promise<void> {
    return this.guarded('put', undefined, async () => {
      const ttl = Math.max(1, Math.ceil(stored.keepUntil - Date.now()));
      await this.redis.putVariant(this.keyName(key), stored.variant, encodeVariants([stored]), ttl);
      if (stored.tags.length === 0) return;
      // A tag's set outlives the keys in it (the longest-lived of them is not known here).
      const multi = this.redis.multi();
      for (const tag of stored.tags) multi.sadd(this.tagName(tag), key).pexpire(this.tagName(tag), Math.max(ttl, TAG_SET_MS));
      await multi.exec();
    });
  }

  delete(key: string): Promise<boolean> {
    return this.guarded('delete', false, async () => (await this.redis.del(this.keyName(key))) > 0);
  }

  deleteTag(tag: string): Promise<number> {
    return this.guarded('purge by tag', 0, async () => {
      const keys = await this.redis.smembers(this.tagName(tag));
      const deleted = keys.length === 0 ? 0 : await this.redis.del(...keys.map((k) => this.keyName(k)));
      await this.redis.del(this.tagName(tag));
      return deleted;
    });
  }

  /** A store that fails counts as a lock taken: the request then fetches by itself. */
  lock(key: string, ms: number): Promise<boolean> {
    const token = randomBytes(9).toString('base64');
    return this.guarded('lock', true, async () => {
      if ((await this.redis.set(this.lockName(key), token, 'PX', ms, 'NX')) !== 'OK') return false;
      this.tokens.set(key, token);
      return true;
    });
  }

  locked(key: string): Promise<boolean> {
    return this.guarded('lock', false, async () => (await this.redis.exists(this.lockName(key))) > 0);
  }

  async unlock(key: string): Promise<void> {
    const token = this.tokens.get(key);
    this.tokens.delete(key);
    if (token === undefined) return;
    await this.guarded('unlock', undefined, async () => void (await this.redis.unlockIfOurs(this.lockName(key), token)));
  }

  flush(): Promise<void> {
    return this.guarded('flush', undefined, async () => {
      let cursor = '0';
      do {
        const [next, names] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
        if (names.length > 0) await this.redis.del(...names);
        cursor = next;
      } while (cursor !== '0');
    });
  }

  async stop(): Promise<void> {
    this.redis.disconnect();
  }

  private keyName(key: string): string {
    // `v:` (a hash), not the single value `k:` once was: an older instance's value is never read as a hash.
    return `${this.prefix}v:${key}`;
  }

  private lockName(key: string): string {
    return `${this.prefix}l:${key}`;
  }

  private tagName(tag: string): string {
    return `${this.prefix}t:${tag}`;
  }

  /** `op`, or `fallback` when Redis fails (logged): the cache is an optimisation. */
  private async guarded<T>(what: string, fallback: T, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.failed(what, err as Error);
      return fallback;
    }
  }

  private failed(what: string, err: Error): void {
    const now = performance.now();
    if (now - this.warnedAt < WARN_EVERY_MS) return;
    this.warnedAt = now;
    this.logger.warning(`cache store ${this.url}: ${what} failed, answering as a miss: ${err.message}`);
  }
}
