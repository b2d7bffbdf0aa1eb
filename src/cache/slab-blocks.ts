/**
 * Memory for the packed responses of the memory store (memory-store.ts):
 * small ones one after another in slabs of the store's own, others in
 * memory of their own. A response in a slab is a number (the slab and the
 * place in it), not an object: a store filled by misses then holds its key
 * and little else per response. A slab is counted whole from when it is
 * taken to be filled until no response in it is kept; the last few emptied
 * are kept, uncounted, to be filled again. Uncounted, so that a full store
 * that keeps storing takes them back in turn (the slab it starts is paid for
 * by evicting until an older one empties) and allocates no new memory,
 * which costs a page fault per page touched. Nothing outside the store may
 * keep a view into a slab: its bytes are used again.
 */
import { packedLengthAt } from './packed-response.js';

export const SLAB_SIZE = 256 * 1024;
/** Larger responses get memory of their own. */
const SLAB_MAX_BLOCK = SLAB_SIZE / 16;
/** Emptied slabs kept to be filled again (memory past the store's bound, uncounted). */
const SPARE_SLABS = 2;
/** Before a key kept in a slab: its length (UTF-16 units; the key follows as UTF-16, so any string comes back as it was). */
const KEY_LENGTH = 4;
/** Smaller stores keep no slabs: a slab would be too large a part of the bound. */
export const SLAB_MIN_STORE = 64 * SLAB_SIZE;

/** Where the key kept with a block in `slab` starts (after the packed response). */
function keyAt(slab: Buffer, block: number): number {
  const at = block % SLAB_SIZE;
  return at + packedLengthAt(slab, at);
}

/** A packed response: memory of its own, or where it is in a slab (slab number × SLAB_SIZE + offset). */
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

  constructor(
    /** False: every response gets memory of its own. */
    private readonly slabbed: boolean,
  ) {}

  /**
   * Memory to pack a response of `size` bytes into; its Block is then
   * `last`. In a slab, `key` is kept after it (keyIn() and sameKey() read
   * it): the store then holds no string for it.
   */
  alloc(size: number, key: string): Buffer {
    const whole = size + KEY_LENGTH + 2 * key.length;
    if (!this.slabbed || whole > SLAB_MAX_BLOCK) {
      const own = Buffer.allocUnsafeSlow(size);
      this.last = own;
      return own;
    }
    if (this.current < 0 || this.used + whole > SLAB_SIZE) this.nextSlab();
    const id = this.current;
    const at = this.used;
    const slab = this.slabs[id]!;
    this.used += whole;
    this.live[id] = this.live[id]! + 1;
    this.last = id * SLAB_SIZE + at;
    slab.writeUInt32LE(key.length, at + size);
    slab.write(key, at + size + KEY_LENGTH, 'utf16le');
    return slab.subarray(at, at + size);
  }

  /** The key kept with a block in a slab. */
  keyIn(block: number): string {
    const slab = this.slabOf(block);
    const at = keyAt(slab, block);
    return slab.toString('utf16le', at + KEY_LENGTH, at + KEY_LENGTH + 2 * slab.readUInt32LE(at));
  }

  /** Whether the key kept with a block in a slab is `key` (read in place). */
  sameKey(block: number, key: string): boolean {
    const slab = this.slabOf(block);
    const at = keyAt(slab, block);
    if (slab.readUInt32LE(at) !== key.length) return false;
    for (let i = 0, b = at + KEY_LENGTH; i < key.length; i++, b += 2) if ((slab[b]! | (slab[b + 1]! << 8)) !== key.charCodeAt(i)) return false;
    return true;
  }

  private slabOf(block: number): Buffer {
    return this.slabs[Math.floor(block / SLAB_SIZE)]!;
  }

  /** The packed response's bytes (a view into its slab only for as long as it is kept). */
  view(block: Block): Buffer {
    if (typeof block !== 'number') return block;
    const slab = this.slabs[Math.floor(block / SLAB_SIZE)]!;
    const at = block % SLAB_SIZE;
    return slab.subarray(at, at + packedLengthAt(slab, at));
  }

  /** Bytes it has of its own (one in a slab counts with its slab). */
  ownBytes(block: Block): number {
    return typeof block === 'number' ? 0 : block.length;
  }

  /** The block is no longer kept. */
  free(block: Block): void {
    if (typeof block !== 'number') return;
    const id = Math.floor(block / SLAB_SIZE);
    const left = this.live[id]! - 1;
    this.live[id] = left;
    if (left === 0 && id !== this.current) this.emptied(id);
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
      this.slabs[id] = Buffer.allocUnsafeSlow(SLAB_SIZE);
    }
    this.bytes += SLAB_SIZE;
    this.current = id;
    this.used = 0;
    this.live[id] = 0;
    if (full >= 0 && this.live[full] === 0) this.emptied(full);
  }

  /** No kept response is in slab `id` any more: kept to be filled again, or let go. */
  private emptied(id: number): void {
    this.bytes -= SLAB_SIZE;
    if (this.spares.length < SPARE_SLABS) return void this.spares.push(id);
    this.slabs[id] = null;
    this.freeIds.push(id);
  }
}
