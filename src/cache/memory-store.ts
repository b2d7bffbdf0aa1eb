/**
 * The memory store: responses in this process, least recently used dropped
 * first once the byte bound is reached; a response larger than the maximum
 * object size is never stored. Tags are indexed so invalidation by tag does
 * not scan the store.
 *
 * A response is kept packed (packed-response.ts), in memory of the store's
 * own (slab-blocks.ts), and unpacked the first time it answers, then kept
 * unpacked beside it and moved out of its slab. Most keys (one variant, no
 * tags, not used since stored, in a slab) are their packed response alone,
 * the key kept in the slab beside it and found through the key index
 * (key-index.ts), which also keeps the use order: a store filled and
 * emptied by misses holds no object per response, so storing and evicting
 * costs the collector nothing, while a hit finds the same StoredResponse
 * each time (answers made from it are reused by identity). Other keys are
 * held by an Entry.
 */
import type { StoredResponse } from './cache-policy.js';
import type { CacheStore } from './cache-store.js';
import { packedKeepUntil, packedVariant, packResponse, unpackResponse } from './packed-response.js';
import { slabSize, SlabBlocks, type Block } from './slab-blocks.js';
import { TagIndex } from './tag-index.js';
import { KeyIndex, keyHash } from './key-index.js';

/** What a stored key costs beyond its packed bytes and its key: its place in the index, its memory's objects and allocation (an estimate). */
const KEY_COST = 200;
/** The index's value of a key held by an Entry (any other value is a block in a slab). */
const HELD = -1;
/** What a response costs once unpacked (its StoredResponse, headers and policy: the body stays in the packed bytes), and its Entry. */
const UNPACKED_COST = 1200;

const NO_BLOCKS: readonly Block[] = [];
const NO_TAGS: readonly string[] = [];
const NONE: StoredResponse[] = [];

/** A key with more than a packed response: several variants, tags, or its variants unpacked. */
class Entry {
  /** Unpacked, in the order of `packed`, once one has answered; null until then and after a change. */
  unpacked: StoredResponse[] | null = null;

  constructor(
    /** Its key, as a string of its own (flat()). */
    readonly key: string,
    readonly packed: readonly Block[],
    /** The tags of its variants (for the index). */
    readonly tags: readonly string[],
  ) {}
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
  private readonly index = new KeyIndex((node, key) => this.sameKey(node, key));
  /** The Entry of each node whose value is HELD, by node (null for the others). */
  private readonly held: (Entry | null)[] = [];
  private readonly blocks: SlabBlocks;
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
    this.blocks = new SlabBlocks(slabSize(maxSize));
  }

  /** The bytes counted against the bound. */
  get size(): number {
    return this.bytes + this.blocks.bytes;
  }

  /** Whether `key` is stored, without using it (the use order stays). */
  has(key: string): boolean {
    return this.index.find(key) >= 0;
  }

  get(key: string): StoredResponse[] {
    const node = this.index.find(key);
    if (node < 0) return NONE;
    const now = Date.now();
    const entry = this.entryOf(node);
    if (entry !== null && entry.unpacked !== null) {
      // A hit: used last now, its cost as it was.
      const variants = entry.unpacked;
      for (const v of variants) if (v.keepUntil <= now) return this.dropExpired(key, variants, now);
      this.index.use(node);
      return variants;
    }
    const before = this.costOf(node);
    const packed = this.packedOf(node);
    if (packed.some((p) => packedKeepUntil(this.blocks.view(p)) <= now)) {
      // Unpacked from copies: nothing returned may see into a slab.
      return this.dropExpired(key, packed.map((p) => unpackResponse(Buffer.from(this.blocks.view(p)))), now);
    }
    const own = packed.map((p) => this.blocks.own(p));
    const hit = new Entry(flat(key), own, entry?.tags ?? NO_TAGS);
    const variants = own.map(unpackResponse);
    hit.unpacked = variants;
    this.hold(node, hit);
    this.index.use(node);
    this.counted(node, before);
    return variants;
  }

  holds(key: string, stored: StoredResponse): boolean {
    const node = this.index.find(key);
    return node >= 0 && (this.entryOf(node)?.unpacked?.includes(stored) ?? false);
  }

  put(key: string, stored: StoredResponse): void {
    if (stored.body.length > this.maxObjectSize) return;
    this.writes++;
    const length = packResponse(stored, (size) => this.blocks.alloc(size, key)).length;
    const packed = this.blocks.last;
    if (KEY_COST + key.length + length > this.maxSize) return this.blocks.free(packed);
    const hash = keyHash(key);
    const had = this.index.find(key, hash);
    const before = had < 0 ? 0 : this.costOf(had);
    const others = had < 0 ? NO_BLOCKS : this.packedOf(had).filter((p) => this.keepsOther(p, stored.variant));
    const hadTags = had < 0 ? NO_TAGS : (this.entryOf(had)?.tags ?? NO_TAGS);
    const tags = stored.tags.length === 0 ? hadTags : [...new Set([...hadTags, ...stored.tags])];
    this.tags.add(key, stored.tags);
    // A lone variant without tags, in a slab, is its block alone; anything else needs an Entry.
    const alone = typeof packed === 'number' && others.length === 0 && tags.length === 0;
    const node = had < 0 ? this.index.add(hash, alone ? packed : HELD) : had;
    if (had >= 0) this.index.use(node);
    if (alone) this.unhold(node, packed);
    else this.hold(node, new Entry(flat(key), [...others, packed], tags));
    this.counted(node, before);
  }

  delete(key: string): boolean {
    const node = this.index.find(key);
    if (node < 0) return false;
    this.remove(node);
    return true;
  }

  /** Drops the key of `node`. */
  private remove(node: number): void {
    this.writes++;
    this.bytes -= this.costOf(node);
    const entry = this.entryOf(node);
    if (entry !== null) {
      for (const p of entry.packed) this.blocks.free(p);
      this.tags.remove(entry.key, entry.tags);
      this.held[node] = null;
    } else {
      this.blocks.free(this.index.value(node));
    }
    this.index.remove(node);
  }

  deleteTag(tag: string): number {
    let n = 0;
    for (const key of this.tags.keysOf(tag)) if (this.delete(key)) n++;
    return n;
  }

  flush(): void {
    this.writes++;
    this.index.clear();
    this.held.length = 0;
    this.blocks.clear();
    this.tags.clear();
    this.bytes = 0;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** Whether the key of `node` (their hashes are the same) is `key`. */
  private sameKey(node: number, key: string): boolean {
    const value = this.index.value(node);
    return value === HELD ? this.held[node]!.key === key : this.blocks.sameKey(value, key);
  }

  private entryOf(node: number): Entry | null {
    return this.index.value(node) === HELD ? this.held[node]! : null;
  }

  private packedOf(node: number): readonly Block[] {
    const value = this.index.value(node);
    return value === HELD ? this.held[node]!.packed : [value];
  }

  private hold(node: number, entry: Entry): void {
    while (this.held.length <= node) this.held.push(null);
    this.held[node] = entry;
    this.index.setValue(node, HELD);
  }

  /** The key of `node` is its packed response in a slab alone. */
  private unhold(node: number, block: number): void {
    if (node < this.held.length) this.held[node] = null;
    this.index.setValue(node, block);
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

  /** `node` was counted as `before` bytes: counted as it is now, and the store kept within its bound. */
  private counted(node: number, before: number): void {
    this.bytes += this.costOf(node) - before;
    this.evict();
  }

  /** Bytes counted for a key and what it holds (a key in a slab is counted there). */
  private costOf(node: number): number {
    const entry = this.entryOf(node);
    if (entry === null) return KEY_COST;
    let cost = KEY_COST + entry.key.length;
    for (const p of entry.packed) cost += this.blocks.ownBytes(p);
    return entry.unpacked === null ? cost : cost + UNPACKED_COST * entry.unpacked.length;
  }

  /** The least recently used go until the store is within its bound again. */
  private evict(): void {
    while (this.size > this.maxSize && this.index.size > 0) this.remove(this.index.oldest);
  }
}
