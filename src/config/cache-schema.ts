/**
 * The cache's settings: the top-level `[cache]` table (or `--cache SIZE`),
 * which turns the memory cache on for every app route, and a route's `cache`
 * (`false` to leave it out, `true` or a table to cache it, with its own
 * rules). A route's keys given at the top level are every cached route's
 * defaults. See src/cache/.
 */
import { z } from 'zod';
import { DEFAULT_KEY, keyTemplateProblem } from '../cache/cache-key.js';
import { PeerList } from '../http/peer-list.js';
import { headerName, seconds, size, trustedPeer } from './setting-types.js';
import type { CacheRouteSettings } from '../cache/cached-handler.js';
import type { CacheTierSettings } from '../cache/cache-tier.js';

/** Who may send PURGE to a cached route by default: loopback only. */
const DEFAULT_PURGE_ALLOW = ['127.0.0.1', '::1'];

const lowerHeaderName = headerName.transform((h) => h.toLowerCase());

/** The rules a route may set, each optional (the top level's, then the defaults, apply). */
function ruleFields() {
  return {
    /** The cache key: a template of $scheme, $host, $uri, $args, $request_uri, $cookie_NAME. Default `$scheme://$host$request_uri`. */
    key: z
      .string()
      .superRefine((t, ctx) => {
        const problem = keyTemplateProblem(t);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    /** Requests carrying one of these cookies go to the app and are not stored (e.g. a session cookie). */
    bypass_cookies: z.array(z.string().min(1)).optional(),
    /** Requests carrying one of these headers go to the app and are not stored (Authorization always does). */
    bypass_headers: z.array(lowerHeaderName).optional(),
    /** Seconds of freshness for a storable response that states none (nginx's proxy_cache_valid). Default 0: the RFC's rules. */
    default_ttl: seconds.optional(),
    /** Seconds a stale response is served while it is refreshed in the background, when the response gives no stale-while-revalidate. */
    stale_while_revalidate: seconds.optional(),
    /** Seconds a stale response is served when the app fails, when the response gives no stale-if-error. */
    stale_if_error: seconds.optional(),
    /** Seconds past staleness a stored response may still answer when the app fails or times out (Varnish's grace). Default 10. */
    grace: seconds.optional(),
    /** Store responses that set cookies (by default they are passed on, never stored). */
    store_set_cookie: z.boolean().optional(),
    /** Store responses marked `private` (by default never: this is a shared cache). */
    store_private: z.boolean().optional(),
    /** Addresses (IPs, CIDRs, unix, *) allowed to send PURGE. Default: loopback. */
    purge_allow: z.array(trustedPeer).optional(),
  };
}

/** Top-level `cache`: a size (the memory it may use), or a table. */
export function cacheSchema() {
  const table = z
    .object({
      /** Memory for stored responses (least recently used dropped first). Default 64m. */
      size: size.optional(),
      /** Larger responses are passed on, never stored. Default 8m. */
      max_object_size: size.optional(),
      /** Seconds a request waits for another request's fetch of the same key (on any instance sharing the store) before answering with a stale response within grace, or else asking the app itself. Default 5. */
      lock_timeout: seconds.optional(),
      ...ruleFields(),
    })
    .strict();
  return z.union([size.transform((bytes) => ({ size: bytes })), table], { error: 'must be a size such as 256m, or a table of cache settings' });
}

/** `--cache-store`: a shared store instead of this process's memory. */
export const cacheStoreSchema = z.string().superRefine((text, ctx) => {
  const problem = storeProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

function storeProblem(text: string): string | undefined {
  const hint = 'must be memcached://HOST:PORT, redis://HOST:PORT or redis://HOST:PORT/DB';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return hint;
  }
  const path = url.protocol === 'redis:' ? /^(\/\d{0,2})?$/ : /^\/?$/;
  const known = url.protocol === 'redis:' || url.protocol === 'memcached:';
  if (!known || url.hostname === '' || !path.test(url.pathname) || url.search !== '' || url.username !== '') return hint;
  return undefined;
}

/** A route's `cache`: false leaves the route out of the cache, true or a table puts it in. */
export function routeCacheSchema() {
  return z.union([z.boolean(), z.object(ruleFields()).strict()], { error: 'must be true, false or a table of cache settings' });
}

export type CacheConfig = z.output<ReturnType<typeof cacheSchema>>;
/** The top-level keys the cache reads. */
export interface TopSettings {
  cache?: CacheConfig | undefined;
  cache_store?: string | undefined;
}
export type RouteCacheConfig = z.output<ReturnType<typeof routeCacheSchema>>;
type Rules = z.output<z.ZodObject<ReturnType<typeof ruleFields>>>;

export const CACHE_DEFAULTS = {
  size: 64 * 1024 ** 2,
  max_object_size: 8 * 1024 ** 2,
  lock_timeout: 5,
  key: DEFAULT_KEY,
  bypass_cookies: [] as string[],
  bypass_headers: [] as string[],
  default_ttl: 0,
  stale_while_revalidate: 0,
  stale_if_error: 0,
  grace: 10,
  store_set_cookie: false,
  store_private: false,
  purge_allow: DEFAULT_PURGE_ALLOW,
};

/**
 * A route's cache rules (the route's, then the top level's, then the
 * defaults), or null when the route is not cached: `cache = false`, or no
 * cache at the top level and none asked for by the route.
 */
export function routeCacheRules(settings: TopSettings, route: RouteCacheConfig | undefined): CacheRouteSettings | null {
  const top = settings.cache;
  const everyRoute = (top !== undefined && (top.size ?? 1) > 0) || settings.cache_store !== undefined;
  const on = route === true || typeof route === 'object' || (route === undefined && everyRoute);
  if (!on) return null;
  const own = typeof route === 'object' ? route : {};
  const merged: Record<string, unknown> = { ...CACHE_DEFAULTS };
  for (const source of [top ?? {}, own]) for (const [k, v] of Object.entries(source)) if (v !== undefined) merged[k] = v;
  const r = merged as Required<Rules>;
  return {
    key: r.key,
    bypassCookies: r.bypass_cookies,
    bypassHeaders: r.bypass_headers,
    defaultTtl: r.default_ttl,
    staleWhileRevalidate: r.stale_while_revalidate,
    staleIfError: r.stale_if_error,
    grace: r.grace,
    storeSetCookie: r.store_set_cookie,
    storePrivate: r.store_private,
    purge: new PeerList(r.purge_allow),
  };
}

/** The store's settings: the top level's, or the defaults when only routes ask for the cache. */
export function cacheSettings(settings: TopSettings): CacheTierSettings {
  const top = settings.cache;
  return {
    store: settings.cache_store,
    size: top?.size ?? CACHE_DEFAULTS.size,
    maxObjectSize: (top && 'max_object_size' in top ? top.max_object_size : undefined) ?? CACHE_DEFAULTS.max_object_size,
    lockTimeout: (top && 'lock_timeout' in top ? top.lock_timeout : undefined) ?? CACHE_DEFAULTS.lock_timeout,
  };
}
