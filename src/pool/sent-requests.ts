/**
 * A worker's requests in the order they were sent, found by id. Adding is
 * O(1) (amortized), finding and removing one O(log n): an ASGI worker may
 * hold thousands of open WebSockets, and they close in any order, where an
 * array's indexOf and splice made closing them all quadratic.
 *
 * A worker's ids only grow (its pool hands them out in turn, wrapping past
 * 2^32 - 1), so the ids in `ids` are sorted, counted from the oldest's:
 * a binary search finds one. The oldest is checked first, which is the one
 * a sync worker answers. No table of ids is kept beside the array: an
 * object keyed by id goes to dictionary mode and each removal is a slow
 * delete, and V8 links each Map table it outgrows to its successor, so one
 * promoted dead table kept every later table and the requests in them alive
 * until the next full GC.
 *
 * A removed request leaves a hole in `items` (its id stays, for the
 * search), skipped by first() and the iteration; once holes outnumber
 * requests the arrays are rebuilt without them.
 */
export class SentRequests<T> implements Iterable<T> {
  private items: (T | undefined)[] = [];
  /** The id of each slot of `items`, holes included. */
  private ids: number[] = [];
  /** Below it every slot of `items` is a hole. */
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** `id` comes after every id added before (modulo 2^32). */
  add(id: number, x: T): void {
    this.items.push(x);
    this.ids.push(id);
    this.count++;
  }

  get(id: number): T | undefined {
    const i = this.slot(id);
    return i < 0 ? undefined : this.items[i];
  }

  /** The oldest request, undefined when there is none. */
  first(): T | undefined {
    this.skipHoles();
    return this.items[this.head];
  }

  /** Removes the request with this id; whether it was the oldest, null when there was none. */
  delete(id: number): boolean | null {
    const i = this.slot(id);
    if (i < 0 || this.items[i] === undefined) return null;
    this.items[i] = undefined;
    this.count--;
    this.skipHoles();
    const oldest = i < this.head;
    if (this.items.length - this.count > Math.max(16, this.count)) this.compact();
    return oldest;
  }

  /** Takes every request, oldest first, and forgets them. */
  takeAll(): T[] {
    const all = [...this];
    this.items = [];
    this.ids = [];
    this.head = 0;
    this.count = 0;
    return all;
  }

  /** Over a copy: requests may leave while it runs. */
  [Symbol.iterator](): Iterator<T> {
    const live: T[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const x = this.items[i];
      if (x !== undefined) live.push(x);
    }
    return live[Symbol.iterator]();
  }

  /** Where `id` is in `items` (a hole, maybe), -1 when it is not there. */
  private slot(id: number): number {
    const ids = this.ids;
    let lo = this.head;
    let hi = ids.length;
    if (lo >= hi) return -1;
    const base = ids[lo]!;
    if (id === base) return lo;
    // Counted from the oldest, so that the order holds across the wrap.
    const key = (id - base) >>> 0;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = (ids[mid]! - base) >>> 0;
      if (k === key) return mid;
      if (k < key) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  private skipHoles(): void {
    while (this.head < this.items.length && this.items[this.head] === undefined) this.head++;
  }

  private compact(): void {
    const items: T[] = [];
    const ids: number[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const x = this.items[i];
      if (x === undefined) continue;
      items.push(x);
      ids.push(this.ids[i]!);
    }
    this.items = items;
    this.ids = ids;
    this.head = 0;
  }
}
