/**
 * How long to wait before replacing a worker that died: at once normally,
 * but after consecutive boot failures (a worker that could not import the
 * app, or died right after booting) 500 ms, doubling up to 30 s, so a broken
 * deploy does not become a respawn loop.
 */

const FIRST_MS = 500;
const MAX_MS = 30_000;

export class BootBackoff {
  private failures = 0;
  private lastFailureAt = 0;
  /** When the next replacement may start (0: not decided yet). */
  private retryAt = 0;

  failed(): void {
    this.failures++;
    this.lastFailureAt = performance.now();
  }

  /**
   * A worker finished a request. Only one started after the last failure
   * shows that the app boots again: workers that were serving all along
   * would otherwise reset the backoff on every request, and a broken app
   * would be retried every 500 ms for as long as traffic flows.
   */
  served(w: { readonly spawnedAt: number }): void {
    if (w.spawnedAt > this.lastFailureAt) this.failures = 0;
  }

  /** Whether missing workers may be replaced now; the first call after they went missing starts the wait. */
  due(now: number): boolean {
    if (this.retryAt === 0) this.retryAt = now + (this.failures === 0 ? 0 : Math.min(MAX_MS, FIRST_MS * 2 ** (this.failures - 1)));
    if (now < this.retryAt) return false;
    this.retryAt = 0;
    return true;
  }
}
