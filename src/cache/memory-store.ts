/**
 * The memory store: responses in this process, least recently used dropped
 * first once the byte bound is reached; a response larger than the maximum
 * object size is never stored. Tags are indexed so invalidation by tag does
 * not scan the store.
 *
 * A response is kept packed (packed-response.ts: one block of memory of its
 * own) and unpacked the first time it answers, then kept unpacked beside it.
 * Most keys (one variant, no tags, not used since stored) are their packed
 * block alone in the Map: a store filled by misses holds a key and a block
 * per response, so filling it costs the collector little, while a hit finds
 * the same StoredResponse each time (answers made from it are reused by
 * identity).
 *
 * The use order is the Map's own (a key used or stored again is taken out
 * and put back at the end). The least recently used is found by one
 * iterator kept across evictions: every key before it has been taken out,
 * so it never walks over the slots they leave in the Map's table.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { packedVariant, packResponse, unpackResponse } from './packed-response.js';
import { TagIndex } from './tag-index.js';

/** What a stored key costs beyond its packed bytes and its key: its place in the Map, the block's object and allocation (an estimate). */
const KEY_COST = 160;
/** What a response costs once unpacked (its StoredResponse, headers and policy: the body stays in the packed bytes), and its Entry. */
const UNPACKED_COST = 1200;

const NO_TAGS: readonly string[] = [];
const NONE: StoredResponse[] = [];

/** A key with more than a packed response: several variants, tags, or its variants unpacked. */
class Entry {
  /** Unpacked, in the order of `packed`, once one has answered; null until then and after a change. */
  unpacked: StoredResponse[] | null = null;

  constructor(
    readonly packed: readonly ArrayBuffer[],
    /** The tags of its variants (for the index). */
    readonly tags: readonly string[],
  ) {}
}

type Slot = ArrayBuffer | Entry;

function packedOf(slot: Slot): readonly ArrayBuffer[] {
  return slot instanceof Entry ? slot.packed : [slot];
}

function unpack(block: ArrayBuffer): StoredResponse {
  return unpackResponse(Buffer.from(block));
}

/** Bytes counted against the bound. */
function costOf(key: string, slot: Slot): number {
  let cost = KEY_COST + key.length;
  for (const p of packedOf(slot)) cost += p.byteLength;
  return slot instanceof Entry && slot.unpacked !== null ? cost + UNPACKED_COST * slot.unpacked.length : cost;
}

export class MemoryStore implements CacheStore {
  private readonly entries = new Map<string, Slot>();
  /** Where the least recently used key is: null until the first eviction, and after a flush. */
  private cursor: MapIterator<string> | null = null;
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
    const slot = this.entries.get(key);
    if (slot === undefined) return NONE;
    const before = costOf(key, slot);
    const entry = slot instanceof Entry ? slot : new Entry([slot], NO_TAGS);
    const now = Date.now();
    const variants = entry.unpacked ?? entry.packed.map(unpack);
    if (variants.some((v) => v.keepUntil <= now)) return this.dropExpired(key, variants, now);
    entry.unpacked = variants;
    this.place(key, entry, before);
    this.evict();
    return variants;
  }

  holds(key: string, stored: StoredResponse): boolean {
    const slot = this.entries.get(key);
    return slot instanceof Entry && slot.unpacked !== null && slot.unpacked.includes(stored);
  }

  put(key: string, stored: StoredResponse): void {
    if (stored.body.length > this.maxObjectSize) return;
    const packed = packResponse(stored).buffer as ArrayBuffer;
    if (KEY_COST + key.length + packed.byteLength > this.maxSize) return;
    const had = this.entries.get(key);
    let slot: Slot = packed;
    if (had !== undefined || stored.tags.length > 0) {
      const others = had === undefined ? [] : packedOf(had).filter((p) => packedVariant(Buffer.from(p)) !== stored.variant);
      const hadTags = had instanceof Entry ? had.tags : NO_TAGS;
      const tags = stored.tags.length === 0 ? hadTags : [...new Set([...hadTags, ...stored.tags])];
      if (others.length > 0 || tags.length > 0) slot = new Entry([...others, packed], tags);
    }
    this.place(key, slot, had === undefined ? 0 : costOf(key, had));
    this.tags.add(key, stored.tags);
    this.evict();
  }

  delete(key: string): boolean {
    const slot = this.entries.get(key);
    if (slot === undefined) return false;
    this.entries.delete(key);
    this.bytes -= costOf(key, slot);
    if (slot instanceof Entry) this.tags.remove(key, slot.tags);
    return true;
  }

  deleteTag(tag: string): number {
    let n = 0;
    for (const key of this.tags.keysOf(tag)) if (this.delete(key)) n++;
    return n;
  }

  flush(): void {
    this.entries.clear();
    this.cursor = null;
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

  /** `key` holds `slot` now, as the most recently used; it was counted as `before` bytes. */
  private place(key: string, slot: Slot, before: number): void {
    this.entries.delete(key);
    this.entries.set(key, slot);
    this.bytes += costOf(key, slot) - before;
  }

  /** The least recently used go until the store is within its bound again. */
  private evict(): void {
    while (this.bytes > this.maxSize && this.entries.size > 0) {
      let next = this.cursor?.next();
      if (next === undefined || next.done === true) {
        this.cursor = this.entries.keys();
        next = this.cursor.next();
      }
      this.delete(next.value as string);
    }
  }
}
