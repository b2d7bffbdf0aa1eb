/**
 * A wait on another request's fetch of the same key (fetch-lock.ts), or on
 * memcached, as work under way for the waiting request's client (in-flight.ts).
 */
import { unwatchClient, watchClient, type InFlight } from '../http/in-flight.js';
import type { LeanRouteRequest } from '../http/handler.js';

/**
 * Runs `wait` (which returns what stops it) as the request's work under way
 * (in-flight.ts): a client that goes away before it calls back (a reset, or
 * a FIN as nginx sees it) stops it, `left` runs, and the access log says
 * 499.
 */
export function watchedWait<T>(r: LeanRouteRequest, wait: (then: (outcome: T) => void) => () => void, then: (outcome: T) => void, left?: () => void): void {
  let waiting = true;
  const work: InFlight = {
    clientGone: () => {
      if (!waiting) return;
      waiting = false;
      stop();
      unwatchClient(r.req, work);
      left?.();
      r.log(499, 0);
    },
    clientResponse: r.res,
  };
  // Before the wait starts: the front calls clientGone() a microtask later at the soonest.
  watchClient(r.req, r.res, work);
  const stop = wait((outcome) => {
    waiting = false;
    unwatchClient(r.req, work);
    then(outcome);
  });
}
