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
 * In a store of some size, small responses are packed one after another
 * into slabs of the store's own, which saves an allocation per response and
 * leaves the collector few blocks to track. A slab counts whole against the
 * bound while a response in it is stored; a response is moved out to a
 * block of its own when it first answers, so slabs hold responses not used
 * since stored, which go oldest first, and whole slabs are let go: the
 * last few are kept to be filled again (nothing outside the store sees into
 * a slab), so a full store that keeps evicting allocates nothing new.
 *
 * The use order is the Map's own (a key used or stored again is taken out
 * and put back at the end). The least recently used is found by one
 * iterator kept across evictions: every key before it has been taken out,
 * so it never walks over the slots they leave in the Map's table.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { packedKeepUntil, packedVariant, packResponse, unpackResponse } from './packed-response.js';
import { TagIndex } from './tag-index.js';

/** What a stored key costs beyond its packed bytes and its key: its place in the Map, the block's objects and allocation (an estimate). */
const KEY_COST = 200;
const SLAB_SIZE = 256 * 1024;
/** Larger responses get a block of their own. */
const SLAB_MAX_BLOCK = SLAB_SIZE / 16;
/** Emptied slabs kept to be filled again (counted against the bound). */
const SPARE_SLABS = 2;
/** Smaller stores keep no slabs (a slab is then too large a part of the bound). */
const SLAB_MIN_STORE = 64 * SLAB_SIZE;
/** What a response costs once unpacked (its StoredResponse, headers and policy: the body stays in the packed bytes), and its Entry. */
const UNPACKED_COST = 1200;

const NO_TAGS: readonly string[] = [];
const NONE: StoredResponse[] = [];

/** A key with more than a packed response: several variants, tags, or its variants unpacked. */
class Entry {
  /** Unpacked, in the order of `packed`, once one has answered; null until then and after a change. */
  unpacked: StoredResponse[] | null = null;

  constructor(
    readonly packed: readonly Buffer[],
    /** The tags of its variants (for the index). */
    readonly tags: readonly string[],
  ) {}
}

type Slot = Buffer | Entry;

/** Where keys are copied through (grown for a longer one). */
let keyScratch = Buffer.allocUnsafeSlow(4096);

/**
 * `key` as one string of its own: a key is made by joining strings, and
 * kept as made it would keep them all, the request's target with whatever
 * it was cut from, for as long as the response is stored.
 */
function flat(key: string): string {
  if (3 * key.length > keyScratch.length) keyScratch = Buffer.allocUnsafeSlow(3 * key.length);
  const copy = keyScratch.toString('utf8', 0, keyScratch.write(key));
  // Text UTF-8 cannot carry (a lone surrogate) keeps the key as it is.
  return copy === key ? copy : key;
}

function packedOf(slot: Slot): readonly Buffer[] {
  return slot instanceof Entry ? slot.packed : [slot];
}

export class MemoryStore implements CacheStore {
  private readonly entries = new Map<string, Slot>();
  /** The slabs holding stored responses (and the one being filled), with the bytes of those in each. */
  private readonly slabs = new Map<ArrayBufferLike, number>();
  private slab: Buffer | null = null;
  private slabUsed = 0;
  private spares: Buffer[] = [];
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
    const before = this.costOf(key, slot);
    const now = Date.now();
    if (slot instanceof Entry && slot.unpacked !== null) {
      if (slot.unpacked.some((v) => v.keepUntil <= now)) return this.dropExpired(key, slot.unpacked, now);
      this.place(key, slot, before);
      return slot.unpacked;
    }
    const packed = packedOf(slot);
    // Unpacked from copies: what is returned must not see into a slab, whose bytes are used again.
    if (packed.some((p) => packedKeepUntil(p) <= now)) return this.dropExpired(key, packed.map((p) => unpackResponse(Buffer.from(p))), now);
    const own = packed.map((p) => this.ownBlock(p));
    const entry = new Entry(own, slot instanceof Entry ? slot.tags : NO_TAGS);
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
    const packed = packResponse(stored, (size) => this.block(size));
    if (KEY_COST + key.length + packed.byteLength > this.maxSize) {
      this.free(packed);
      return;
    }
    const had = this.entries.get(key);
    const before = had === undefined ? 0 : this.costOf(key, had);
    let slot: Slot = packed;
    if (had !== undefined || stored.tags.length > 0) {
      const others = had === undefined ? [] : packedOf(had).filter((p) => packedVariant(p) !== stored.variant || this.free(p));
      const hadTags = had instanceof Entry ? had.tags : NO_TAGS;
      const tags = stored.tags.length === 0 ? hadTags : [...new Set([...hadTags, ...stored.tags])];
      if (others.length > 0 || tags.length > 0) slot = new Entry([...others, packed], tags);
    }
    this.tags.add(key, stored.tags);
    this.place(key, slot, before);
  }

  delete(key: string): boolean {
    const slot = this.entries.get(key);
    if (slot === undefined) return false;
    this.entries.delete(key);
    this.bytes -= this.costOf(key, slot);
    if (slot instanceof Entry) {
      for (const p of slot.packed) this.free(p);
      this.tags.remove(key, slot.tags);
    } else {
      this.free(slot);
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
    this.slabs.clear();
    this.slab = null;
    this.spares = [];
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
    this.entries.set(flat(key), slot);
    this.bytes += this.costOf(key, slot) - before;
    this.evict();
  }

  /** Bytes counted against the bound (those of a response in a slab are counted with the slab). */
  private costOf(key: string, slot: Slot): number {
    if (!(slot instanceof Entry)) return KEY_COST + key.length + this.ownBytes(slot);
    let cost = KEY_COST + key.length;
    for (const p of slot.packed) cost += this.ownBytes(p);
    return slot.unpacked === null ? cost : cost + UNPACKED_COST * slot.unpacked.length;
  }

  private ownBytes(block: Buffer): number {
    return this.slabs.has(block.buffer) ? 0 : block.byteLength;
  }

  /** Memory for a packed response of `size` bytes: in the slab being filled, or of its own. */
  private block(size: number): Buffer {
    if (this.maxSize < SLAB_MIN_STORE || size > SLAB_MAX_BLOCK) return Buffer.allocUnsafeSlow(size);
    if (this.slab === null || this.slabUsed + size > SLAB_SIZE) {
      const full = this.slab;
      this.slab = this.spares.pop() ?? null;
      if (this.slab === null) {
        this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
        this.bytes += SLAB_SIZE;
      }
      this.slabUsed = 0;
      this.slabs.set(this.slab.buffer, 0);
      if (full !== null && this.slabs.get(full.buffer) === 0) this.emptied(full);
    }
    const block = this.slab.subarray(this.slabUsed, this.slabUsed + size);
    this.slabUsed += size;
    this.slabs.set(block.buffer, this.slabs.get(block.buffer)! + size);
    return block;
  }

  /** `block` is no longer stored; false (for filters). */
  private free(block: Buffer): false {
    const live = this.slabs.get(block.buffer);
    if (live === undefined) return false;
    this.slabs.set(block.buffer, live - block.byteLength);
    if (live === block.byteLength && block.buffer !== this.slab?.buffer) this.emptied(Buffer.from(block.buffer));
    return false;
  }

  /** No stored response is in `slab` any more: kept to be filled again, or let go. */
  private emptied(slab: Buffer): void {
    this.slabs.delete(slab.buffer);
    if (this.spares.length < SPARE_SLABS) this.spares.push(slab);
    else this.bytes -= SLAB_SIZE;
  }

  /** A packed response in memory of its own: one that answers moves out of its slab, so the slab can go with its neighbours. */
  private ownBlock(block: Buffer): Buffer {
    if (!this.slabs.has(block.buffer)) return block;
    const own = Buffer.allocUnsafeSlow(block.byteLength);
    block.copy(own);
    this.free(block);
    return own;
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
