/**
 * What the `proxy` action changes on the way up and on the way down, as
 * nginx's proxy module does with the usual `proxy_set_header` lines:
 *
 * - up: hop-by-hop headers (RFC 9110 §7.6.1: Connection and those it names,
 *   Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection)
 *   and Expect (the front has answered it) are dropped; Host is the client's
 *   or the configured one; X-Forwarded-For gets the peer's address,
 *   X-Forwarded-Proto the scheme, X-Forwarded-Host the Host asked for, and
 *   Forwarded (RFC 7239) a `for=...;proto=...;host=...` element. From a peer
 *   in forwarded_allow_ips these are appended to what it sent; from any
 *   other client, what it sent is dropped first (a client could otherwise
 *   give the upstream any address it likes). Then `request_headers`.
 * - down: hop-by-hop headers dropped; Location and Refresh that point at the
 *   upstream rewritten to this server's path (nginx's `proxy_redirect
 *   default`); then `response_headers`.
 * - the path: the route's prefix replaced by `pass_path` when it is set.
 */
import type { HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { isAccelName } from '../http/accel-headers.js';
import { forwardedOf } from '../http/forwarded.js';
import { TOKEN } from '../http/token.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);

/** What of a routed request the rewriting looks at (an UpgradeRequest has it too). */
type Routed = Pick<RouteRequest<RequestInfo, HttpResponse>, 'req' | 'scheme' | 'prefix' | 'rest' | 'query'>;

/** What a route's proxy settings say about headers and paths. */
export interface HeaderRules {
  /** The Host sent upstream; undefined: the client's. */
  host: string | undefined;
  /** Lower-case name → value; '' removes. */
  requestHeaders: ReadonlyMap<string, [string, string]>;
  responseHeaders: ReadonlyMap<string, [string, string]>;
  passPath: string | undefined;
  rewriteLocation: boolean;
}

/** `{Name = value}` as a map by lower-case name, keeping the name as written. */
export function headerTable(table: Record<string, string>): Map<string, [string, string]> {
  return new Map(Object.entries(table).map(([name, value]) => [name.toLowerCase(), [name, value]]));
}

/** What the usual `Connection: close` names: shared, never added to. */
const CLOSE_ONLY: ReadonlySet<string> = new Set(['close']);

/** The names a Connection value lists, lower case, with those of `tokens` (the usual `close` or `keep-alive` make no Set). */
function connectionTokens(tokens: ReadonlySet<string> | null, value: string): ReadonlySet<string> | null {
  const lower = value.toLowerCase();
  if (tokens === null && lower === 'close') return CLOSE_ONLY;
  // keep-alive is hop-by-hop: dropped without being named.
  if (lower === 'keep-alive') return tokens;
  const more = new Set(tokens);
  for (const t of lower.split(',')) more.add(t.trim());
  return more;
}

/** Applies a header table to `[name, value, ...]`: a name in it is replaced (or removed when ''). */
function applyTable(out: string[], table: ReadonlyMap<string, [string, string]>): string[] {
  if (table.size === 0) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!table.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  for (const [name, value] of table.values()) if (value !== '') kept.push(name, value);
  return kept;
}

/** The address of the peer connected to us (not a forwarded one). */
function peerAddress(req: RequestInfo): string {
  const remote = 'peerAddress' in req ? (req.peerAddress as string | undefined) : req.socket.remoteAddress;
  if (remote === undefined) return 'unknown';
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}

/** A trusted peer's values of a forwarding header, then ours. */
function appended(prior: Map<string, string[]> | null, key: string, ours: string): string {
  const before = prior?.get(key);
  return before === undefined ? ours : [...before, ours].join(', ');
}

/** The request head sent upstream, as `[name, value, ...]`; `bodyLength`: a buffered body's length (Content-Length). */
export function upstreamRequestHeaders(r: Routed, rules: HeaderRules, bodyLength: number | null): string[] {
  const raw = r.req.rawHeaders;
  // Per request: the common head (no Connection header, untrusted peer) makes no Set, Map or closure.
  let named: ReadonlySet<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') named = connectionTokens(named, raw[i + 1]!);
  const prior = forwardedOf(r.req) === undefined ? null : new Map<string, string[]>();
  const out: string[] = [];
  let clientHost = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const key = name.toLowerCase();
    // HTTP/2 pseudo-headers (:authority stands in for Host).
    if (key.startsWith(':')) {
      if (key === ':authority' && clientHost === '') clientHost = value;
      continue;
    }
    if (HOP_BY_HOP.has(key) || named?.has(key) === true || key === 'expect') continue;
    if (key === 'host') {
      clientHost = value;
      continue;
    }
    if (bodyLength !== null && key === 'content-length') continue;
    if (FORWARDING.has(key)) {
      if (prior !== null) prior.set(key, [...(prior.get(key) ?? []), value]);
      continue;
    }
    out.push(name, value);
  }
  if (bodyLength !== null) out.push('Content-Length', String(bodyLength));
  out.push('Host', rules.host ?? (clientHost || 'localhost'));
  const addr = peerAddress(r.req);
  out.push('X-Forwarded-For', appended(prior, 'x-forwarded-for', addr));
  out.push('X-Forwarded-Proto', appended(prior, 'x-forwarded-proto', r.scheme));
  if (clientHost !== '') out.push('X-Forwarded-Host', appended(prior, 'x-forwarded-host', clientHost));
  const node = addr.includes(':') ? `"[${addr}]"` : addr;
  const host = clientHost !== '' ? `;host=${quoteIfNeeded(clientHost)}` : '';
  out.push('Forwarded', appended(prior, 'forwarded', `for=${node};proto=${r.scheme}${host}`));
  return applyTable(out, rules.requestHeaders);
}

/** RFC 7239 values are tokens or quoted strings. */
function quoteIfNeeded(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The target sent upstream: the client's, or with the route's prefix
 * replaced by pass_path (`/api/x?q` with prefix /api and pass_path / is `/x?q`).
 */
export function upstreamTarget(r: Routed, passPath: string | undefined): string {
  const url = r.req.url ?? '/';
  if (passPath === undefined) return url.startsWith('/') ? url : url === '*' ? '*' : originForm(url);
  const path = url.startsWith('/') ? url.slice(0, (url.indexOf('?') + 1 || url.length + 1) - 1) : new URL(url).pathname;
  // The prefix as sent; a prefix the client percent-encoded is matched decoded, and the rest goes up re-encoded.
  const rest = path.startsWith(r.prefix) ? path.slice(r.prefix.length) : encodeLatin1(r.rest);
  const mapped = rest === '' ? passPath : passPath.replace(/\/$/, '') + rest;
  return r.query === '' ? mapped : `${mapped}?${r.query}`;
}

function originForm(absolute: string): string {
  const u = new URL(absolute);
  return u.pathname + u.search;
}

function encodeLatin1(path: string): string {
  return path.replace(/[^\x21-\x7e]|%/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The response head for the client, and what the proxy reads from the upstream's. */
export interface ClientResponseHead {
  /** `[name, value, ...]`. */
  headers: string[];
  /** The upstream's Content-Length, when it sent one. */
  length: number | undefined;
  /** The upstream said `Connection: close`. */
  close: boolean;
  /** The upstream's head has X-Accel-* headers (accel-headers.ts): the exchange reads them and takes them off. */
  accel: boolean;
}

/**
 * The response head sent to the client, from undici's raw header buffers,
 * with the Content-Length and `Connection: close` the exchange needs found in
 * the same walk. `upstreamBases`: the authorities the upstream may
 * put in a Location for this route (its own and the Host sent), each
 * followed by pass_path.
 */
export function clientResponseHead(raw: Buffer[], rules: HeaderRules, r: Routed, upstreamBases: readonly string[]): ClientResponseHead {
  const text = latin1Strings(raw);
  let named: ReadonlySet<string> | null = null;
  let close = false;
  for (let i = 0; i < text.length; i += 2) {
    if (text[i]!.length !== 10 || text[i]!.toLowerCase() !== 'connection') continue;
    const value = text[i + 1]!;
    named = connectionTokens(named, value);
    close ||= /\bclose\b/i.test(value);
  }
  const out: string[] = [];
  let length: number | undefined;
  let accel = false;
  for (let i = 0; i < text.length; i += 2) {
    const name = text[i]!;
    const key = name.toLowerCase();
    if (key === 'content-length') length ??= Number(text[i + 1]!);
    else if (isAccelName(key)) accel = true;
    if (HOP_BY_HOP.has(key) || named?.has(key) === true) continue;
    let value = text[i + 1]!;
    if (rules.rewriteLocation && (key === 'location' || key === 'refresh')) value = rewriteLocation(value, r, rules.passPath, upstreamBases);
    out.push(name, value);
  }
  return { headers: applyTable(out, rules.responseHeaders), length, close, accel };
}

/** undici's raw header buffers as strings: one latin-1 decode for all (a byte per character), cut by their lengths. */
function latin1Strings(raw: Buffer[]): string[] {
  const text = Buffer.concat(raw).toString('latin1');
  const out: string[] = new Array(raw.length);
  let at = 0;
  for (let i = 0; i < raw.length; i++) {
    const end = at + raw[i]!.length;
    out[i] = text.slice(at, end);
    at = end;
  }
  return out;
}

/** The response head sent to the client, as `[name, value, ...]` (see clientResponseHead). */
export function clientResponseHeaders(raw: Buffer[], rules: HeaderRules, r: Routed, upstreamBases: readonly string[]): string[] {
  return clientResponseHead(raw, rules, r, upstreamBases).headers;
}

/** `http://upstream/pass_path/x` → `/prefix/x` (Refresh: the part after `url=`). */
function rewriteLocation(value: string, r: Routed, passPath: string | undefined, bases: readonly string[]): string {
  const from = (passPath ?? '/').replace(/\/$/, '');
  const to = passPath === undefined ? '' : r.prefix;
  for (const base of bases) {
    for (const scheme of ['http://', 'https://']) {
      const start = scheme + base + from;
      const at = value.toLowerCase().indexOf(start.toLowerCase());
      // At the start (Location) or after `url=` (Refresh), and on a path boundary.
      if (at < 0 || (at > 0 && !/url=\s*$/i.test(value.slice(0, at)))) continue;
      const after = value.slice(at + start.length);
      if (after !== '' && !'/?#'.includes(after[0]!)) continue;
      return value.slice(0, at) + (to + after || '/');
    }
  }
  return value;
}
