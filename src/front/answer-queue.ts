/**
 * A connection's requests being answered, in order (fast-connection.ts);
 * the first owns the socket. The first is held alone and a list is made
 * only when a client pipelines: an array emptied after each response (so
 * that an idle connection, and they are many, holds no storage) would
 * allocate its storage again for each request.
 */
export class AnswerQueue<T> {
  first: T | null = null;
  private later: T[] | null = null;

  get length(): number {
    return this.first === null ? 0 : 1 + (this.later === null ? 0 : this.later.length);
  }

  push(x: T): void {
    if (this.first === null) this.first = x;
    else (this.later ??= []).push(x);
  }

  remove(x: T): void {
    if (x === this.first) this.first = this.later === null ? null : this.later.shift()!;
    else if (this.later !== null) {
      const at = this.later.indexOf(x);
      if (at >= 0) this.later.splice(at, 1);
    }
    if (this.later?.length === 0) this.later = null;
  }

  /** All of them, in order (a list of their own). */
  all(): T[] {
    if (this.first === null) return [];
    return this.later === null ? [this.first] : [this.first, ...this.later];
  }
}
