/**
 * The front gives V8's spare heap back once it has gone quiet after a burst.
 *
 * V8 grows its heap for a burst of requests or connections (the young
 * generation up to its cap, old-space pages) and keeps it until a later
 * collection that finds little being allocated: a front left holding
 * thousands of idle connections kept for minutes memory it no longer used,
 * and one left fully idle kept it for good. Every CHECK_MS this looks at the
 * CPU time the process used since the last look; when it stayed under
 * QUIET_SHARE of a core and V8's old space (what a burst leaves behind; the
 * young generation alone regrows with any trickle of work, such as a round
 * of WebSocket pings) has grown by GROWTH_BYTES since the last trim (or its
 * lowest since), it asks
 * V8 for the collection a low-memory notification makes
 * (the young generation shrunk, old space compacted, free pages returned):
 * Node reaches it only through the inspector (HeapProfiler.collectGarbage,
 * in-process, no port). Busy, the front never trims; a request arriving
 * during a trim waits for it, as for any full collection.
 */
import { createRequire } from 'node:module';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import type { Logger } from './log/logger.js';

const CHECK_MS = 1000;
/** A front using less CPU than this share of one core is quiet. */
const QUIET_SHARE = 0.05;
const GROWTH_BYTES = 4 * 1024 * 1024;

type InspectorSession = { connect(): void; post(method: string, cb: () => void): void; disconnect(): void };

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
const oldSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.physical_space_size ?? 0;

/** Starts the watch (an unref'd timer); without an inspector in this Node build it does nothing. */
export function trimHeapWhenIdle(logger: Logger): void {
  if (!process.features.inspector) return;
  let trimmedAt = oldSpace();
  let cpu = process.cpuUsage();
  let busy = false;
  const timer = setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const quiet = (used.user + used.system) / 1000 < CHECK_MS * QUIET_SHARE;
    const old = oldSpace();
    trimmedAt = Math.min(trimmedAt, old); // V8 gave some back itself: growth counts from there
    if (busy || !quiet || old - trimmedAt < GROWTH_BYTES) return;
    const size = getHeapStatistics().total_physical_size;
    busy = true;
    const { Session } = createRequire(import.meta.url)('node:inspector') as { Session: new () => InspectorSession };
    const session = new Session();
    session.connect();
    session.post('HeapProfiler.collectGarbage', () => {
      // Not from within the session's own callback: that hangs the process.
      setImmediate(() => session.disconnect());
      trimmedAt = oldSpace();
      cpu = process.cpuUsage(); // the trim's own CPU is no sign of load
      busy = false;
      logger.debug(`quiet: V8's heap trimmed from ${mb(size)} to ${mb(getHeapStatistics().total_physical_size)}`);
    });
  }, CHECK_MS);
  timer.unref();
}
