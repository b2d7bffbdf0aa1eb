/**
 * The memory store's keys in use order, held in typed arrays rather than a
 * Map: a store full of misses stores and evicts a key per request, and a
 * Map's key strings and the tables it remakes as keys come and go all
 * outlive the young generation, so the collector's full marking ran every
 * few seconds and held the requests under way for its length. Here a key is
 * a node (a number): its hash, a value, and its neighbours in use order; a
 * table finds the node by hash (open addressing), and the store compares
 * the key itself (`sameKey`), wherever it keeps it. Nothing here allocates
 * after the arrays have grown to the store's number of keys.
 */

/** No node (an end of the use order, an empty place, no free node). */
const NO_NODE = -1;
const FIRST_NODES = 64;

/** The key's hash (FNV-1a over its UTF-16 units). */
export function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h | 0;
}

export class KeyIndex {
  /** Keys held. */
  size = 0;
  /** The least recently used node, and the most (NO_NODE: none). */
  private head = NO_NODE;
  private tail = NO_NODE;
  private hashes!: Int32Array;
  private values!: Float64Array;
  private prev!: Int32Array;
  /** In use order; for a free node, the next free one. */
  private next!: Int32Array;
  private free = NO_NODE;
  /** Nodes ever handed out (those past it were never used). */
  private made = 0;
  /** Node + 1 at each place; 0: empty. At most half full. */
  private table!: Int32Array;

  constructor(
    /** Whether `node` is `key`'s (their hashes are the same). */
    private readonly sameKey: (node: number, key: string) => boolean,
  ) {
    this.clear();
  }

  /** `key`'s node, or -1. */
  find(key: string, hash = keyHash(key)): number {
    const mask = this.table.length - 1;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const n = this.table[at]! - 1;
      if (n === NO_NODE) return NO_NODE;
      if (this.hashes[n] === hash && this.sameKey(n, key)) return n;
    }
  }

  /** A node for a key not held, the most recently used. */
  add(hash: number, value: number): number {
    if (2 * (this.size + 1) > this.table.length) this.grow();
    let n = this.free;
    if (n !== NO_NODE) this.free = this.next[n]!;
    else n = this.made++;
    this.hashes[n] = hash;
    this.values[n] = value;
    this.size++;
    this.place(n);
    this.link(n);
    return n;
  }

  value(node: number): number {
    return this.values[node]!;
  }

  setValue(node: number, value: number): void {
    this.values[node] = value;
  }

  /** The node is used: the most recently used now. */
  use(node: number): void {
    if (node === this.tail) return;
    this.unlink(node);
    this.link(node);
  }

  /** The least recently used node, or -1. */
  get oldest(): number {
    return this.head;
  }

  /** The node's key is no longer held (the node may be handed out again). */
  remove(node: number): void {
    this.unlink(node);
    this.unplace(node);
    this.next[node] = this.free;
    this.free = node;
    this.size--;
  }

  /** Forgets every key, the arrays back at their first size (a flush gives back what they grew to). */
  clear(): void {
    this.hashes = new Int32Array(FIRST_NODES);
    this.values = new Float64Array(FIRST_NODES);
    this.prev = new Int32Array(FIRST_NODES);
    this.next = new Int32Array(FIRST_NODES);
    this.table = new Int32Array(2 * FIRST_NODES);
    this.head = this.tail = this.free = NO_NODE;
    this.made = this.size = 0;
  }

  /** Keys the arrays have room for now. */
  get room(): number {
    return this.hashes.length;
  }

  private link(n: number): void {
    this.prev[n] = this.tail;
    this.next[n] = NO_NODE;
    if (this.tail === NO_NODE) this.head = n;
    else this.next[this.tail] = n;
    this.tail = n;
  }

  private unlink(n: number): void {
    const p = this.prev[n]!;
    const x = this.next[n]!;
    if (p === NO_NODE) this.head = x;
    else this.next[p] = x;
    if (x === NO_NODE) this.tail = p;
    else this.prev[x] = p;
  }

  private place(n: number): void {
    const mask = this.table.length - 1;
    let at = this.hashes[n]! & mask;
    while (this.table[at] !== 0) at = (at + 1) & mask;
    this.table[at] = n + 1;
  }

  /** Takes the node out of the table, moving back those after it that would no longer be found (linear probing's deletion). */
  private unplace(n: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let gap = this.hashes[n]! & mask;
    while (table[gap] !== n + 1) gap = (gap + 1) & mask;
    for (let at = (gap + 1) & mask; table[at] !== 0; at = (at + 1) & mask) {
      const home = this.hashes[table[at]! - 1]! & mask;
      // Stays when its home is cyclically within (gap, at].
      if (gap <= at ? home > gap && home <= at : home > gap || home <= at) continue;
      table[gap] = table[at]!;
      gap = at;
    }
    table[gap] = 0;
  }

  /** Twice the nodes and table (nodes keep their numbers). */
  private grow(): void {
    const nodes = 2 * this.hashes.length;
    const widen = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(nodes);
      b.set(a);
      return b;
    };
    this.hashes = widen(this.hashes, (n) => new Int32Array(n));
    this.values = widen(this.values, (n) => new Float64Array(n));
    this.prev = widen(this.prev, (n) => new Int32Array(n));
    this.next = widen(this.next, (n) => new Int32Array(n));
    this.table = new Int32Array(2 * nodes);
    // Every node handed out and not free is in the use list.
    for (let n = this.head; n !== NO_NODE; n = this.next[n]!) this.place(n);
  }
}
