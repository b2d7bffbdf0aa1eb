/**
 * The cache of a running gatehouse: one store and one lock table shared by
 * every cached route, each route wrapped with its own rules. Life cycle: a
 * shared store connects when made (requests are misses until it answers) and
 * disconnects on stop().
 */
import type { Logger } from '../log/logger.js';
import { CachedHandler, type CacheRouteSettings, type CacheShared, type LeanHandler } from './cached-handler.js';
import { FetchLock } from './fetch-lock.js';
import { MemcachedStore } from './memcached-store.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';

export interface CacheTierSettings {
  /** redis://... or memcached://... for a shared store; undefined: this process's memory. */
  store: string | undefined;
  /** Bytes of memory for stored responses. */
  size: number;
  maxObjectSize: number;
  /** Seconds a request waits for another's fetch of the same key. */
  lockTimeout: number;
}

export class CacheTier {
  private readonly shared: CacheShared;

  constructor(settings: CacheTierSettings, logger: Logger) {
    const store =
      settings.store === undefined ? new MemoryStore(settings.size, settings.maxObjectSize)
      : settings.store.startsWith('memcached:') ? new MemcachedStore(settings.store, logger)
      : new RedisStore(settings.store, logger);
    this.shared = { store, maxObjectSize: settings.maxObjectSize, lock: new FetchLock(settings.lockTimeout * 1000, store), logger };
  }

  /** Closes the connection to a shared store. */
  stop(): Promise<void> {
    return this.shared.store.stop();
  }

  wrap(inner: LeanHandler, rules: CacheRouteSettings): CachedHandler {
    return new CachedHandler(inner, rules, this.shared);
  }
}
