/**
 * The timeouts of the upstream exchanges under way, checked by one timer
 * every TICK_MS (nginx, too, reads its clock once per turn of its event
 * loop): setting or moving a deadline, which an exchange does a few times
 * per request as its phase changes, is a field written rather than a
 * timer made and cancelled. A deadline is never early and at most two ticks
 * late. The timer runs only while there are deadlines.
 *
 * The exchanges with a deadline are an array in which each knows its place
 * (fields of its own, declared by its class so its shape never changes),
 * not a Map or Set: one added and removed per request would chain V8's
 * outgrown tables (see src/http/member-list.ts).
 */

const TICK_MS = 100;

export interface Expiring {
  /** Its deadline passed. */
  expire(): void;
  /** Kept by Deadlines: where it is in the list, -1 when it has no deadline (its initial value). */
  deadlineSlot: number;
  /** Kept by Deadlines: when it expires (performance.now() time). */
  deadlineDue: number;
}

export class Deadlines {
  private readonly due: Expiring[] = [];
  /** performance.now() at the last tick (or when the timer started). */
  private now = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `item` expires `ms` from now, replacing its previous deadline; 0: it has none. */
  set(item: Expiring, ms: number): void {
    if (ms === 0) return this.remove(item);
    if (this.timer === undefined) {
      this.now = performance.now();
      // Unreferenced: an exchange's connections keep the process alive, its deadline need not.
      this.timer = setInterval(() => this.tick(), TICK_MS).unref();
    }
    // `now` may be a tick old: one tick more keeps the deadline from coming early.
    item.deadlineDue = this.now + TICK_MS + ms;
    if (item.deadlineSlot >= 0) return;
    item.deadlineSlot = this.due.length;
    this.due.push(item);
  }

  /** The last item takes the place of the one removed. */
  private remove(item: Expiring): void {
    const at = item.deadlineSlot;
    if (at < 0) return;
    item.deadlineSlot = -1;
    const last = this.due.pop()!;
    if (last === item) return;
    this.due[at] = last;
    last.deadlineSlot = at;
  }

  private tick(): void {
    this.now = performance.now();
    // Over a copy: an expiring exchange may set or remove deadlines.
    for (const item of this.due.slice()) {
      if (item.deadlineSlot < 0 || item.deadlineDue > this.now) continue;
      this.remove(item);
      item.expire();
    }
    if (this.due.length > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
