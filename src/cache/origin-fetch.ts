/**
 * A fetch from the origin for a cached route's miss: what it is for, and
 * the hooks of its capture (capture-response.ts), in one object per fetch
 * rather than a closure for each hook and the values they share.
 */
import type { AccelRedirect } from '../http/accel-redirect.js';
import type { LeanRouteRequest } from '../http/handler.js';
import type { StoredResponse } from './cache-policy.js';
import type { CaptureHooks, Captured, HeaderMap } from './capture-response.js';

/** What the cached handler does at the origin's head and at its end (cached-handler.ts). */
export interface FetchSteps {
  fetchHead(f: OriginFetch, status: number, headers: HeaderMap, accelExpires: string | undefined): { hold: boolean; cacheStatus: string };
  fetchDone(f: OriginFetch, captured: Captured | null): void;
  fetchRerouted(f: OriginFetch, accel: AccelRedirect): void;
}

export class OriginFetch implements CaptureHooks {
  /** Holds the key's lock (releases it when done). */
  locked = false;
  /** The stored form of the origin's answer, made at its head when it may be stored. */
  storing: StoredResponse | null = null;

  constructor(
    private readonly steps: FetchSteps,
    readonly r: LeanRouteRequest,
    readonly key: string,
    /** The stored response being revalidated (a 304 refreshes it). */
    readonly revalidating: StoredResponse | null,
    /** A stale response that may answer if the origin fails. */
    readonly fallback: StoredResponse | null,
    /** Why it goes to the origin, for Cache-Status' fwd. */
    readonly fwd: string,
  ) {}

  head(status: number, headers: HeaderMap, accelExpires: string | undefined): { hold: boolean; cacheStatus: string } {
    return this.steps.fetchHead(this, status, headers, accelExpires);
  }

  done(captured: Captured | null): void {
    this.steps.fetchDone(this, captured);
  }

  rerouted(accel: AccelRedirect): void {
    this.steps.fetchRerouted(this, accel);
  }
}
