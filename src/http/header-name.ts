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
