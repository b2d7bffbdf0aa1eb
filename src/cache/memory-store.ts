/**
 * The memory store: responses in this process, least recently used dropped
 * first once the byte bound is reached; a response larger than the maximum
 * object size is never stored. Tags are indexed so invalidation by tag does
 * not scan the store.
 *
 * A response is kept packed (packed-response.ts), in memory of the store's
 * own (slab-blocks.ts), and unpacked the first time it answers, then kept
 * unpacked beside it and moved out of its slab. Most keys (one variant, no
 * tags, not used since stored) are their packed response alone in the Map:
 * a store filled by misses holds a key and a number per response, so
 * filling it costs the collector little, while a hit finds the same
 * StoredResponse each time (answers made from it are reused by identity).
 *
 * The use order is the Map's own (a key used or stored again is taken out
 * and put back at the end). The least recently used is found by one
 * iterator kept across evictions: every key before it has been taken out,
 * so it never walks over the slots they leave in the Map's table.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { packedKeepUntil, packedVariant, packResponse, unpackResponse } from './packed-response.js';
import { SLAB_MIN_STORE, SlabBlocks, type Block } from './slab-blocks.js';
import { TagIndex } from './tag-index.js';

/** What a stored key costs beyond its packed bytes and its key: its place in the Map, its memory's objects and allocation (an estimate). */
const KEY_COST = 200;
/** What a response costs once unpacked (its StoredResponse, headers and policy: the body stays in the packed bytes), and its Entry. */
const UNPACKED_COST = 1200;

const NO_TAGS: readonly string[] = [];
const NONE: StoredResponse[] = [];

/** A key with more than a packed response: several variants, tags, or its variants unpacked. */
class Entry {
  /** Unpacked, in the order of `packed`, once one has answered; null until then and after a change. */
  unpacked: StoredResponse[] | null = null;

  constructor(
    /** Its key as the Map holds it (flat()). */
    readonly key: string,
    readonly packed: readonly Block[],
    /** The tags of its variants (for the index). */
    readonly tags: readonly string[],
  ) {}
}

type Slot = Block | Entry;

function packedOf(slot: Slot): readonly Block[] {
  return slot instanceof Entry ? slot.packed : [slot];
}

/** Where keys are copied through (grown for a longer one). */
let keyScratch = Buffer.allocUnsafeSlow(4096);

/**
 * `key` as one string of its own: a key is made by joining strings, and
 * kept as made it would keep them all, the request's target with whatever
 * it was cut from, for as long as the response is stored. (A slice of the
 * joined string would be a copy too, but two objects for the collector to
 * keep and mark for each key stored.)
 */
function flat(key: string): string {
  if (3 * key.length > keyScratch.length) keyScratch = Buffer.allocUnsafeSlow(3 * key.length);
  const copy = keyScratch.toString('utf8', 0, keyScratch.write(key));
  // Text UTF-8 cannot carry (a lone surrogate) keeps the key as it is.
  return copy === key ? copy : key;
}

export class MemoryStore implements CacheStore {
  private readonly entries = new Map<string, Slot>();
  private readonly blocks: SlabBlocks;
  /** Where the least recently used key is: null until the first eviction, and after a flush. */
  private cursor: MapIterator<[string, Slot]> | null = null;
  private readonly tags = new TagIndex();
  /** Bytes counted for the keys and what they hold (slabs are counted by `blocks`). */
  private bytes = 0;
  writes = 0;

  constructor(
    /** The byte bound over all responses. */
    private readonly maxSize: number,
    /** Larger responses are passed on, not stored. */
    readonly maxObjectSize: number,
  ) {
    this.blocks = new SlabBlocks(maxSize >= SLAB_MIN_STORE);
  }

  /** The bytes counted against the bound. */
  get size(): number {
    return this.bytes + this.blocks.bytes;
  }

  /** Whether `key` is stored, without using it (the use order stays). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): StoredResponse[] {
    const slot = this.entries.get(key);
    if (slot === undefined) return NONE;
    const now = Date.now();
    if (slot instanceof Entry && slot.unpacked !== null) {
      // A hit: used last now, its cost as it was.
      const variants = slot.unpacked;
      for (const v of variants) if (v.keepUntil <= now) return this.dropExpired(key, variants, now);
      this.entries.delete(key);
      this.entries.set(slot.key, slot);
      return variants;
    }
    const before = this.costOf(key, slot);
    const packed = packedOf(slot);
    if (packed.some((p) => packedKeepUntil(this.blocks.view(p)) <= now)) {
      // Unpacked from copies: nothing returned may see into a slab.
      return this.dropExpired(key, packed.map((p) => unpackResponse(Buffer.from(this.blocks.view(p)))), now);
    }
    const own = packed.map((p) => this.blocks.own(p));
    const entry = new Entry(flat(key), own, slot instanceof Entry ? slot.tags : NO_TAGS);
    const variants = own.map(unpackResponse);
    entry.unpacked = variants;
    this.place(key, entry, before);
    return variants;
  }

  holds(key: string, stored: StoredResponse): boolean {
    const slot = this.entries.get(key);
    return slot instanceof Entry && slot.unpacked !== null && slot.unpacked.includes(stored);
  }

  put(key: string, stored: StoredResponse): void {
    if (stored.body.length > this.maxObjectSize) return;
    this.writes++;
    const length = packResponse(stored, (size) => this.blocks.alloc(size)).length;
    const packed = this.blocks.last;
    if (KEY_COST + key.length + length > this.maxSize) return this.blocks.free(packed);
    const had = this.entries.get(key);
    const before = had === undefined ? 0 : this.costOf(key, had);
    let slot: Slot = packed;
    if (had !== undefined || stored.tags.length > 0) {
      const others = had === undefined ? [] : packedOf(had).filter((p) => this.keepsOther(p, stored.variant));
      const hadTags = had instanceof Entry ? had.tags : NO_TAGS;
      const tags = stored.tags.length === 0 ? hadTags : [...new Set([...hadTags, ...stored.tags])];
      if (others.length > 0 || tags.length > 0) slot = new Entry(flat(key), [...others, packed], tags);
    }
    this.tags.add(key, stored.tags);
    this.place(key, slot, before, had !== undefined);
  }

  delete(key: string): boolean {
    const slot = this.entries.get(key);
    if (slot === undefined) return false;
    this.remove(key, slot);
    return true;
  }

  /** Drops `key`, which holds `slot`. */
  private remove(key: string, slot: Slot): void {
    this.writes++;
    this.entries.delete(key);
    this.bytes -= this.costOf(key, slot);
    if (slot instanceof Entry) {
      for (const p of slot.packed) this.blocks.free(p);
      this.tags.remove(key, slot.tags);
    } else {
      this.blocks.free(slot);
    }
  }

  deleteTag(tag: string): number {
    let n = 0;
    for (const key of this.tags.keysOf(tag)) if (this.delete(key)) n++;
    return n;
  }

  flush(): void {
    this.writes++;
    this.entries.clear();
    this.blocks.clear();
    this.cursor = null;
    this.tags.clear();
    this.bytes = 0;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** Whether a variant stays beside a new one of `variant` (the one it replaces goes). */
  private keepsOther(block: Block, variant: string): boolean {
    if (packedVariant(this.blocks.view(block)) !== variant) return true;
    this.blocks.free(block);
    return false;
  }

  /** A key with a variant past its use: stored again with the others. */
  private dropExpired(key: string, variants: StoredResponse[], now: number): StoredResponse[] {
    const live = variants.filter((v) => v.keepUntil > now);
    this.delete(key);
    for (const v of live) this.put(key, v);
    return live;
  }

  /** `key` holds `slot` now, as the most recently used; it was counted as `before` bytes. `had`: the key was in the Map. */
  private place(key: string, slot: Slot, before: number, had = true): void {
    if (had) this.entries.delete(key);
    this.entries.set(slot instanceof Entry ? slot.key : flat(key), slot);
    this.bytes += this.costOf(key, slot) - before;
    this.evict();
  }

  /** Bytes counted for a key and what it holds. */
  private costOf(key: string, slot: Slot): number {
    if (!(slot instanceof Entry)) return KEY_COST + key.length + this.blocks.ownBytes(slot);
    let cost = KEY_COST + key.length;
    for (const p of slot.packed) cost += this.blocks.ownBytes(p);
    return slot.unpacked === null ? cost : cost + UNPACKED_COST * slot.unpacked.length;
  }

  /** The least recently used go until the store is within its bound again. */
  private evict(): void {
    while (this.size > this.maxSize && this.entries.size > 0) {
      let next = this.cursor?.next();
      if (next === undefined || next.done === true) {
        this.cursor = this.entries.entries();
        next = this.cursor.next();
      }
      const [key, slot] = next.value as [string, Slot];
      this.remove(key, slot);
    }
  }
}
