/**
 * Where stored responses live. A key holds its variants (one per
 * combination of the request headers its Vary names). The memory store
 * answers at once; a shared store (Redis) answers later, so every method may
 * return a promise. A shared store that fails answers as if empty (a miss),
 * never with an error: the cache is an optimisation.
 */
import type { StoredResponse } from './cache-policy.js';

export type Maybe<T> = T | Promise<T>;

export interface CacheStore {
  /** The variants stored under `key` (empty when none). */
  get(key: string): Maybe<StoredResponse[]>;
  /** Stores a variant, replacing the one of the same `variant`. */
  put(key: string, stored: StoredResponse): Maybe<void>;
  /** Drops every variant of `key`; true if there was one. */
  delete(key: string): Maybe<boolean>;
  /** Drops every response tagged `tag`; returns how many keys, or null when the store cannot tell. */
  deleteTag(tag: string): Maybe<number | null>;
  /** Drops everything. */
  flush(): Maybe<void>;
  /**
   * In a store that answers at once: whether `stored` is still one of
   * `key`'s variants (not purged, flushed, replaced or evicted since).
   */
  holds?(key: string, stored: StoredResponse): boolean;
  /**
   * In a store that answers at once: a count of its changes (put, delete,
   * flush), telling whether what it answered is still what it holds.
   */
  readonly writes?: number;
  /**
   * Shared stores: the fetch lock of `key` across the instances sharing the
   * store, taken for `ms` (fetch-lock.ts). True when this instance has it,
   * and when the store fails (the request then fetches by itself).
   */
  lock?(key: string, ms: number): Promise<boolean>;
  /** Whether the key's lock is held (false when the store fails). */
  locked?(key: string): Promise<boolean>;
  /** Lets go of a lock this instance took. */
  unlock?(key: string): Promise<void>;
  /** Closes the connection to a shared store. */
  stop(): Promise<void>;
}

/** Calls `then` with what a store answered, at once when it answered at once. */
export function when<T>(value: Maybe<T>, then: (result: T) => void): void {
  if (value instanceof Promise) void value.then(then);
  else then(value);
}
