/**
 * The memory store: responses in this process, least recently used dropped
 * first once the byte bound is reached; a response larger than the maximum
 * object size is never stored. Tags are indexed so invalidation by tag does
 * not scan the store.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { TagIndex } from './tag-index.js';

/** What a variant costs beyond its body: headers, policy, bookkeeping (an estimate). */
const OVERHEAD = 1024;

function costOf(stored: StoredResponse): number {
  return stored.body.length + OVERHEAD;
}

export class MemoryStore implements CacheStore {
  /** In least recently used order: a hit moves its key to the end. */
  private readonly entries = new Map<string, StoredResponse[]>();
  private readonly tags = new TagIndex();
  private bytes = 0;

  constructor(
    /** The byte bound over all responses. */
    private readonly maxSize: number,
    /** Larger responses are passed on, not stored. */
    readonly maxObjectSize: number,
  ) {}

  get(key: string): StoredResponse[] {
    const variants = this.entries.get(key);
    if (variants === undefined) return [];
    const now = Date.now();
    const live = variants.filter((v) => v.keepUntil > now);
    if (live.length !== variants.length) {
      this.delete(key);
      for (const v of live) this.put(key, v);
      return live;
    }
    this.entries.delete(key);
    this.entries.set(key, variants);
    return variants;
  }

  holds(key: string, stored: StoredResponse): boolean {
    return this.entries.get(key)?.includes(stored) === true;
  }

  put(key: string, stored: StoredResponse): void {
    const cost = costOf(stored);
    if (stored.body.length > this.maxObjectSize || cost > this.maxSize) return;
    const variants = (this.entries.get(key) ?? []).filter((v) => {
      if (v.variant !== stored.variant) return true;
      this.bytes -= costOf(v);
      return false;
    });
    variants.push(stored);
    this.entries.delete(key);
    this.entries.set(key, variants);
    this.bytes += cost;
    this.tags.add(key, stored.tags);
    for (const oldest of this.entries.keys()) {
      if (this.bytes <= this.maxSize) break;
      this.delete(oldest);
    }
  }

  delete(key: string): boolean {
    const variants = this.entries.get(key);
    if (variants === undefined) return false;
    this.entries.delete(key);
    for (const v of variants) {
      this.bytes -= costOf(v);
      this.tags.remove(key, v.tags);
    }
    return true;
  }

  deleteTag(tag: string): number {
    let n = 0;
    for (const key of this.tags.keysOf(tag)) if (this.delete(key)) n++;
    return n;
  }

  flush(): void {
    this.entries.clear();
    this.tags.clear();
    this.bytes = 0;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
