/**
 * Where stored responses live. A key holds its variants (one per
 * combination of the request headers its Vary names). The memory store
 * answers at once; a shared store (memcached, Redis) will answer later, which
 * is why the cache handler treats a lookup as possibly asynchronous.
 */
import type { StoredResponse } from './cache-policy.js';

export interface CacheStore {
  /** The variants stored under `key` (empty when none). */
  get(key: string): StoredResponse[];
  /** Stores a variant, replacing the one of the same `variant`. False: not stored (too large). */
  put(key: string, stored: StoredResponse): boolean;
  /** Drops every variant of `key`; true if there was one. */
  delete(key: string): boolean;
  /** Drops every response tagged `tag`; returns how many. */
  deleteTag(tag: string): number;
  /** Drops everything. */
  flush(): void;
  /** Bytes held. */
  readonly size: number;
}
