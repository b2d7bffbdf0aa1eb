/**
 * The pool's FIFO of requests waiting for a worker. An array with a moving
 * head (compacted now and then) so taking the oldest is O(1) under load.
 */
import type { Exchange } from './exchange.js';

export class RequestQueue {
  private items: Exchange[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The oldest waiting request, without taking it. */
  peek(): Exchange | undefined {
    return this.items[this.head];
  }

  push(x: Exchange): void {
    this.items.push(x);
  }

  /** Takes the oldest waiting request. */
  shift(): Exchange | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Exchange;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }

  /** Puts requests that never started back in front, in their order. */
  unshift(xs: Exchange[]): void {
    if (xs.length === 0) return;
    this.items = [...xs, ...this.items.slice(this.head)];
    this.head = 0;
  }

  /** Removes a request (its client went away); false if it was not waiting. */
  remove(x: Exchange): boolean {
    const i = this.items.indexOf(x, this.head);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  /** Empties the queue, oldest first. */
  takeAll(): Exchange[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return all;
  }
}
