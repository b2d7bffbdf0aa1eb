/**
 * The answer to a client from a stored response: the whole of it, or a 304
 * to the client's own If-None-Match / If-Modified-Since, or the part a Range
 * asks for (206, or 416 past the end), for GET and HEAD alike; with `Age`
 * and `Cache-Status`.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import fresh from 'fresh';
import parseRange from 'range-parser';
import type { MemoryResponse } from '../http/handler.js';
import type { StoredResponse } from './cache-policy.js';

/** The headers a 304 carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS = ['etag', 'cache-control', 'content-location', 'expires', 'vary', 'last-modified'];

/** Whether an If-Range allows the range for this response: its strong ETag, or its Last-Modified date exactly. */
function ifRangeHolds(ifRange: string | undefined, headers: StoredResponse['headers']): boolean {
  if (ifRange === undefined) return true;
  const etag = headers.etag;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return typeof etag === 'string' && !etag.startsWith('W/') && etag === ifRange;
  return typeof headers['last-modified'] === 'string' && headers['last-modified'] === ifRange;
}

export function storedAnswer(stored: StoredResponse, method: string, req: IncomingHttpHeaders, age: number, cacheStatus: string): MemoryResponse {
  const headers: OutgoingHttpHeaders = {};
  const body = stored.body;
  if (stored.status === 200 && (req['if-none-match'] !== undefined || req['if-modified-since'] !== undefined)) {
    const validators = { etag: stored.headers.etag as string | undefined, 'last-modified': stored.headers['last-modified'] as string | undefined };
    if (fresh(req, validators)) {
      for (const name of NOT_MODIFIED_HEADERS) if (stored.headers[name] !== undefined) headers[name] = stored.headers[name];
      headers.age = String(age);
      headers['cache-status'] = cacheStatus;
      return { status: 304, headers, body: null };
    }
  }
  Object.assign(headers, stored.headers);
  headers.age = String(age);
  headers['cache-status'] = cacheStatus;
  const range = req.range;
  if (stored.status === 200 && range !== undefined && (method === 'GET' || method === 'HEAD') && ifRangeHolds(req['if-range'] as string | undefined, stored.headers)) {
    const ranges = parseRange(body.length, range, { combine: true });
    if (ranges === -1) {
      headers['content-range'] = `bytes */${body.length}`;
      headers['content-length'] = '0';
      return { status: 416, headers, body: method === 'HEAD' ? null : Buffer.alloc(0) };
    }
    // One range only; several (multipart/byteranges) get the whole response, as RFC 9110 allows.
    if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
      const { start, end } = ranges[0]!;
      headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
      headers['content-length'] = String(end - start + 1);
      return { status: 206, headers, body: method === 'HEAD' ? null : body.subarray(start, end + 1) };
    }
  }
  headers['content-length'] = String(body.length);
  return { status: stored.status, headers, body: method === 'HEAD' ? null : body };
}
