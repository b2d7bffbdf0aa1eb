/**
 * Request coalescing (nginx's proxy_cache_lock, Varnish's waiting list): one
 * origin fetch per key at a time; requests for a key being fetched wait for
 * it, then look the store up again. A waiter that waits longer than the lock
 * timeout goes to the origin itself, so a slow origin never holds a queue.
 */
export class FetchLock {
  /** Keys being fetched, with the requests waiting for each. */
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(
    /** ms a request waits for another's fetch of the same key. */
    private readonly timeoutMs: number,
  ) {}

  /** Takes the key's lock: true when this caller fetches (and must call release), false when one is under way. */
  acquire(key: string): boolean {
    if (this.waiting.has(key)) return false;
    this.waiting.set(key, new Set());
    return true;
  }

  /** Whether a fetch of `key` is under way. */
  held(key: string): boolean {
    return this.waiting.has(key);
  }

  /** Calls `then` once the key's fetch is over, or the lock timeout passed (`timedOut`). */
  wait(key: string, then: (timedOut: boolean) => void): void {
    const set = this.waiting.get(key);
    if (set === undefined) return then(false);
    const timer = setTimeout(() => {
      set.delete(wake);
      then(true);
    }, this.timeoutMs);
    const wake = () => {
      clearTimeout(timer);
      then(false);
    };
    set.add(wake);
  }

  /** The fetch of `key` is over (stored or not): its waiters go on. */
  release(key: string): void {
    const set = this.waiting.get(key);
    this.waiting.delete(key);
    if (set !== undefined) for (const wake of set) wake();
  }
}
