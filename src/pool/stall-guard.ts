/**
 * For a periodic check that judges peers by what they sent in time (a
 * worker's heartbeat or answer, a WebSocket client's pong): a check that
 * comes long after the one before finds this process itself held up (a
 * stalled machine, a stopped process, a long pause), and what the peers sent
 * meanwhile still waits unread in its sockets. Such a check judges nobody;
 * the next, after the event loop has read them, does. Never twice in a row,
 * so a process that is always that late still judges.
 */
export class StallGuard {
  private checkedAt = performance.now();
  private heldBefore = false;

  /** `heldMs`: a gap between checks past which this process counts as held up. */
  constructor(private readonly heldMs: number) {}

  /** Whether the check at `now` is to judge nobody. */
  held(now: number): boolean {
    const held = now - this.checkedAt > this.heldMs && !this.heldBefore;
    this.checkedAt = now;
    this.heldBefore = held;
    return held;
  }
}
