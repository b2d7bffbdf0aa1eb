/**
 * The answer to a client from a stored response: the whole of it, or what
 * the client's preconditions decide (304, 412: preconditions.ts), or the
 * part a Range asks for (206, multipart/byteranges for several ranges, or
 * 416 past the end), for GET and HEAD alike; with `Age` and `Cache-Status`.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import parseRange from 'range-parser';
import { ifRangeHolds, multipartBody, multipartRanges } from '../http/byte-ranges.js';
import { displayName } from '../http/header-name.js';
import type { MemoryResponse } from '../http/handler.js';
import { preconditionStatus } from '../http/preconditions.js';
import type { StoredResponse } from './cache-policy.js';
import type { HeaderMap } from './capture-response.js';

/** The headers a 304 carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS = ['etag', 'cache-control', 'content-location', 'expires', 'vary', 'last-modified'];
const PRECONDITION_FAILED = Buffer.from('Precondition Failed\n');

/** A copy of `map` (lower-case names, as the store and the capture keep them) with its names spelled as the origin's usually are. */
export function spelledHeaders(map: HeaderMap): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const name in map) headers[displayName(name)] = map[name];
  return headers;
}

/** The answer; its header names spelled as the origin's usually are (the store keeps them in lower case). */
export function storedAnswer(stored: StoredResponse, method: string, req: IncomingHttpHeaders, age: number, cacheStatus: string): MemoryResponse {
  const body = stored.body;
  const decided = preconditionStatus(stored.status, stored.headers, req);
  if (decided === 304) {
    const headers: OutgoingHttpHeaders = {};
    for (const name of NOT_MODIFIED_HEADERS) if (stored.headers[name] !== undefined) headers[displayName(name)] = stored.headers[name];
    headers.Age = String(age);
    headers['Cache-Status'] = cacheStatus;
    return { status: 304, headers, body: null };
  }
  if (decided === 412) {
    const plain = { 'Content-Type': 'text/plain', 'Content-Length': String(PRECONDITION_FAILED.length), 'Cache-Status': cacheStatus };
    return { status: 412, headers: plain, body: method === 'HEAD' ? null : PRECONDITION_FAILED };
  }
  const headers = spelledHeaders(stored.headers);
  headers.Age = String(age);
  headers['Cache-Status'] = cacheStatus;
  const range = req.range;
  if (stored.status === 200 && range !== undefined && (method === 'GET' || method === 'HEAD') && ifRangeHolds(req['if-range'], stored.headers.etag, stored.headers['last-modified'])) {
    const ranges = parseRange(body.length, range, { combine: true });
    if (ranges === -1) {
      headers['Content-Range'] = `bytes */${body.length}`;
      headers['Content-Length'] = '0';
      return { status: 416, headers, body: method === 'HEAD' ? null : Buffer.alloc(0) };
    }
    if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
      const { start, end } = ranges[0]!;
      headers['Content-Range'] = `bytes ${start}-${end}/${body.length}`;
      headers['Content-Length'] = String(end - start + 1);
      return { status: 206, headers, body: method === 'HEAD' ? null : body.subarray(start, end + 1) };
    }
    if (ranges !== -2 && ranges.type === 'bytes') {
      // Several ranges (after overlapping and adjacent ones are combined): multipart/byteranges, as nginx.
      const parts = multipartRanges(ranges, body.length, stored.headers['content-type'] as string | undefined);
      headers['Content-Type'] = parts.contentType;
      headers['Content-Length'] = String(parts.length);
      return { status: 206, headers, body: method === 'HEAD' ? null : multipartBody(parts, ranges, body) };
    }
  }
  headers['Content-Length'] = String(body.length);
  return { status: stored.status, headers, body: method === 'HEAD' ? null : body };
}
