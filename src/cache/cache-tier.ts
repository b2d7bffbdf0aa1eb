/**
 * The cache of a running gatehouse: one store and one lock table shared by
 * every cached route, each route wrapped with its own rules.
 */
import type { Logger } from '../log/logger.js';
import { CachedHandler, type CacheRouteSettings, type CacheShared, type LeanHandler } from './cached-handler.js';
import { FetchLock } from './fetch-lock.js';
import { MemoryStore } from './memory-store.js';

export interface CacheTierSettings {
  /** Bytes of memory for stored responses. */
  size: number;
  maxObjectSize: number;
  /** Seconds a request waits for another's fetch of the same key. */
  lockTimeout: number;
}

export class CacheTier {
  private readonly shared: CacheShared;

  constructor(settings: CacheTierSettings, logger: Logger) {
    this.shared = {
      store: new MemoryStore(settings.size, settings.maxObjectSize),
      maxObjectSize: settings.maxObjectSize,
      lock: new FetchLock(settings.lockTimeout * 1000),
      logger,
    };
  }

  wrap(inner: LeanHandler, rules: CacheRouteSettings): CachedHandler {
    return new CachedHandler(inner, rules, this.shared);
  }
}
