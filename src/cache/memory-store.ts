/**
 * The memory store: responses in this process, least recently used dropped
 * first once the byte bound is reached; a response larger than the maximum
 * object size is never stored. Tags are indexed so invalidation by tag does
 * not scan the store.
 *
 * The use order is a list through the entries themselves: a hit moves its
 * entry to the front with a few pointer writes, where taking its key out of
 * the Map and putting it back (the Map's own order) would leave a deleted
 * slot in the Map's table on every hit, for eviction to skip over.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { TagIndex } from './tag-index.js';

/** What a variant costs beyond its body: headers, policy, bookkeeping (an estimate). */
const OVERHEAD = 1024;

function costOf(stored: StoredResponse): number {
  return stored.body.length + OVERHEAD;
}

function variantsOf(entry: Entry): StoredResponse[] {
  return Array.isArray(entry.stored) ? entry.stored : [entry.stored];
}

/** A key's variants, and its place in the use order. */
interface Entry {
  key: string;
  /** The key's variant, or its list of them when it has several: most keys have one, and keep no list. */
  stored: StoredResponse | StoredResponse[];
  /** Used more lately: toward the front; less: toward the back (null at the ends). */
  newer: Entry | null;
  older: Entry | null;
}

export class MemoryStore implements CacheStore {
  private readonly entries = new Map<string, Entry>();
  /** The most and least recently used entries. */
  private newest: Entry | null = null;
  private oldest: Entry | null = null;
  private readonly tags = new TagIndex();
  private bytes = 0;

  constructor(
    /** The byte bound over all responses. */
    private readonly maxSize: number,
    /** Larger responses are passed on, not stored. */
    readonly maxObjectSize: number,
  ) {}

  get(key: string): StoredResponse[] {
    const entry = this.entries.get(key);
    if (entry === undefined) return [];
    const variants = variantsOf(entry);
    const now = Date.now();
    for (const v of variants) {
      if (v.keepUntil > now) continue;
      const live = variants.filter((x) => x.keepUntil > now);
      this.delete(key);
      for (const x of live) this.put(key, x);
      return live;
    }
    this.touch(entry);
    return variants;
  }

  holds(key: string, stored: StoredResponse): boolean {
    const had = this.entries.get(key)?.stored;
    return had !== undefined && (Array.isArray(had) ? had.includes(stored) : had === stored);
  }

  put(key: string, stored: StoredResponse): void {
    const cost = costOf(stored);
    if (stored.body.length > this.maxObjectSize || cost > this.maxSize) return;
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { key, stored, newer: null, older: null };
      this.entries.set(key, entry);
    } else {
      const others = variantsOf(entry).filter((v) => {
        if (v.variant !== stored.variant) return true;
        this.bytes -= costOf(v);
        return false;
      });
      // A list made whole, not grown by push (which would keep room for more).
      entry.stored = others.length === 0 ? stored : [...others, stored];
    }
    this.touch(entry);
    this.bytes += cost;
    this.tags.add(key, stored.tags);
    while (this.bytes > this.maxSize && this.oldest !== null) this.delete(this.oldest.key);
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    this.unlink(entry);
    for (const v of variantsOf(entry)) {
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
    this.newest = this.oldest = null;
    this.tags.clear();
    this.bytes = 0;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** `entry` is the most recently used now. */
  private touch(entry: Entry): void {
    if (this.newest === entry) return;
    this.unlink(entry);
    entry.older = this.newest;
    if (this.newest !== null) this.newest.newer = entry;
    this.newest = entry;
    this.oldest ??= entry;
  }

  private unlink(entry: Entry): void {
    if (entry.newer !== null) entry.newer.older = entry.older;
    else if (this.newest === entry) this.newest = entry.older;
    if (entry.older !== null) entry.older.newer = entry.newer;
    else if (this.oldest === entry) this.oldest = entry.newer;
    entry.newer = entry.older = null;
  }
}
