/**
 * The cache around a route's handler (the Varnish tier): GET and HEAD are
 * answered from the store when a stored response may answer them, else the
 * inner handler answers (one fetch per key at a time) and what it answers is
 * stored when the policy allows; stale responses are revalidated with the
 * origin, refreshed in the background (stale-while-revalidate) or served
 * when the origin fails (stale-if-error, grace). Every response of the route
 * says what the cache did in `Cache-Status` (RFC 9211).
 *
 * The inner handler takes lean requests (Handler.serveLean) and writes to a
 * CaptureResponse, which records while passing on to the client.
 */
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Handler, HttpResponse, LeanRouteRequest, MemoryResponse, RequestHead, RouteRequest } from '../http/handler.js';
import type { Logger } from '../log/logger.js';
import { hasEnded } from '../http/in-flight.js';
import { sendPlain } from '../http/plain-response.js';
import { hostName } from '../http/request-target.js';
import { cacheKey, cookieValue, DEFAULT_KEY } from './cache-key.js';
import { ageOf, refreshed, toStore, variantOf, varyOf, type PolicySettings, type StoredResponse, type Verdict } from './cache-policy.js';
import { when, type CacheStore, type Maybe } from './cache-store.js';
import { invalidate, purge, type KeyOf } from './cache-purge.js';
import { CaptureResponse, captureReroute, type Captured, type HeaderMap } from './capture-response.js';
import type { AccelRedirect } from '../http/accel-redirect.js';
import type { FetchLock, SharedOutcome, WaitOutcome } from './fetch-lock.js';
import { detachedSocket, hasClientOnly, originRequest } from './origin-request.js';
import type { PeerList } from '../http/peer-list.js';
import { spelledHeaders, storedAnswer } from './stored-answer.js';
import { fallback, forwardReason, lookup } from './variant-lookup.js';
import { watchedWait } from './watched-wait.js';
import { OriginFetch, type FetchSteps } from './origin-fetch.js';
import { PassKeys } from './pass-keys.js';

/** A route's cache settings. */
export interface CacheRouteSettings extends PolicySettings {
  /** The key template (cache-key.ts). */
  key: string;
  /** Requests carrying one of these cookies, or headers, go to the origin and are not stored. */
  bypassCookies: readonly string[];
  bypassHeaders: readonly string[];
  /** Who may send PURGE (purge_allow). */
  purge: PeerList;
}

/** What the cached routes share: one store, one lock table. */
export interface CacheShared {
  store: CacheStore;
  /** Bodies larger than this are passed on, not stored. */
  maxObjectSize: number;
  lock: FetchLock;
  logger: Logger;
}

/** A handler the cache can wrap: one that takes lean requests. */
export type LeanHandler = Handler & Required<Pick<Handler, 'serveLean'>>;

/** The cache's name in Cache-Status. */
const NAME = 'gatehouse';
/**
 * Methods defined as safe (RFC 9110 §9.2.1, WebDAV's and QUERY): any other,
 * one whose safety is unknown included, invalidates the URL when it succeeds
 * (RFC 9111 §4.4).
 */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'REPORT', 'QUERY']);
const EMPTY = Buffer.alloc(0);
const MISS: Verdict = { kind: 'miss' };
/** No headers to add to the origin request (never written to). */
const NO_HEADERS: Record<string, string> = {};

export class CachedHandler implements Handler, FetchSteps {
  /** Upgrades (WebSockets) are the inner handler's: nothing to cache or look up. */
  readonly upgrade: Handler['upgrade'];
  /** Keys whose last response was not storable: their requests do not wait for each other. */
  private readonly pass = new PassKeys();
  /**
   * The last plain answer made from each stored response: the same object
   * while its Age is the same second, so the front writes the bytes it made
   * for it before (memory-answers.ts).
   */
  private readonly answers = new WeakMap<StoredResponse, { age: number; ttl: number; method: string; answer: MemoryResponse }>();
  /**
   * The key answerFromMemory made last, and for which request head: when it
   * finds no fresh hit, serveLean gets that same request next and takes the
   * same key string (its hash, for every Map the key goes through, is then
   * worked out once).
   */
  private lastHeaders: IncomingHttpHeaders | null = null;
  private lastScheme = '';
  private lastKey = '';
  /** What a store that answers at once gave for that key, and its count of changes then (CacheStore.writes). */
  private lastVariants: StoredResponse[] | null = null;
  private lastWrites = 0;

  constructor(
    private readonly inner: LeanHandler,
    private readonly settings: CacheRouteSettings,
    private readonly shared: CacheShared,
  ) {
    this.upgrade = inner.upgrade?.bind(inner);
  }

  serve(r: RouteRequest): void {
    this.handle({ ...r, body: r.req });
  }

  serveLean(r: LeanRouteRequest): void {
    this.handle(r);
  }

  /**
   * A fresh hit, written by the front's fast path; null for anything else
   * (serveLean then handles it). From the memory store, the front may give
   * the same answer to the same plain request until its Age changes.
   */
  answerFromMemory(head: RequestHead): MemoryResponse | null | Promise<MemoryResponse | null> {
    const h = head.headers;
    if (head.scheme === undefined || h['x-forwarded-proto'] !== undefined || h.forwarded !== undefined || this.bypass(h)) return null;
    const key = this.keyOf(head.scheme, hostName(h.host), head.url ?? '/', h);
    this.lastHeaders = h;
    this.lastScheme = head.scheme;
    this.lastKey = key;
    const { store } = this.shared;
    const variants = store.get(key);
    if (variants instanceof Promise) return variants.then((v) => this.freshHit(v, key, head, false));
    this.lastVariants = variants;
    this.lastWrites = store.writes ?? NaN;
    return this.freshHit(variants, key, head, this.settings.key === DEFAULT_KEY);
  }

  /** The answer of a fresh stored variant of `head`'s, or null. */
  private freshHit(variants: StoredResponse[], key: string, head: RequestHead, reusable: boolean): MemoryResponse | null {
    if (variants.length === 0) return null;
    const found = lookup(variants, key, head.headers);
    return found === null || found.verdict.kind !== 'fresh' ? null : this.hit(found.stored, head.method ?? 'GET', head.headers, '', reusable ? key : null);
  }

  private handle(r: LeanRouteRequest): void {
    const method = r.req.method ?? 'GET';
    if (method === 'PURGE') return purge(r, this.settings.purge, this.shared.store, this.keyOf);
    if (method !== 'GET' && method !== 'HEAD') return this.forward(r, SAFE.has(method) ? 'bypass' : 'method');
    const h = r.req.headers;
    if (this.bypass(h)) return this.forward(r, 'bypass');
    const same = h === this.lastHeaders && r.scheme === this.lastScheme;
    const key = same ? this.lastKey : this.keyOf(r.scheme, r.host, r.req.url ?? '/', h);
    const known = this.lastVariants;
    this.lastHeaders = this.lastVariants = null;
    // The same request as answerFromMemory's, the store unchanged since: what it found is still there.
    if (same && known !== null && this.shared.store.writes === this.lastWrites) return r.res.destroyed ? undefined : this.answer(r, key, known);
    this.lookUpAndAnswer(r, key);
  }

  private lookUpAndAnswer(r: LeanRouteRequest, key: string): void {
    if (!r.res.destroyed) when(this.shared.store.get(key), (variants) => this.answer(r, key, variants));
  }

  private answer(r: LeanRouteRequest, key: string, variants: StoredResponse[]): void {
    const h = r.req.headers;
    const found = lookup(variants, key, h);
    const verdict = found?.verdict ?? MISS;
    if (found !== null && verdict.kind === 'fresh') return this.send(r, this.hit(found.stored, r.req.method!, h, ''));
    const { lock } = this.shared;
    if (found !== null && verdict.kind === 'stale-while-revalidate') {
      this.send(r, this.hit(found.stored, r.req.method!, h, '; detail=stale-while-revalidate'));
      if (lock.acquire(key)) this.refreshInBackground(r, key, found.stored);
      return;
    }
    if (h['cache-control'] !== undefined && /\bonly-if-cached\b/i.test(h['cache-control'])) {
      // RFC 9111 §5.2.1.7: nothing usable stored, and the client asked not to go further.
      return this.send(r, { status: 504, headers: { 'Content-Type': 'text/plain', 'Content-Length': '0', 'Cache-Status': `${NAME}; fwd=miss; detail=only-if-cached` }, body: EMPTY });
    }
    const passing = this.pass.passes(key);
    const fetch = new OriginFetch(this, r, key, verdict.kind === 'revalidate' ? found!.stored : null, fallback(variants, h), forwardReason(variants, h));
    if (passing) return this.fetch(r, fetch, verdict);
    if (!lock.acquire(key)) return watchedWait<WaitOutcome>(r, (then) => lock.wait(key, then), (outcome) => this.afterWait(r, fetch, verdict, outcome));
    fetch.locked = true;
    if (!lock.shared) return this.fetch(r, fetch, verdict);
    // Waiting for another instance's fetch: if this client leaves, this process's waiters go on without it.
    watchedWait<SharedOutcome>(
      r,
      (then) => lock.acquireShared(key, then),
      (outcome) => (outcome === 'acquired' ? this.fetch(r, fetch, verdict) : this.afterSharedWait(r, fetch, verdict, outcome)),
      () => lock.release(key),
    );
  }

  /** Another request's fetch of the key is over, or the wait for it timed out: a stale answer within grace when it failed, else the store again. */
  private afterWait(r: LeanRouteRequest, f: OriginFetch, verdict: Verdict, outcome: WaitOutcome): void {
    if (outcome !== 'done' && this.answerStale(r, f, outcome)) return;
    if (outcome === 'timeout') return this.fetch(r, f, verdict);
    this.lookUpAndAnswer(r, f.key);
  }

  /**
   * Another instance sharing the store fetched the key (or its lock timed
   * out): answer from the store if it now can, else fetch. This request
   * still holds the key's lock here, so this process's waiters follow it.
   */
  private afterSharedWait(r: LeanRouteRequest, f: OriginFetch, verdict: Verdict, outcome: 'done' | 'timeout'): void {
    const { lock, store } = this.shared;
    if (r.res.destroyed) return lock.release(f.key);
    if (outcome === 'timeout' && this.answerStale(r, f, outcome)) return lock.release(f.key, true);
    when(store.get(f.key), (variants) => {
      const found = lookup(variants, f.key, r.req.headers);
      if (r.res.destroyed) return lock.release(f.key);
      if (found === null || found.verdict.kind !== 'fresh') return this.fetch(r, f, verdict);
      this.send(r, this.hit(found.stored, r.req.method!, r.req.headers, ''));
      lock.release(f.key);
    });
  }

  /** Answers with the request's stale variant while it may still answer when the origin fails (grace); false when there is none. */
  private answerStale(r: LeanRouteRequest, f: OriginFetch, outcome: WaitOutcome): boolean {
    if (f.fallback === null || f.fallback.errorUntil <= Date.now()) return false;
    const detail = outcome === 'timeout' ? 'lock-timeout' : 'stale-if-error';
    this.send(r, this.hit(f.fallback, r.req.method!, r.req.headers, `; detail=${detail}`));
    return true;
  }

  /** `reuseKey`: the key of a store that answers at once, when the front may reuse a plain answer (MemoryResponse.reusableFor). */
  private hit(stored: StoredResponse, method: string, h: IncomingHttpHeaders, detail: string, reuseKey: string | null = null): MemoryResponse {
    const { age, ttl, steadyMs } = ageOf(stored);
    const plain = detail === '' && !hasClientOnly(h);
    const known = plain ? this.answers.get(stored) : undefined;
    if (known !== undefined && known.age === age && known.ttl === ttl && known.method === method) return known.answer;
    const answer = storedAnswer(stored, method, h, age, `${NAME}; hit; ttl=${ttl}${detail}`);
    if (!plain) return answer;
    const { store } = this.shared;
    if (reuseKey !== null && store.holds !== undefined) {
      answer.reuseUntil = performance.now() + steadyMs;
      answer.reusableFor = (other) => store.holds!(reuseKey, stored) && this.answersPlainly(stored, other);
    }
    this.answers.set(stored, { age, ttl, method, answer });
    return answer;
  }

  /** Whether a stored response answers a request with these headers as it is, with nothing asked of the origin or of the request's own rules. */
  private answersPlainly(stored: StoredResponse, h: IncomingHttpHeaders): boolean {
    if (h['cache-control'] !== undefined || h.pragma !== undefined || h['x-forwarded-proto'] !== undefined || h.forwarded !== undefined) return false;
    return !this.bypass(h) && stored.variant === variantOf(varyOf(stored), h);
  }

  /** Asks the inner handler; what it answers goes to the client (unless held back) and, if storable, to the store. */
  private fetch(r: LeanRouteRequest, f: OriginFetch, verdict: Verdict): void {
    const capture = new CaptureResponse(r.res, this.shared.maxObjectSize, f);
    const add = verdict.kind === 'revalidate' ? verdict.headers : NO_HEADERS;
    // A held answer is the cache's to log (send()); one passed on is logged as the client got it.
    const log: LeanRouteRequest['log'] = (status, bytes) => capture.holding || r.log(status, bytes);
    this.inner.serveLean({ ...r, req: originRequest(r.req, add), res: capture, body: null, log, reroute: captureReroute(r) });
  }

  /**
   * The origin answered with an X-Accel-Redirect: nothing is stored (the
   * key passes, as for any answer not storable, so that requests for it do
   * not wait on each other), and the client's request is routed again.
   */
  fetchRerouted(f: OriginFetch, accel: AccelRedirect): void {
    this.pass.add(f.key);
    if (f.locked) this.shared.lock.release(f.key);
    f.r.reroute!(f.r, accel);
  }

  /** The origin's head: held back when the cache answers instead, else passed on with what the cache does with it. */
  fetchHead(f: OriginFetch, status: number, headers: HeaderMap, accelExpires: string | undefined): { hold: boolean; cacheStatus: string } {
    if (status === 304 && f.revalidating !== null) return { hold: true, cacheStatus: '' };
    if (status >= 500 && f.fallback !== null) return { hold: true, cacheStatus: '' };
    const judged = toStore(f.key, f.r.req.headers, status, headers, EMPTY, this.settings, accelExpires);
    const length = headers['content-length'];
    const tooLarge = Number(length ?? 0) > this.shared.maxObjectSize;
    const storing = typeof judged === 'string' || tooLarge ? null : judged;
    f.storing = storing;
    const detail = typeof judged === 'string' ? `; detail=${judged}` : tooLarge ? '; detail=too-large' : '';
    // Without a Content-Length the body may still outgrow max_object_size: `stored` only when it is known now (RFC 9211 §2.5: a true value says it was).
    const stored = storing === null ? detail : length === undefined ? '' : '; stored';
    return { hold: f.r.req.method === 'HEAD', cacheStatus: `${NAME}; fwd=${f.fwd}; fwd-status=${status}${stored}` };
  }

  /** The origin's answer is over: stored (waiters look the store up once it is there), then the key's lock released. */
  fetchDone(f: OriginFetch, captured: Captured | null): void {
    // Failed: the origin broke off or answered 5xx (a client that left fails nothing).
    const failed = captured === null ? !f.r.res.destroyed : captured.status >= 500;
    when(this.fetched(f, captured), () => f.locked && this.shared.lock.release(f.key, failed));
  }

  /** The origin's answer is complete (or cut short): store it, and answer the client if the answer was held back. */
  private fetched(f: OriginFetch, captured: Captured | null): Maybe<unknown> {
    const { r, storing } = f;
    const h = r.req.headers;
    const method = r.req.method!;
    if (captured !== null && captured.status === 304 && f.revalidating !== null) {
      const renewed = refreshed(f.revalidating, f.key, h, captured.headers, this.settings, captured.accelExpires);
      if (typeof renewed === 'string') {
        this.send(r, storedAnswer(f.revalidating, method, h, 0, `${NAME}; fwd=${f.fwd}; fwd-status=304; detail=${renewed}`));
        return this.shared.store.delete(f.key);
      }
      this.send(r, storedAnswer(renewed, method, h, 0, `${NAME}; fwd=${f.fwd}; fwd-status=304; stored`));
      return this.shared.store.put(f.key, renewed);
    }
    if (captured === null || (captured.held && captured.status >= 500 && f.fallback !== null)) {
      // The client left (or its answer was under way when the origin broke off): no one to answer.
      if (r.res.destroyed || r.res.headersSent) return;
      // Its FIN cut the fetch of an answer held back (in-flight.ts cut the capture): the connection ends here.
      if (hasEnded(r.req.socket)) return r.res.destroy();
      if (f.fallback !== null) {
        const status = captured === null ? 'fwd-status=502' : `fwd-status=${captured.status}`;
        this.shared.logger.warning(`cache: ${f.key}: origin failed (${status}), answering with the stale response`);
        return this.send(r, this.hit(f.fallback, method, h, `; ${status}; detail=stale-if-error`));
      }
      if (captured === null) {
        r.log(502, sendPlain(r.res, 502, 'Bad Gateway', true, { 'Cache-Status': `${NAME}; fwd=${f.fwd}; detail=origin-failed` }));
      }
      return;
    }
    // The capture keeps no body past the maximum object size. `storing` was made for this fetch alone.
    const answer = storing !== null && captured.body !== null ? storing : null;
    if (answer !== null) {
      answer.body = captured.body!;
      this.pass.delete(f.key);
    } else {
      this.pass.add(f.key);
    }
    if (captured.held) {
      // HEAD: the origin was asked for the GET, the client gets its head.
      const cacheStatus = `${NAME}; fwd=${f.fwd}; fwd-status=${captured.status}${answer !== null ? '; stored' : ''}`;
      if (answer !== null) {
        this.send(r, storedAnswer(answer, method, h, 0, cacheStatus));
      } else {
        const headers = spelledHeaders(captured.headers);
        headers['Cache-Status'] = cacheStatus;
        if (captured.body !== null) headers['Content-Length'] = String(captured.body.length);
        this.send(r, { status: captured.status, headers, body: null });
      }
    }
    return answer === null ? undefined : this.shared.store.put(f.key, answer);
  }

  /** stale-while-revalidate: the inner handler answers a copy of the request with no client; the store gets the result. */
  private refreshInBackground(r: LeanRouteRequest, key: string, stale: StoredResponse): void {
    const h = r.req.headers;
    const validators: Record<string, string> = {};
    if (typeof stale.headers.etag === 'string') validators['if-none-match'] = stale.headers.etag;
    const capture = new CaptureResponse(null, this.shared.maxObjectSize, {
      head: () => ({ hold: true, cacheStatus: '' }),
      done: (captured) => {
        const release = () => this.shared.lock.release(key);
        if (captured === null || captured.body === null) return release();
        const result =
          captured.status === 304 ? refreshed(stale, key, h, captured.headers, this.settings, captured.accelExpires)
          : captured.status >= 500 ? 'origin-error'
          : toStore(key, h, captured.status, captured.headers, captured.body, this.settings, captured.accelExpires);
        if (typeof result !== 'string') return when(this.shared.store.put(key, result), release);
        this.shared.logger.debug(`cache: ${key}: background refresh not stored (${result})`);
        release();
      },
      // No client to redirect: the stale response stays until a request fetches the key.
      rerouted: () => this.shared.lock.release(key),
    });
    const req = originRequest(r.req, validators, detachedSocket(r.req.socket));
    this.inner.serveLean({ ...r, req, res: capture, body: null, log: () => {}, reroute: captureReroute(r) });
  }

  /** To the origin without the store; an unsafe method that succeeds invalidates the URL and its Location / Content-Location. */
  private forward(r: LeanRouteRequest, fwd: string): void {
    const unsafe = fwd === 'method';
    const capture = new CaptureResponse(r.res, 0, {
      head: () => ({ hold: false, cacheStatus: `${NAME}; fwd=${fwd}` }),
      done: (captured) => {
        if (unsafe && captured !== null && captured.status < 400) invalidate(r, captured.headers, this.shared.store, this.keyOf);
      },
      rerouted: (accel) => r.reroute!(r, accel),
    });
    this.inner.serveLean({ ...r, res: capture, reroute: captureReroute(r) });
  }

  /** Varnish's built-in rule (Authorization) and the route's bypass cookies and headers. */
  private bypass(h: IncomingHttpHeaders): boolean {
    if (h.authorization !== undefined) return true;
    const s = this.settings;
    for (const name of s.bypassHeaders) if (h[name] !== undefined) return true;
    if (s.bypassCookies.length > 0 && h.cookie !== undefined) {
      for (const name of s.bypassCookies) if (cookieValue(h.cookie, name) !== undefined) return true;
    }
    return false;
  }

  private readonly keyOf: KeyOf = (scheme, host, url, h) => {
    const template = this.settings.key;
    return cacheKey(template, { scheme, host, url, cookie: template === DEFAULT_KEY ? undefined : h.cookie });
  };

  private send(r: LeanRouteRequest, answer: MemoryResponse): void {
    const res: HttpResponse = r.res;
    if (res.destroyed || res.headersSent) return;
    res.writeHead(answer.status, STATUS_CODES[answer.status] ?? '', answer.headers);
    res.end(answer.body ?? undefined);
    r.log(answer.status, answer.body?.length ?? 0);
  }
}
