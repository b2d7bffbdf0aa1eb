/**
 * The cache key rule: a template over the request (nginx's proxy_cache_key
 * words). The default, `$scheme://$host$request_uri`, keys on scheme, host,
 * path and query; a route may drop or add parts (`$host$uri` ignores the
 * query, `$cookie_lang` adds a cookie's value).
 */
export const DEFAULT_KEY = '$scheme://$host$request_uri';

/** What a key is made from. */
export interface KeyParts {
  scheme: string;
  host: string;
  /** The request target as sent (path and query). */
  url: string;
  /** The request's cookies, for `$cookie_NAME`. */
  cookie: string | undefined;
}

const WORD = /\$(request_uri|scheme|host|uri|args|cookie_[A-Za-z0-9_.-]+)/g;

/** Why `template` is not a key rule, or undefined when it is one. */
export function keyTemplateProblem(template: string): string | undefined {
  const words = template.match(WORD);
  if (words === null) return 'must use at least one of $scheme, $host, $uri, $args, $request_uri, $cookie_NAME';
  const rest = template.replace(WORD, '');
  if (rest.includes('$')) return `unknown variable in ${JSON.stringify(template)} (known: $scheme, $host, $uri, $args, $request_uri, $cookie_NAME)`;
  return undefined;
}

/** The key of a request under `template` (checked by keyTemplateProblem). */
export function cacheKey(template: string, p: KeyParts): string {
  if (template === DEFAULT_KEY) return `${p.scheme}://${p.host}${p.url}`;
  const q = p.url.indexOf('?');
  return template.replace(WORD, (_, word: string) => {
    if (word === 'request_uri') return p.url;
    if (word === 'scheme') return p.scheme;
    if (word === 'host') return p.host;
    if (word === 'uri') return q < 0 ? p.url : p.url.slice(0, q);
    if (word === 'args') return q < 0 ? '' : p.url.slice(q + 1);
    return cookieValue(p.cookie, word.slice('cookie_'.length)) ?? '';
  });
}

/** A cookie's value in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
