/** Header names compared in any case without making a lower-case copy of each (a heap object per request). */

/** `name` is `lower` (a lower-case token) in any case. */
export function isHeaderName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  // Setting bit 0x20 lowers ASCII letters; otherwise only control characters, never in a name, could match.
  for (let i = 0; i < name.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}
