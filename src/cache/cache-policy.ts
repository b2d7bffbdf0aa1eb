/**
 * What may be stored and for how long, and how a stored response may answer
 * a request: RFC 9111 as a shared cache, by http-cache-semantics. Written
 * here only what it leaves to the cache: the route's overrides (a default
 * TTL, stale-while-revalidate and stale-if-error defaults, storing responses
 * with Set-Cookie or `private` when the route says so), Vary: * never
 * stored, grace, the Content-Encoding check, and X-Accel-Expires
 * (accel-expires.ts).
 */
import CachePolicy from 'http-cache-semantics';
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderMap } from './capture-response.js';
import { accelFreshness, withAccelFreshness } from './accel-expires.js';

/** A route's cache settings, as the policy needs them (seconds). */
export interface PolicySettings {
  /** Freshness for a storable response that states none; 0: the RFC's rules only. */
  defaultTtl: number;
  /** Applied when the response gives no such directive. */
  staleWhileRevalidate: number;
  staleIfError: number;
  /** How long past staleness a stored response may still answer when the origin fails (Varnish's grace). */
  grace: number;
  storeSetCookie: boolean;
  storePrivate: boolean;
}

/** A response in the store. */
export interface StoredResponse {
  status: number;
  /** Without hop-by-hop headers, Date and Content-Length (written per answer). */
  headers: HeaderMap;
  body: Buffer;
  policy: CachePolicy;
  /** The request header values its Vary names: tells a key's variants apart. */
  variant: string;
  /** Cache-Tag / Surrogate-Key values, for invalidation by tag. */
  tags: string[];
  /** The memcached store's record of its tags' versions when it was stored (memcached-store.ts). */
  tagVersions?: Record<string, string>;
  /** must-revalidate or proxy-revalidate: never answers once stale, not even when the origin fails. */
  mustRevalidate: boolean;
  /** Date.now() ms until which it may answer when the origin fails (stale-if-error, grace). */
  errorUntil: number;
  /** Date.now() ms past which it is of no more use: the store drops it. */
  keepUntil: number;
}

/** Headers that belong to one connection, never stored (RFC 9111 §3.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'date', 'content-length']);

/**
 * The request as http-cache-semantics reads it: the URL is the cache key,
 * Host is part of the key already. `vary`: for a response being stored, the
 * policy keeps only what it reads of the request then (Cache-Control,
 * Authorization, the headers Vary names), not a copy of every header.
 */
function policyRequest(key: string, headers: IncomingHttpHeaders, vary?: string): CachePolicy.Request {
  const cc = headers['cache-control'];
  // A request's max-age=0 (a browser's reload) wants the origin asked: the library would take a
  // response stored within the same millisecond (its age, 0, is not above 0).
  const cacheControl = cc !== undefined && /(?:^|,)\s*max-age\s*=\s*0\s*(?:,|$)/i.test(cc) ? `${cc}, no-cache` : cc;
  const copy: IncomingHttpHeaders = vary === undefined ? { ...headers } : namedHeaders(vary, headers);
  copy.host = '';
  copy['cache-control'] = cacheControl;
  copy['accept-encoding'] = acceptedCodings(headers['accept-encoding']);
  return { url: key, method: 'GET', headers: copy };
}

/** The request headers a stored policy may read: Authorization, and those Vary names (split as the library splits them). */
function namedHeaders(vary: string, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named: IncomingHttpHeaders = {};
  if (headers.authorization !== undefined) named.authorization = headers.authorization;
  if (vary === '') return named;
  for (const name of vary.trim().toLowerCase().split(/\s*,\s*/)) if (Object.hasOwn(headers, name)) named[name] = headers[name];
  return named;
}

/** Codings a cache may see in Content-Encoding. */
const CODINGS = ['br', 'gzip', 'deflate', 'zstd'] as const;

/**
 * Accept-Encoding as the codings it accepts, in one order: clients that
 * accept the same share one variant of a response that varies with it,
 * however they spell the header (Varnish normalises it too).
 */
function acceptedCodings(accept: string | undefined): string {
  if (accept === undefined) return '';
  return CODINGS.filter((c) => acceptsCoding(accept, c)).join(',');
}

function joined(value: string | string[] | undefined): string {
  return value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value;
}

/** The response headers http-cache-semantics reads besides Cache-Control (and Set-Cookie, which never reaches it: see judgedHeaders). */
const POLICY_HEADERS = ['expires', 'date', 'age', 'last-modified', 'etag', 'vary', 'pragma'] as const;

/** A Cache-Control value with no directive in it. */
const BLANK = /^[\s,]*$/;

/**
 * The response headers the policy judges by: the origin's, with the
 * route's defaults added; only those the library reads, as it keeps them
 * for as long as the response is stored. The same record as last time when
 * the headers it is made from and the route are the same (so that the
 * policy made last, judge(), is found alike at once).
 */
function judgedHeaders(headers: HeaderMap, s: PolicySettings): Record<string, string> {
  const last = lastJudged;
  if (last !== null && last.settings === s && last.cc === headers['cache-control'] && typeof last.cc !== 'object') {
    let same = true;
    for (let i = 0; i < POLICY_HEADERS.length && same; i++) same = headers[POLICY_HEADERS[i]!] === last.values[i] && typeof last.values[i] !== 'object';
    if (same) return last.judged;
  }
  // must-revalidate is the cache's to apply (StoredResponse.mustRevalidate): http-cache-semantics
  // refuses such a response even while it is fresh, and takes proxy-revalidate as no freshness at all.
  let cc = joined(headers['cache-control']).toLowerCase().replace(/\b(must|proxy)-revalidate\b/g, '');
  if (s.storePrivate) cc = cc.replace(/\bprivate\b(="[^"]*")?/g, '');
  const extra: string[] = [];
  if (s.defaultTtl > 0 && headers.expires === undefined && !/\b(s-maxage|max-age|no-cache|no-store)\b/.test(cc)) extra.push(`s-maxage=${s.defaultTtl}`);
  if (s.staleWhileRevalidate > 0 && !cc.includes('stale-while-revalidate')) extra.push(`stale-while-revalidate=${s.staleWhileRevalidate}`);
  if (s.staleIfError > 0 && !cc.includes('stale-if-error')) extra.push(`stale-if-error=${s.staleIfError}`);
  // Set-Cookie is left out: the library keeps a response with cookies fresh for no time unless it is
  // public, and one that the route does not store with its cookies is refused before (toStore).
  const judged: Record<string, string> = {};
  for (const name of POLICY_HEADERS) if (headers[name] !== undefined) judged[name] = joined(headers[name]);
  const value = extra.length === 0 ? cc : [cc, ...extra].filter((d) => !BLANK.test(d)).join(', ');
  if (!BLANK.test(value)) judged['cache-control'] = value;
  lastJudged = { settings: s, cc: headers['cache-control'], values: POLICY_HEADERS.map((name) => headers[name]), judged };
  return judged;
}

/** The last judged record made, and what from (judgedHeaders). */
let lastJudged: { settings: PolicySettings; cc: string | string[] | undefined; values: (string | string[] | undefined)[]; judged: Record<string, string> } | null = null;

const STALE_WHILE_REVALIDATE = /\bstale-while-revalidate=(\d+)/;
const STALE_IF_ERROR = /\bstale-if-error=(\d+)/;

/** A seconds directive of a Cache-Control value, or 0. */
function directive(cc: string, pattern: RegExp): number {
  const m = pattern.exec(cc);
  return m === null ? 0 : Number(m[1]);
}

/** Shared by the responses without tags (most): never written to. */
const NO_TAGS: string[] = [];

/** The value of a response header listing tokens (Cache-Tag, Surrogate-Key). */
function tagsOf(headers: HeaderMap): string[] {
  if (headers['cache-tag'] === undefined && headers['surrogate-key'] === undefined) return NO_TAGS;
  const text = `${joined(headers['cache-tag'])} ${joined(headers['surrogate-key'])}`;
  return text.split(/[\s,]+/).filter((t) => t !== '');
}

/**
 * The last policy made for a response whose request had no Cache-Control
 * and no Authorization and which has no Vary, as the library serializes it,
 * and what it was made from: the next such response with the same status
 * and judged headers gets its policy from it (with its own time and URL)
 * instead of the library parsing the same headers again. A route's misses
 * mostly look alike. The serialized form's objects are shared: the library
 * writes to them only while constructing a policy, and copies the
 * serialized form's fields (so the one form serves each policy made from it).
 * With it, whether it was storable and how long it was fresh when made: the
 * same for each policy made from it as long as its freshness does not count
 * from its own time (no Expires, no Last-Modified), null otherwise.
 */
let lastPlain: { status: number; judged: Record<string, string>; policy: CachePolicy.CachePolicyObject; storable: boolean; ttl: number | null } | null = null;

/** Whether two judged header records have the same names, in the same order, with the same values. */
function sameJudged(a: Record<string, string>, b: Record<string, string>): boolean {
  if (a === b) return true;
  let n = 0;
  for (const name in a) {
    if (a[name] !== b[name]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

/** A response's policy, whether it may be stored, and how long (ms) it stays fresh from now, 0 when it may not be stored. */
interface Judgement {
  policy: CachePolicy;
  storable: boolean;
  ttl: number;
}

/**
 * How long (ms) a response stays fresh from now. Not the library's
 * timeToLive(), which counts stale-while-revalidate and stale-if-error in
 * too: toStore adds those (and grace) to this itself.
 */
function freshFor(policy: CachePolicy): number {
  return Math.round(Math.max(0, policy.maxAge() - policy.age()) * 1000);
}

function judgement(policy: CachePolicy): Judgement {
  const storable = policy.storable();
  return { policy, storable, ttl: storable ? freshFor(policy) : 0 };
}

function judge(key: string, req: IncomingHttpHeaders, status: number, judged: Record<string, string>, vary: string): Judgement {
  const make = () => new CachePolicy(policyRequest(key, req, vary), { status, headers: judged }, { shared: true });
  if (vary !== '' || req['cache-control'] !== undefined || req.authorization !== undefined) return judgement(make());
  const last = lastPlain;
  if (last !== null && last.status === status && sameJudged(last.judged, judged)) {
    const form = last.policy;
    form.t = Date.now();
    form.u = key;
    const policy = CachePolicy.fromObject(form);
    return { policy, storable: last.storable, ttl: !last.storable ? 0 : (last.ttl ?? freshFor(policy)) };
  }
  const made = judgement(make());
  const steady = judged.expires === undefined && judged['last-modified'] === undefined;
  lastPlain = { status, judged, policy: made.policy.toObject(), storable: made.storable, ttl: steady ? made.ttl : null };
  return made;
}

/**
 * The stored form of a complete response to a GET, or a reason it is not
 * stored (for Cache-Status' detail). `accelExpires`: its X-Accel-Expires.
 */
export function toStore(key: string, req: IncomingHttpHeaders, status: number, headers: HeaderMap, body: Buffer, s: PolicySettings, accelExpires?: string): StoredResponse | string {
  if (headers['set-cookie'] !== undefined && !s.storeSetCookie) return 'set-cookie';
  const vary = joined(headers.vary);
  if (vary.trim() === '*') return 'vary-star';
  const accel = accelFreshness(accelExpires, Date.now());
  if (accel === 'off') return 'x-accel-expires';
  const judged = accel === null ? judgedHeaders(headers, s) : withAccelFreshness(judgedHeaders(headers, s), accel);
  const { policy, storable, ttl } = judge(key, req, status, judged, vary);
  if (!storable) return 'not-storable';
  const cc = judged['cache-control'] ?? '';
  const { kept, tags, mustRevalidate, validator } = responseFacts(headers);
  const { staleWhileRevalidate, staleIfError } = staleDirectives(cc);
  const afterStale = Math.max(staleWhileRevalidate, staleIfError, s.grace) * 1000;
  if (ttl <= 0 && !validator && afterStale === 0) return 'stale-at-once';
  const now = Date.now();
  return {
    status,
    headers: kept,
    body,
    policy,
    variant: variantOf(vary, req),
    tags,
    mustRevalidate,
    errorUntil: now + ttl + (mustRevalidate ? 0 : Math.max(staleIfError, s.grace) * 1000),
    // A response with a validator stays while it can be revalidated; without one, only while stale use is allowed.
    keepUntil: now + ttl + (validator ? Math.max(afterStale, 3600_000) : afterStale),
  };
}

/** What a stored response keeps of its headers, and reads from them. */
interface ResponseFacts {
  /** Without the hop-by-hop headers (never written to: shared by the responses made from the same headers). */
  kept: HeaderMap;
  tags: string[];
  mustRevalidate: boolean;
  validator: boolean;
}

/** The last facts worked out, and the header map they came from (the capture gives the same map for the same headers). */
let lastFacts: { headers: HeaderMap; facts: ResponseFacts } | null = null;

function responseFacts(headers: HeaderMap): ResponseFacts {
  if (lastFacts !== null && lastFacts.headers === headers) return lastFacts.facts;
  const kept: HeaderMap = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) kept[name] = headers[name]!;
  const facts: ResponseFacts = {
    kept,
    tags: tagsOf(headers),
    mustRevalidate: /\b(must|proxy)-revalidate\b/i.test(joined(headers['cache-control'])),
    validator: headers.etag !== undefined || headers['last-modified'] !== undefined,
  };
  lastFacts = { headers, facts };
  return facts;
}

/** The judged Cache-Control's stale-while-revalidate and stale-if-error (seconds), kept for the last value. */
let lastStale = { cc: '', staleWhileRevalidate: 0, staleIfError: 0 };

function staleDirectives(cc: string): { staleWhileRevalidate: number; staleIfError: number } {
  if (cc !== lastStale.cc) lastStale = { cc, staleWhileRevalidate: directive(cc, STALE_WHILE_REVALIDATE), staleIfError: directive(cc, STALE_IF_ERROR) };
  return lastStale;
}

/** The request's values of the headers a response's Vary names. */
export function variantOf(vary: string, req: IncomingHttpHeaders): string {
  if (vary === '') return '';
  return vary
    .toLowerCase()
    .split(',')
    .map((name) => {
      const header = name.trim();
      return header === 'accept-encoding' ? acceptedCodings(req[header]) : joined(req[header]);
    })
    .join('\n');
}

/** How a stored response can answer a request. */
export type Verdict =
  | { kind: 'fresh' }
  /** Stale within stale-while-revalidate: answer, and refresh in the background. */
  | { kind: 'stale-while-revalidate' }
  /** Ask the origin with these headers (its validators); a 304 refreshes the stored one. */
  | { kind: 'revalidate'; headers: Record<string, string> }
  | { kind: 'miss' };

const FRESH: Verdict = { kind: 'fresh' };

/** The Vary of a stored response, as one string. */
export function varyOf(stored: StoredResponse): string {
  return joined(stored.headers.vary);
}

export function evaluate(stored: StoredResponse, key: string, req: IncomingHttpHeaders): Verdict {
  const coding = stored.headers['content-encoding'];
  if (typeof coding === 'string' && coding !== 'identity' && !acceptsCoding(req['accept-encoding'], coding)) return { kind: 'miss' };
  // The common case without the library's work (it copies the response headers for each answer).
  if (req['cache-control'] === undefined && req.pragma === undefined && stored.variant === variantOf(varyOf(stored), req) && !isStale(stored)) {
    return FRESH;
  }
  const result = stored.policy.evaluateRequest(policyRequest(key, req));
  if (result.response !== undefined && !(stored.mustRevalidate && stored.policy.stale())) return result.revalidation === undefined ? FRESH : { kind: 'stale-while-revalidate' };
  if (stored.headers.etag === undefined && stored.headers['last-modified'] === undefined) return { kind: 'miss' };
  const headers: Record<string, string> = {};
  const all = result.revalidation!.headers;
  for (const name of ['if-none-match', 'if-modified-since']) {
    const value = all[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return Object.keys(headers).length === 0 ? { kind: 'miss' } : { kind: 'revalidate', headers };
}

/** A 304 from the origin: the stored response with its headers refreshed (RFC 9111 §4.3.4). */
export function refreshed(stored: StoredResponse, key: string, req: IncomingHttpHeaders, headers: HeaderMap, s: PolicySettings, accelExpires?: string): StoredResponse | string {
  const merged: HeaderMap = { ...stored.headers };
  for (const name in headers) if (!HOP_BY_HOP.has(name) && !name.startsWith('content-')) merged[name] = headers[name]!;
  return toStore(key, req, stored.status, merged, stored.body, s, accelExpires);
}

/** Whether an Accept-Encoding value allows `coding` (named, or `*`, with a q above 0). */
export function acceptsCoding(accept: string | undefined, coding: string): boolean {
  if (accept === undefined) return false;
  let star = false;
  for (const part of accept.toLowerCase().split(',')) {
    const [name, ...params] = part.split(';').map((p) => p.trim());
    const zero = params.some((p) => /^q=0(\.0*)?$/.test(p));
    if (name === coding) return !zero;
    if (name === '*') star = !zero;
  }
  return star;
}

/**
 * A stored policy's clock: its age at one moment and its freshness lifetime,
 * which the library works out from the headers on every call; a hit needs
 * them on every request, so they are worked out once per policy.
 */
const clocks = new WeakMap<CachePolicy, { base: number; at: number; maxAge: number }>();

function ageAndLifetime(policy: CachePolicy): { age: number; maxAge: number } {
  const now = Date.now();
  let c = clocks.get(policy);
  if (c === undefined) clocks.set(policy, (c = { base: ageAt(policy, now), at: now, maxAge: policy.maxAge() }));
  return { age: c.base + (now - c.at) / 1000, maxAge: c.maxAge };
}

/**
 * The library's age() as of `now`. Its own reading of the clock may come a
 * millisecond after `now`, and the clock's base would then lag by that much
 * for as long as the policy is stored (a response one millisecond old read as
 * new, its freshness one second more at the turn).
 */
function ageAt(policy: CachePolicy, now: number): number {
  return policy.age.call(Object.create(policy, { now: { value: () => now } }) as CachePolicy);
}

/** The library's stale(), from the policy's clock: whether a stored response is past its freshness lifetime. */
export function isStale(stored: StoredResponse): boolean {
  const { age, maxAge } = ageAndLifetime(stored.policy);
  return maxAge <= age;
}

/**
 * The age of a stored response in whole seconds, its remaining freshness
 * (negative once stale), and how many ms both stay as they are.
 */
export function ageOf(stored: StoredResponse): { age: number; ttl: number; steadyMs: number } {
  const { age, maxAge } = ageAndLifetime(stored.policy);
  const left = maxAge - age;
  const steady = Math.min(Math.floor(age) + 1 - age, left - Math.floor(left));
  return { age: Math.floor(age), ttl: Math.floor(left), steadyMs: steady * 1000 };
}
