/**
 * The timeouts of the upstream exchanges under way, checked by one timer
 * every TICK_MS (nginx, too, reads its clock once per turn of its event
 * loop): setting or moving a deadline, which an exchange does a few times
 * per request as its phase changes, is a map entry written rather than a
 * timer made and cancelled. A deadline is never early and at most two ticks
 * late. The timer runs only while there are deadlines.
 */
const TICK_MS = 100;

export interface Expiring {
  /** Its deadline passed. */
  expire(): void;
}

export class Deadlines {
  private readonly due = new Map<Expiring, number>();
  /** performance.now() at the last tick (or when the timer started). */
  private now = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `item` expires `ms` from now, replacing its previous deadline; 0: it has none. */
  set(item: Expiring, ms: number): void {
    if (ms === 0) {
      this.due.delete(item);
      return;
    }
    if (this.timer === undefined) {
      this.now = performance.now();
      // Unreferenced: an exchange's connections keep the process alive, its deadline need not.
      this.timer = setInterval(() => this.tick(), TICK_MS).unref();
    }
    // `now` may be a tick old: one tick more keeps the deadline from coming early.
    this.due.set(item, this.now + TICK_MS + ms);
  }

  private tick(): void {
    this.now = performance.now();
    for (const [item, at] of this.due) {
      if (at > this.now) continue;
      this.due.delete(item);
      item.expire();
    }
    if (this.due.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
