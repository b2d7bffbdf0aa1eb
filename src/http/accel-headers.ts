/**
 * nginx's X-Accel-* response headers, as every action that relays an app's
 * or a back end's answer (app, proxy, fastcgi, scgi, uwsgi) reads them. As
 * nginx (proxy_hide_header's default), none reaches the client:
 *
 * - X-Accel-Redirect: the request is routed again (accel-redirect.ts).
 * - X-Accel-Buffering: `no` (any case): this response is not held for a
 *   slow client (no temp file: the app or back end waits for the client);
 *   `yes` holds it even where the route does not buffer.
 * - X-Accel-Expires: seconds, or `@` and a Unix time; `0`: not stored. A
 *   cached route's freshness for it, over Cache-Control and Expires
 *   (src/cache/accel-expires.ts); the client sees the app's Cache-Control.
 * - X-Accel-Limit-Rate, X-Accel-Charset: hidden, not acted on.
 *
 * Ordinary heads cost one length comparison per name here (isAccelName);
 * only a head that has one of these is rewritten (takeAccel). A request
 * from a uwsgi, FastCGI or SCGI listener gets them as sent: the web server
 * in front acts on them.
 */
import { accelRedirect, ACCEL_REDIRECT, type AccelRedirect } from './accel-redirect.js';
import type { HttpResponse, Reroute } from './handler.js';
import { isHeaderName } from './header-name.js';

const PREFIX = 'x-accel-';

/** `name` starts with `X-Accel-` in any case: its length and first letter first, so that most names cost no more. */
export function isAccelName(name: string): boolean {
  if (name.length <= PREFIX.length || (name.charCodeAt(0) | 0x20) !== 0x78) return false;
  for (let i = 1; i < PREFIX.length; i++) if ((name.charCodeAt(i) | 0x20) !== PREFIX.charCodeAt(i)) return false;
  return true;
}

/** isAccelName() of the name from `start` to `end` in `bytes` (latin-1). */
export function isAccelNameAt(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start <= PREFIX.length || (bytes[start]! | 0x20) !== 0x78) return false;
  for (let i = 1; i < PREFIX.length; i++) if ((bytes[start + i]! | 0x20) !== PREFIX.charCodeAt(i)) return false;
  return true;
}

/** Where the first X-Accel-* name is in `flat` (`[name, value, ...]` from `from`), -1 when it has none. */
function accelAt(flat: readonly string[], from: number): number {
  for (let i = from; i < flat.length; i += 2) if (isAccelName(flat[i]!)) return i;
  return -1;
}

/** What a head's X-Accel-* headers ask of the front. */
export interface AccelHeaders {
  /** X-Accel-Redirect; null without one. */
  redirect: AccelRedirect | null;
  /** X-Accel-Buffering: false for `no`, true for `yes`, null when absent or neither. */
  buffering: boolean | null;
  /** X-Accel-Expires as sent; null without one. */
  expires: string | null;
}

/**
 * The X-Accel-* headers of `flat` (`[name, value, ...]` from `from`; `at`:
 * the first of them, accelAt()), taken out of it (in place) when `hide`.
 */
function takeAccel(flat: string[], from: number, at: number, hide: boolean): AccelHeaders {
  const found: AccelHeaders = { redirect: null, buffering: null, expires: null };
  // The redirect's kept headers are none of these: read before any is taken out.
  const redirectAt = indexOfName(flat, at, ACCEL_REDIRECT);
  if (redirectAt >= 0) found.redirect = accelRedirect(flat, from, redirectAt);
  let kept = at;
  for (let i = at; i + 1 < flat.length; i += 2) {
    const name = flat[i]!;
    if (!isAccelName(name)) {
      if (hide) {
        flat[kept] = name;
        flat[kept + 1] = flat[i + 1]!;
      }
      kept += 2;
      continue;
    }
    const value = flat[i + 1]!.trim();
    if (isHeaderName(name, 'x-accel-buffering')) {
      const lower = value.toLowerCase();
      if (lower === 'no' || lower === 'yes') found.buffering = lower === 'yes';
    } else if (isHeaderName(name, 'x-accel-expires')) found.expires = value;
  }
  if (hide) flat.length = kept;
  return found;
}

/**
 * What every action that relays a head (app, proxy, fastcgi, scgi, uwsgi)
 * does with its X-Accel-* headers: null without one; else taken off `flat`
 * unless a web server in front reads them (`reroute` null, whose redirect
 * is then null too), X-Accel-Expires handed to the cache, and the rest for
 * the caller: the buffering to apply, the redirect to follow.
 */
export function readAccel(flat: string[], from: number, res: HttpResponse, reroute: Reroute | null): AccelHeaders | null {
  const at = accelAt(flat, from);
  if (at < 0) return null;
  const accel = takeAccel(flat, from, at, reroute !== null);
  if (accel.expires !== null) res.cacheExpires?.(accel.expires);
  if (reroute === null) accel.redirect = null;
  return accel;
}

/** Where the name `lower` (any case) is in `flat` from `from`, -1 when it is not. */
function indexOfName(flat: readonly string[], from: number, lower: string): number {
  for (let i = from; i < flat.length; i += 2) if (isHeaderName(flat[i]!, lower)) return i;
  return -1;
}
