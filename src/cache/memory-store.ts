/**
 * The memory store: responses in this process, least recently used dropped
 * first once the byte bound is reached; a response larger than the maximum
 * object size is never stored. Tags are indexed so invalidation by tag does
 * not scan the store.
 *
 * A response is kept packed (packed-response.ts: one Buffer of its own) and
 * unpacked the first time it answers, then kept unpacked beside it: a store
 * filled by misses holds a few objects per response, so filling it costs
 * the collector little, while a hit finds the same StoredResponse each time
 * (the answers made from it are reused by identity).
 *
 * The use order is a list through the entries themselves: a hit moves its
 * entry to the front with a few pointer writes, where taking its key out of
 * the Map and putting it back (the Map's own order) would leave a deleted
 * slot in the Map's table on every hit, for eviction to skip over.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { packedKeepUntil, packedVariant, packResponse, unpackResponse } from './packed-response.js';
import { TagIndex } from './tag-index.js';

/**
 * What a stored key costs beyond its packed bytes and its key: the entry,
 * its place in the Map, the Buffer and its allocation (an estimate).
 */
const ENTRY_COST = 256;
/** What a response costs once unpacked (its StoredResponse, headers and policy; the body stays in the packed bytes). */
const UNPACKED_COST = 1024;

const NO_TAGS: readonly string[] = [];
const NONE: StoredResponse[] = [];

/** A key's variants, and its place in the use order. */
class Entry {
  /** Unpacked, in the order of `packed`, once one has answered; null until then and after a change. */
  unpacked: StoredResponse[] | null = null;
  /** Bytes counted against the bound. */
  cost = 0;
  /** Used more lately: toward the front; less: toward the back (null at the ends). */
  newer: Entry | null = null;
  older: Entry | null = null;

  constructor(
    readonly key: string,
    /** The key's variant, or its list of them when it has several: most keys have one, and keep no list. */
    public packed: Buffer | Buffer[],
    /** The tags of its variants (for the index). */
    public tags: readonly string[],
  ) {}
}

function packedOf(entry: Entry): Buffer[] {
  return Array.isArray(entry.packed) ? entry.packed : [entry.packed];
}

function costOf(entry: Entry): number {
  let cost = ENTRY_COST + entry.key.length;
  for (const p of packedOf(entry)) cost += p.length;
  return entry.unpacked === null ? cost : cost + UNPACKED_COST * entry.unpacked.length;
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

  /** The bytes counted against the bound. */
  get size(): number {
    return this.bytes;
  }

  /** Whether `key` is stored, without using it (the use order stays). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): StoredResponse[] {
    const entry = this.entries.get(key);
    if (entry === undefined) return NONE;
    const now = Date.now();
    let variants = entry.unpacked;
    if (variants === null) {
      const packed = packedOf(entry);
      if (packed.some((p) => packedKeepUntil(p) <= now)) return this.dropExpired(key, packed.map(unpackResponse), now);
      entry.unpacked = variants = packed.map(unpackResponse);
      this.recost(entry);
    } else if (variants.some((v) => v.keepUntil <= now)) {
      return this.dropExpired(key, variants, now);
    }
    this.touch(entry);
    this.evict();
    return variants;
  }

  holds(key: string, stored: StoredResponse): boolean {
    return this.entries.get(key)?.unpacked?.includes(stored) ?? false;
  }

  put(key: string, stored: StoredResponse): void {
    if (stored.body.length > this.maxObjectSize) return;
    const packed = packResponse(stored);
    if (ENTRY_COST + key.length + packed.length > this.maxSize) return;
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = new Entry(key, packed, stored.tags.length === 0 ? NO_TAGS : stored.tags);
      this.entries.set(key, entry);
    } else {
      const others = packedOf(entry).filter((p) => packedVariant(p) !== stored.variant);
      // A list made whole, not grown by push (which would keep room for more).
      entry.packed = others.length === 0 ? packed : [...others, packed];
      entry.unpacked = null;
      if (stored.tags.length > 0) entry.tags = [...new Set([...entry.tags, ...stored.tags])];
    }
    this.recost(entry);
    this.touch(entry);
    this.tags.add(key, stored.tags);
    this.evict();
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    this.unlink(entry);
    this.bytes -= entry.cost;
    this.tags.remove(key, entry.tags);
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

  /** A key with a variant past its use: stored again with the others. */
  private dropExpired(key: string, variants: StoredResponse[], now: number): StoredResponse[] {
    const live = variants.filter((v) => v.keepUntil > now);
    this.delete(key);
    for (const v of live) this.put(key, v);
    return live;
  }

  /** The entry's cost, after a change, in the store's count. */
  private recost(entry: Entry): void {
    const cost = costOf(entry);
    this.bytes += cost - entry.cost;
    entry.cost = cost;
  }

  /** The least recently used go until the store is within its bound again (a new or grown entry is the newest: it stays if it fits alone). */
  private evict(): void {
    while (this.bytes > this.maxSize && this.oldest !== null) this.delete(this.oldest.key);
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
