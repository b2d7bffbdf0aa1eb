/**
 * The timeouts of the upstream exchanges under way, checked by one timer
 * every TICK_MS (nginx, too, reads its clock once per turn of its event
 * loop): setting or moving a deadline, which an exchange does a few times
 * per request as its phase changes, is a field written rather than a
 * timer made and cancelled. A deadline is never early and at most two ticks
 * late. The timer runs only while there are deadlines.
 *
 * The exchanges with a deadline are a MemberList, not a Map: one added and
 * removed per request would chain V8's outgrown tables (member-list.ts).
 */
import { MemberList } from '../http/member-list.js';

const TICK_MS = 100;
const kDue = Symbol('gatehouse.deadline');

export interface Expiring {
  /** Its deadline passed. */
  expire(): void;
}

type Timed = Expiring & { [kDue]?: number };

export class Deadlines {
  private readonly due = new MemberList<Timed>();
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
    (item as Timed)[kDue] = this.now + TICK_MS + ms;
    this.due.add(item);
  }

  private tick(): void {
    this.now = performance.now();
    for (const item of this.due) {
      if (item[kDue]! > this.now) continue;
      this.due.delete(item);
      item.expire();
    }
    if (this.due.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
