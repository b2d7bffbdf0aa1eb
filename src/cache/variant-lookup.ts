/**
 * Which of a key's stored variants answers a request, and how (the
 * freshness rules are cache-policy.ts'): the lookup, the stale fallback for
 * a failing origin, and the reason Cache-Status gives for going forward.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { evaluate, isStale, variantOf, varyOf, type StoredResponse, type Verdict } from './cache-policy.js';

/**
 * Cache-Status' fwd for a request the store could not answer (RFC 9211
 * §2.2.1): `request` when a fresh response for it was stored but the
 * request's own directives (no-cache, max-age=0, min-fresh…) kept it from
 * answering, `stale` when the stored one was stale.
 */
export function forwardReason(variants: readonly StoredResponse[], h: IncomingHttpHeaders): string {
  if (variants.length === 0) return 'uri-miss';
  let stale = false;
  for (const v of variants) {
    if (v.variant !== variantOf(varyOf(v), h)) continue;
    if (!isStale(v)) return 'request';
    stale = true;
  }
  return stale ? 'stale' : 'vary-miss';
}

/** The stored variant for this request and how it may answer, or null. */
export function lookup(variants: readonly StoredResponse[], key: string, h: IncomingHttpHeaders): { stored: StoredResponse; verdict: Verdict } | null {
  let best: { stored: StoredResponse; verdict: Verdict } | null = null;
  for (const stored of variants) {
    const verdict = evaluate(stored, key, h);
    if (verdict.kind === 'fresh' || verdict.kind === 'stale-while-revalidate') return { stored, verdict };
    if (verdict.kind === 'revalidate' && best === null) best = { stored, verdict };
  }
  return best;
}

/** A stored variant of this request that may still answer while the origin fails. */
export function fallback(variants: readonly StoredResponse[], h: IncomingHttpHeaders): StoredResponse | null {
  if (variants.length === 0) return null;
  const now = Date.now();
  for (const stored of variants) {
    if (stored.errorUntil > now && stored.variant === variantOf(varyOf(stored), h)) return stored;
  }
  return null;
}
