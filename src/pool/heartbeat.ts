/**
 * An ASGI worker's event loop says it is free with a HEARTBEAT frame every
 * quarter of --timeout, a second at most (python/gatehouse_asgi.py's
 * BEAT_MAX_INTERVAL), and sends none with --timeout 0. Its silence is what
 * the scheduler and the watchdog go by: a loop that misses its beat is
 * blocked (sync code in an async app) and starts nothing it is sent.
 */
const BEAT_MAX_INTERVAL_MS = 1000;
/** How late a beat may come from a loop that is busy but not blocked. */
const LATE_GRACE_MS = 500;

/** The most two beats are apart, for --timeout `timeoutMs` (> 0). */
export function beatInterval(timeoutMs: number): number {
  return Math.min(timeoutMs / 4, BEAT_MAX_INTERVAL_MS);
}

/** Timer lateness allowed for in startedBy(). */
const TIMER_SLACK_MS = 20;

/**
 * The latest a request may have been sent for a worker whose last beat came
 * at `beatAt` to have started it. A beat falls due every interval, and the
 * loop sends it before it starts any request it reads after that
 * (gatehouse_asgi.py's send_beat()); so a request sent after a beat fell
 * due, to a loop that then sent none, was not started there.
 */
export function startedBy(beatAt: number, timeoutMs: number): number {
  return beatAt + beatInterval(timeoutMs) + TIMER_SLACK_MS;
}

/** Silence (ms) after which an ASGI worker is sent no more requests; Infinity with --timeout 0 (no beats). */
export function lateAfter(timeoutMs: number): number {
  return timeoutMs > 0 ? beatInterval(timeoutMs) + LATE_GRACE_MS : Infinity;
}
