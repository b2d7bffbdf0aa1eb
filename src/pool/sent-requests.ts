/**
 * A worker's requests in the order they were sent, found by id. Adding,
 * finding and removing one cost O(1) (amortized): an ASGI worker may hold
 * thousands of open WebSockets, and they close in any order, where an
 * array's indexOf and splice made closing them all quadratic.
 *
 * A removed request leaves a hole in the array, skipped by first() and the
 * iteration; once holes outnumber requests the array is rebuilt without
 * them. Nothing is added to the requests themselves: the index of each is
 * kept by its id, so the hot path's exchanges keep their shapes.
 */
export class SentRequests<T> implements Iterable<T> {
  private items: (T | undefined)[] = [];
  /** The id of each request in `items`. */
  private ids: number[] = [];
  /** Below it every slot of `items` is a hole. */
  private head = 0;
  /**
   * Where each id's request is in `items`. A plain object, not a Map: V8
   * links each Map table it outgrows to its successor, so one promoted dead
   * table kept every later table and the requests in them alive until the
   * next full GC.
   */
  private at: Record<number, number | undefined> = {};
  private count = 0;

  get length(): number {
    return this.count;
  }

  add(id: number, x: T): void {
    this.at[id] = this.items.length;
    this.items.push(x);
    this.ids.push(id);
    this.count++;
  }

  get(id: number): T | undefined {
    const i = this.at[id];
    return i === undefined ? undefined : this.items[i];
  }

  /** The oldest request, undefined when there is none. */
  first(): T | undefined {
    this.skipHoles();
    return this.items[this.head];
  }

  /** Removes the request with this id; whether it was the oldest, null when there was none. */
  delete(id: number): boolean | null {
    const i = this.at[id];
    if (i === undefined) return null;
    delete this.at[id];
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
    this.at = {};
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

  private skipHoles(): void {
    while (this.head < this.items.length && this.items[this.head] === undefined) this.head++;
  }

  private compact(): void {
    const items: T[] = [];
    const ids: number[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const x = this.items[i];
      if (x === undefined) continue;
      const id = this.ids[i]!;
      this.at[id] = items.length;
      items.push(x);
      ids.push(id);
    }
    this.items = items;
    this.ids = ids;
    this.head = 0;
  }
}
