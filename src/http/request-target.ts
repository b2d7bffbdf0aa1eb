/**
 * The request target as routing and the environ see it: the path
 * percent-decoded to latin-1 (PEP 3333's "bytes in a str", as PATH_INFO is)
 * and the raw query string.
 */
const PERCENT = /%([0-9A-Fa-f]{2})/g;

/** Percent-decodes to a latin-1 string: each byte becomes one char, as PEP 3333 wants. */
export function decodePath(path: string): string {
  return path.includes('%') ? path.replace(PERCENT, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : path;
}

/** The request target, split and decoded once for routing and the environ. */
export interface RequestTarget {
  /** The path, percent-decoded to latin-1. */
  path: string;
  /** The raw query string, without '?'. */
  query: string;
  /**
   * The host an absolute-form target names (`http://a.example:8080/p` →
   * `a.example:8080`, userinfo dropped), null for any other target. RFC 9112
   * §3.2.2: a server that gets one ignores the Host header and uses this.
   */
  host: string | null;
}

/**
 * Splits `req.url`; null when the path decodes to a NUL (it separates the
 * wire's fields) or holds a `..` segment (it could climb out of a route's
 * prefix; nginx refuses one that climbs above the root too): both 400.
 */
export function parseTarget(url: string): RequestTarget | null {
  let target = url;
  let host: string | null = null;
  if (target.charCodeAt(0) !== 47 /* '/' */) {
    // absolute-form (a proxy-style request line): keep only the path
    const m = ABSOLUTE.exec(target);
    if (m !== null) {
      target = target.slice(m[0].length) || '/';
      host = m[1] || null;
    }
  }
  // A fragment is the client's own business (RFC 9110 §4.2.4): never part of the path or the query.
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const path = decodePath(q < 0 ? target : target.slice(0, q));
  if (path.includes('\0') || DOT_DOT.test(path)) return null;
  return { path, query: q < 0 ? '' : target.slice(q + 1), host };
}

const DOT_DOT = /\/\.\.(?:\/|$)/;
/** scheme://[userinfo@]authority at the start of an absolute-form target; the authority is group 1. */
const ABSOLUTE = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/(?:[^/?#@]*@)?([^/?#]*)/;

/** The Host header's name part, lower case: `Example.COM:8443` → `example.com`, `[::1]:80` → `::1`. */
export function hostName(header: string | undefined): string {
  if (!header) return '';
  // Most requests name the host the one before named: its name is not made again.
  if (header === lastHost) return lastName;
  lastName = nameOfHost(header);
  lastHost = header;
  return lastName;
}

let lastHost = '';
let lastName = '';

function nameOfHost(header: string): string {
  let host = header.toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') >>> 0);
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
