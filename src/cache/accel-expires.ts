/**
 * X-Accel-Expires (accel-headers.ts), as nginx's proxy_cache reads it: how
 * long this cache keeps a response fresh, over the response's Cache-Control
 * and Expires. Only the cache's: the client (and a hit) gets the app's own
 * headers. Written by hand around http-cache-semantics, which knows no such
 * header: the headers the library judges a response by get `s-maxage` in
 * place of what the response says of its freshness. As nginx, the header
 * also overrides `no-cache`, `no-store` and `private`; Set-Cookie and
 * `Vary: *` still keep a response from the store.
 */

/** The directives of the response's Cache-Control that the header leaves in force. */
const KEPT = /^stale-(?:while-revalidate|if-error)=/;

/**
 * The header's freshness in seconds from `now` (ms): its seconds, or what
 * is left until its `@` Unix time (0 once past); 'off' for `0` (never
 * stored); null without a value nginx reads (no header, not digits).
 */
export function accelFreshness(value: string | undefined, now: number): number | 'off' | null {
  if (value === undefined) return null;
  const text = value.trim();
  const absolute = text.startsWith('@');
  const digits = absolute ? text.slice(1) : text;
  if (!/^\d{1,15}$/.test(digits)) return null;
  const n = Number(digits);
  if (absolute) return Math.max(0, n - Math.floor(now / 1000));
  return n === 0 ? 'off' : n;
}

/**
 * `judged` (the response headers the library reads, lower case) with its
 * freshness `seconds`: Cache-Control is `s-maxage` and the stale-* directives
 * it had; Expires, Pragma and Age go (nginx counts the time from now).
 */
export function withAccelFreshness(judged: Readonly<Record<string, string>>, seconds: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in judged) if (name !== 'cache-control' && name !== 'expires' && name !== 'pragma' && name !== 'age') out[name] = judged[name]!;
  const kept = (judged['cache-control'] ?? '').split(',').map((d) => d.trim()).filter((d) => KEPT.test(d));
  out['cache-control'] = [`s-maxage=${seconds}`, ...kept].join(', ');
  return out;
}
