/**
 * A client's preconditions evaluated against a response the server has in
 * hand (the cache's stored one, a static file's), in RFC 9110 §13.2.2's
 * order: If-Match (else If-Unmodified-Since) may fail with 412, then
 * If-None-Match (else If-Modified-Since) may answer 304. nginx does the same
 * for the responses it answers from its cache. Only for a 2xx: a recipient
 * ignores preconditions on any other status.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The response's validators (lower-case names). */
type Validators = { etag?: string | string[] | undefined; 'last-modified'?: string | string[] | undefined };

/** Whether an If-Match / If-None-Match list names `etag` (strong: weak tags never match). */
function listed(list: string, etag: string | undefined, strong: boolean): boolean {
  if (etag === undefined) return false;
  if (list.trim() === '*') return true;
  if (strong && etag.startsWith('W/')) return false;
  const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  return list.split(',').some((t) => {
    const tag = t.trim();
    return strong ? tag === etag : opaque(tag) === opaque(etag);
  });
}

function dateOf(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** 412 or 304 when a precondition decides the answer; null: answer with the stored response. */
export function preconditionStatus(status: number, headers: Validators, req: IncomingHttpHeaders): 304 | 412 | null {
  if (status < 200 || status > 299) return null;
  const { 'if-match': ifMatch, 'if-none-match': ifNoneMatch } = req;
  // The common case, on the cache's hit path: no preconditions, no date parsed.
  if (ifMatch === undefined && ifNoneMatch === undefined && req['if-unmodified-since'] === undefined && req['if-modified-since'] === undefined) return null;
  const etag = typeof headers.etag === 'string' ? headers.etag : undefined;
  const lastModified = dateOf(headers['last-modified']);
  if (ifMatch !== undefined) {
    if (!listed(ifMatch, etag, true)) return 412;
  } else {
    const since = dateOf(req['if-unmodified-since']);
    if (since !== undefined && lastModified !== undefined && lastModified > since) return 412;
  }
  if (ifNoneMatch !== undefined) return listed(ifNoneMatch, etag, false) ? 304 : null;
  const since = dateOf(req['if-modified-since']);
  return since !== undefined && lastModified !== undefined && lastModified <= since ? 304 : null;
}
