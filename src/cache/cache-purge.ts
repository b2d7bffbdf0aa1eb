/**
 * Taking responses out of the cache: PURGE from an allowed address (a URL,
 * a tag, everything), and the invalidation an unsafe method that succeeded
 * causes (RFC 9111 §4.4).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { LeanRouteRequest } from '../http/handler.js';
import { sendPlain } from '../http/plain-response.js';
import type { HeaderMap } from './capture-response.js';
import { when, type CacheStore } from './cache-store.js';
import type { PeerList } from '../http/peer-list.js';

/** The route's key rule. */
export type KeyOf = (scheme: string, host: string, url: string, h: IncomingHttpHeaders) => string;

/**
 * PURGE: the URL's stored responses; with a Cache-Tag request header, every
 * response carrying one of its tags; with `Cache-Flush: all`, everything.
 */
export function purge(r: LeanRouteRequest, access: PeerList, store: CacheStore, keyOf: KeyOf): void {
  const { req, res } = r;
  const answer = (status: number, text: string) => r.log(status, sendPlain(res, status, text, false));
  if (!access.hasPeer(req.socket.remoteAddress)) return answer(403, 'Forbidden');
  const tags = req.headers['cache-tag'];
  if (req.headers['cache-flush'] === 'all') return when(store.flush(), () => answer(200, 'Flushed'));
  if (typeof tags === 'string') {
    const counts = tags.split(/[\s,]+/).filter((t) => t !== '').map((tag) => store.deleteTag(tag));
    return void Promise.all(counts).then((n) => answer(200, n.includes(null) ? 'Purged' : `Purged ${n.reduce<number>((a, b) => a + (b ?? 0), 0)}`));
  }
  const key = keyOf(r.scheme, r.host, req.url ?? '/', req.headers);
  when(store.delete(key), (found) => (found ? answer(200, 'Purged') : answer(404, 'Not in cache')));
}

/** After an unsafe method succeeded: drops the request's URL and its response's Location / Content-Location. */
export function invalidate(r: LeanRouteRequest, response: HeaderMap, store: CacheStore, keyOf: KeyOf): void {
  const targets = [r.req.url ?? '/'];
  for (const name of ['location', 'content-location']) {
    const value = response[name];
    if (typeof value === 'string') targets.push(value);
  }
  const base = `${r.scheme}://${r.req.headers.host ?? r.host}`;
  for (const target of targets) {
    let url: URL;
    try {
      url = new URL(target, `${base}/`);
    } catch {
      continue;
    }
    // Another origin's URL is left alone (RFC 9111 §4.4).
    if (url.origin === new URL(base).origin) void store.delete(keyOf(r.scheme, r.host, url.pathname + url.search, r.req.headers));
  }
}
