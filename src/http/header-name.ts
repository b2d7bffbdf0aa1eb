/** Header names compared in any case without making a lower-case copy of each (a heap object per request). */

/** The value of header `name` (any case) in a `[name, value, ...]` list, the first if several. */
export function flatHeader(flat: readonly string[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (let i = 0; i < flat.length; i += 2) if (isHeaderName(flat[i]!, lower)) return flat[i + 1];
  return undefined;
}

/** `name` is `lower` (a lower-case token) in any case. */
export function isHeaderName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  // Setting bit 0x20 lowers ASCII letters; otherwise only control characters, never in a name, could match.
  for (let i = 0; i < name.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** The name from `start` to `end` in `bytes` (latin-1) is `lower` (a lower-case token) in any case. */
export function isHeaderNameAt(bytes: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((bytes[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Names whose usual spelling is not each word capitalized. */
const SPELLED: Record<string, string> = {
  etag: 'ETag',
  'www-authenticate': 'WWW-Authenticate',
  'content-md5': 'Content-MD5',
  'x-xss-protection': 'X-XSS-Protection',
  'x-ua-compatible': 'X-UA-Compatible',
};
const shown = new Map<string, string>();

/**
 * A lower-case header name as HTTP/1.1 answers usually spell it
 * (`cache-control` → `Cache-Control`): for answers made from a map with
 * lower-case keys (a stored response), so that they read as the origin's.
 */
export function displayName(lower: string): string {
  let name = shown.get(lower);
  if (name === undefined) {
    name = SPELLED[lower] ?? lower.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
    if (shown.size < 1000) shown.set(lower, name);
  }
  return name;
}
