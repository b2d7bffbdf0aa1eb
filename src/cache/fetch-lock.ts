/**
 * Request coalescing (nginx's proxy_cache_lock, Varnish's waiting list): one
 * origin fetch per key at a time; requests for a key being fetched wait for
 * it, then look the store up again, or answer with a stale response when the
 * fetch failed. A waiter that waits longer than the lock timeout goes on by
 * itself, so a slow origin never holds a queue.
 *
 * With a shared store (Redis, memcached) the one fetch is across every
 * instance sharing it: the request that holds this process's lock also takes
 * the store's (CacheStore.lock, which expires after the lock timeout), or
 * polls until the instance that has it is done or the lock timeout passes.
 */
import type { CacheStore } from './cache-store.js';

/** How a wait for another request's fetch ended. */
export type WaitOutcome = 'done' | 'failed' | 'timeout';
/** How the wait for the shared store's lock ended. */
export type SharedOutcome = 'acquired' | 'done' | 'timeout';

/** How often a request waiting on another instance's fetch asks the store whether it is over. */
const POLL_MS = 20;

export class FetchLock {
  /**
   * Keys being fetched, with the requests waiting for each (null until one
   * waits: most fetches have none). A new Map each time it empties: each
   * miss adds a key and deletes it, and V8 links every table a Map remakes
   * to the one before, so once one table was promoted all later ones were
   * too (as in http/member-list.ts), and full collections ran every few
   * seconds under misses.
   */
  private waiting = new Map<string, Set<(outcome: WaitOutcome) => void> | null>();
  /** Keys whose lock in the shared store this process holds. */
  private readonly sharedHeld = new Set<string>();

  constructor(
    /** ms a request waits for another's fetch of the same key. */
    private readonly timeoutMs: number,
    private readonly store: CacheStore,
  ) {}

  /** Takes the key's lock in this process: true when this caller fetches (and must call release), false when one is under way. */
  acquire(key: string): boolean {
    if (this.waiting.has(key)) return false;
    this.waiting.set(key, null);
    return true;
  }

  /** Fetches are coalesced across the instances sharing the store too (acquireShared waits). */
  get shared(): boolean {
    return this.store.lock !== undefined && this.store.locked !== undefined && this.timeoutMs > 0;
  }

  /**
   * For the holder of the key's lock here: takes it in the shared store too
   * ('acquired': fetch), or waits until the instance that has it is done
   * ('done': look the store up) or the lock timeout passes. At once
   * 'acquired' when the store is not shared or coalescing is off. Returns
   * what stops the wait (`then` is then never called).
   */
  acquireShared(key: string, then: (outcome: SharedOutcome) => void): () => void {
    const store = this.store;
    if (!this.shared) {
      then('acquired');
      return () => {};
    }
    let stopped = false;
    const deadline = performance.now() + this.timeoutMs;
    void store.lock!(key, this.timeoutMs).then(async (got) => {
      if (got && stopped) return void store.unlock?.(key);
      if (got) {
        this.sharedHeld.add(key);
        return then('acquired');
      }
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        if (stopped) return;
        if (performance.now() >= deadline) return then('timeout');
        const locked = await store.locked!(key);
        if (stopped) return;
        if (!locked) return then('done');
      }
    });
    return () => {
      stopped = true;
    };
  }

  /**
   * Calls `then` once the key's fetch is over ('done', or 'failed' when the
   * origin failed), or the lock timeout passed. Returns what stops the wait
   * (`then` is then never called).
   */
  wait(key: string, then: (outcome: WaitOutcome) => void): () => void {
    let set = this.waiting.get(key);
    if (set === undefined) {
      then('done');
      return () => {};
    }
    if (set === null) this.waiting.set(key, (set = new Set()));
    const waiters = set;
    const timer = setTimeout(() => {
      waiters.delete(wake);
      then('timeout');
    }, this.timeoutMs);
    const wake = (outcome: WaitOutcome) => {
      clearTimeout(timer);
      then(outcome);
    };
    waiters.add(wake);
    return () => {
      clearTimeout(timer);
      waiters.delete(wake);
    };
  }

  /** The fetch of `key` is over (stored or not; `failed`: the origin failed): its waiters go on. */
  release(key: string, failed = false): void {
    const set = this.waiting.get(key);
    this.waiting.delete(key);
    if (this.waiting.size === 0) this.waiting = new Map();
    if (this.sharedHeld.delete(key)) void this.store.unlock?.(key);
    if (set !== undefined && set !== null) for (const wake of set) wake(failed ? 'failed' : 'done');
  }
}
