/**
 * Varnish's hit-for-miss: keys whose last response was not storable (or was
 * an X-Accel-Redirect) skip coalescing for a while, so that their requests
 * go to the origin side by side instead of waiting for each other.
 */

/** How long a key passes. */
const PASS_MS = 10_000;
/** Keys kept at most; more and they are all dropped. */
const MAX_PASS_KEYS = 10_000;

export class PassKeys {
  /** Until when (ms) each key passes. */
  private readonly until = new Map<string, number>();

  /** The key's last response was not storable. */
  add(key: string): void {
    if (this.until.size >= MAX_PASS_KEYS) this.until.clear();
    this.until.set(key, Date.now() + PASS_MS);
  }

  /** The key's last response was stored. */
  delete(key: string): void {
    this.until.delete(key);
  }

  passes(key: string): boolean {
    const until = this.until.get(key);
    return until !== undefined && until > Date.now();
  }
}
