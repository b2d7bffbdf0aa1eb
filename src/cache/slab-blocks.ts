/**
 * Memory for the packed responses of the memory store (memory-store.ts):
 * small ones one after another in slabs of the store's own (smaller slabs
 * in a smaller store), others in memory of their own. A response in a slab
 * is a number (the slab and the place in it), not an object, and its key is
 * kept after it: a store filled by misses then holds no object per
 * response. A slab is counted whole from when it is
 * taken to be filled until no response in it is kept; the last few emptied
 * are kept, uncounted, to be filled again. Uncounted, so that a full store
 * that keeps storing takes them back in turn (the slab it starts is paid for
 * by evicting until an older one empties) and allocates no new memory,
 * which costs a page fault per page touched. Nothing outside the store may
 * keep a view into a slab: its bytes are used again.
 */
import { packedLengthAt } from './packed-response.js';

/** A store's slabs are this large (smaller ones in stores under STORE_SLABS of them: slabSize()). */
export const SLAB_SIZE = 256 * 1024;
/** Slabs a store holds at least: a slab, counted whole while it fills, is a small part of the bound. */
const STORE_SLABS = 64;
/** Smaller slabs than this are not worth it (few responses would fit): their stores keep none. */
const MIN_SLAB_SIZE = 16 * 1024;
/** Larger responses than a slab's 1/SLAB_BLOCKS get memory of their own. */
const SLAB_BLOCKS = 16;
/** Emptied slabs kept to be filled again (memory past the store's bound, uncounted). */
const SPARE_SLABS = 2;
/** Before a key kept in a slab: its length (UTF-16 units; the key follows as UTF-16, so any string comes back as it was). */
const KEY_LENGTH = 4;
/** The slabs of a store of `maxSize` bytes: SLAB_SIZE, or the power of two that makes STORE_SLABS of them; 0: none. */
export function slabSize(maxSize: number): number {
  let size = SLAB_SIZE;
  while (size * STORE_SLABS > maxSize && size >= 2 * MIN_SLAB_SIZE) size /= 2;
  return size * STORE_SLABS > maxSize ? 0 : size;
}

/** A packed response: memory of its own, or where it is in a slab (slab number × slab size + offset). */
export type Block = Buffer | number;

export class SlabBlocks {
  /** Bytes of the slabs counted: with responses in them, or being filled (not the spares). */
  bytes = 0;
  /** The block alloc() gave last. */
  last: Block = 0;
  private readonly slabs: (Buffer | null)[] = [];
  /** How many responses each slab keeps (a count, not their bytes: freeing one then reads nothing of its slab's memory). */
  private readonly live: number[] = [];
  private freeIds: number[] = [];
  private spares: number[] = [];
  /** The slab being filled (-1: none), and how far. */
  private current = -1;
  private used = 0;

  /** Responses larger than this (with their keys) get memory of their own. */
  private readonly maxBlock: number;

  constructor(
    /** The slabs' size (slabSize()); 0: every response gets memory of its own. */
    private readonly slabSize: number,
  ) {
    this.maxBlock = slabSize / SLAB_BLOCKS;
  }

  /**
   * Memory to pack a response of `size` bytes into; its Block is then
   * `last`. In a slab, `key` is kept after it (sameKey() reads
   * it): the store then holds no string for it.
   */
  alloc(size: number, key: string): Buffer {
    const whole = size + KEY_LENGTH + 2 * key.length;
    if (whole > this.maxBlock) {
      const own = Buffer.allocUnsafeSlow(size);
      this.last = own;
      return own;
    }
    if (this.current < 0 || this.used + whole > this.slabSize) this.nextSlab();
    const id = this.current;
    const at = this.used;
    const slab = this.slabs[id]!;
    this.used += whole;
    this.live[id] = this.live[id]! + 1;
    this.last = id * this.slabSize + at;
    slab.writeUInt32LE(key.length, at + size);
    slab.write(key, at + size + KEY_LENGTH, 'utf16le');
    return slab.subarray(at, at + size);
  }

  /** Whether the key kept with a block in a slab is `key` (read in place). */
  sameKey(block: number, key: string): boolean {
    const slab = this.slabOf(block);
    const at = this.keyAt(slab, block);
    if (slab.readUInt32LE(at) !== key.length) return false;
    for (let i = 0, b = at + KEY_LENGTH; i < key.length; i++, b += 2) if ((slab[b]! | (slab[b + 1]! << 8)) !== key.charCodeAt(i)) return false;
    return true;
  }

  private slabOf(block: number): Buffer {
    return this.slabs[Math.floor(block / this.slabSize)]!;
  }

  /** Where the key kept with a block in `slab` starts (after the packed response). */
  private keyAt(slab: Buffer, block: number): number {
    const at = block % this.slabSize;
    return at + packedLengthAt(slab, at);
  }

  /** The packed response's bytes (a view into its slab only for as long as it is kept). */
  view(block: Block): Buffer {
    if (typeof block !== 'number') return block;
    const slab = this.slabOf(block);
    const at = block % this.slabSize;
    return slab.subarray(at, at + packedLengthAt(slab, at));
  }

  /** Bytes it has of its own (one in a slab counts with its slab). */
  ownBytes(block: Block): number {
    return typeof block === 'number' ? 0 : block.length;
  }

  /** The block is no longer kept. */
  free(block: Block): void {
    if (typeof block !== 'number') return;
    const id = Math.floor(block / this.slabSize);
    const left = this.live[id]! - 1;
    this.live[id] = left;
    if (left !== 0) return;
    // The slab being filled too: an empty slab is not counted (the next response takes it back from the spares).
    if (id === this.current) this.current = -1;
    this.emptied(id);
  }

  /** The block in memory of its own: moved out of its slab (which can then go with its neighbours). */
  own(block: Block): Buffer {
    if (typeof block !== 'number') return block;
    const view = this.view(block);
    const own = Buffer.allocUnsafeSlow(view.length);
    own.set(view);
    this.free(block);
    return own;
  }

  clear(): void {
    this.slabs.length = this.live.length = 0;
    this.freeIds = [];
    this.spares = [];
    this.current = -1;
    this.bytes = 0;
  }

  private nextSlab(): void {
    const full = this.current;
    let id = this.spares.pop();
    if (id === undefined) {
      id = this.freeIds.pop() ?? this.slabs.length;
      this.slabs[id] = Buffer.allocUnsafeSlow(this.slabSize);
    }
    this.bytes += this.slabSize;
    this.current = id;
    this.used = 0;
    this.live[id] = 0;
    if (full >= 0 && this.live[full] === 0) this.emptied(full);
  }

  /** No kept response is in slab `id` any more: kept to be filled again, or let go. */
  private emptied(id: number): void {
    this.bytes -= this.slabSize;
    if (this.spares.length < SPARE_SLABS) return void this.spares.push(id);
    this.slabs[id] = null;
    this.freeIds.push(id);
  }
}
