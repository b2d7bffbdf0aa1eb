/**
 * A front's open connections (or sockets): an array in which each member
 * knows its place, so that adding and removing one touch no hash table.
 *
 * Not a Set: V8 links each Set table it outgrows to its successor, so with
 * an add and a delete per connection, one dead table promoted to the old
 * generation keeps every later table, and the connections in them, alive
 * until the next full GC.
 */
export class MemberList<T extends object> implements Iterable<T> {
  private readonly items: T[] = [];

  constructor(
    /**
     * Where each member is in `items`: a property of the member, one symbol
     * per list. A class whose instances are members may declare it (given
     * here) among its fields: it then takes no out-of-object slot.
     */
    private readonly at: symbol = Symbol('gatehouse.memberAt'),
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** Adds `x` unless it is a member already. */
  add(x: T): void {
    const at = (x as Record<symbol, number | undefined>)[this.at];
    if (at !== undefined && this.items[at] === x) return;
    (x as Record<symbol, number>)[this.at] = this.items.length;
    this.items.push(x);
  }

  /** Removes `x` (the last member takes its place); false if it was not a member. */
  delete(x: T): boolean {
    const member = x as Record<symbol, number | undefined>;
    const at = member[this.at];
    if (at === undefined || this.items[at] !== x) return false;
    const last = this.items.pop()!;
    if (last !== x) {
      this.items[at] = last;
      (last as Record<symbol, number>)[this.at] = at;
    }
    member[this.at] = undefined;
    return true;
  }

  /** Over a copy: members may leave while it runs (closing a connection removes it). */
  [Symbol.iterator](): Iterator<T> {
    return this.items.slice()[Symbol.iterator]();
  }
}
