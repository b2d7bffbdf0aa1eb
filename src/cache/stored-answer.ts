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

/** The headers a 304 carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS = ['etag', 'cache-control', 'content-location', 'expires', 'vary', 'last-modified'];
const PRECONDITION_FAILED = Buffer.from('Precondition Failed\n');

/** The answer, its header names spelled as the origin's usually are (the store keeps them in lower case). */
export function storedAnswer(stored: StoredResponse, method: string, req: IncomingHttpHeaders, age: number, cacheStatus: string): MemoryResponse {
  const answer = answerOf(stored, method, req, age, cacheStatus);
  const headers: OutgoingHttpHeaders = {};
  for (const name in answer.headers) headers[displayName(name)] = answer.headers[name];
  return { ...answer, headers };
}

function answerOf(stored: StoredResponse, method: string, req: IncomingHttpHeaders, age: number, cacheStatus: string): MemoryResponse {
  const headers: OutgoingHttpHeaders = {};
  const body = stored.body;
  const decided = preconditionStatus(stored.status, stored.headers, req);
  if (decided === 304) {
    for (const name of NOT_MODIFIED_HEADERS) if (stored.headers[name] !== undefined) headers[name] = stored.headers[name];
    headers.age = String(age);
    headers['cache-status'] = cacheStatus;
    return { status: 304, headers, body: null };
  }
  if (decided === 412) {
    const plain = { 'content-type': 'text/plain', 'content-length': String(PRECONDITION_FAILED.length), 'cache-status': cacheStatus };
    return { status: 412, headers: plain, body: method === 'HEAD' ? null : PRECONDITION_FAILED };
  }
  Object.assign(headers, stored.headers);
  headers.age = String(age);
  headers['cache-status'] = cacheStatus;
  const range = req.range;
  if (stored.status === 200 && range !== undefined && (method === 'GET' || method === 'HEAD') && ifRangeHolds(req['if-range'], stored.headers.etag, stored.headers['last-modified'])) {
    const ranges = parseRange(body.length, range, { combine: true });
    if (ranges === -1) {
      headers['content-range'] = `bytes */${body.length}`;
      headers['content-length'] = '0';
      return { status: 416, headers, body: method === 'HEAD' ? null : Buffer.alloc(0) };
    }
    if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
      const { start, end } = ranges[0]!;
      headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
      headers['content-length'] = String(end - start + 1);
      return { status: 206, headers, body: method === 'HEAD' ? null : body.subarray(start, end + 1) };
    }
    if (ranges !== -2 && ranges.type === 'bytes') {
      // Several ranges (after overlapping and adjacent ones are combined): multipart/byteranges, as nginx.
      const parts = multipartRanges(ranges, body.length, stored.headers['content-type'] as string | undefined);
      headers['content-type'] = parts.contentType;
      headers['content-length'] = String(parts.length);
      return { status: 206, headers, body: method === 'HEAD' ? null : multipartBody(parts, ranges, body) };
    }
  }
  headers['content-length'] = String(body.length);
  return { status: stored.status, headers, body: method === 'HEAD' ? null : body };
}
