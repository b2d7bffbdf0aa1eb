/**
 * A whole static file as the response, from memory or from disk: 200, 304
 * when the client's copy is fresh, HEAD without the body; compressed on the
 * way when asked. The headers are send's (Content-Type, ETag, Last-Modified,
 * Accept-Ranges), so a file looks the same whichever path served it; ranges
 * and If-Match / If-Unmodified-Since stay with send.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import fresh from 'fresh';
import { compressSync, createEncoder, type Coding } from '../http/compression.js';
import { readFileRegion } from '../http/file-region.js';
import type { CachedFile, FileCache } from './file-cache.js';
import type { MemoryResponse, RequestHead, RouteRequest } from '../http/handler.js';

export interface WholeFile {
  /** The file's own Content-Type (a precompressed sibling has the original's). */
  type: string;
  cacheControl: string;
  /** Seconds: an Expires header that far ahead. */
  expires: number | undefined;
  /** The response varies with Accept-Encoding. */
  vary: boolean;
  /** Content-Encoding: the coding of a precompressed sibling (`file` is then the sibling), or one to compress with now. */
  coding: Coding | null;
  precompressed: boolean;
}

/** The route's caching headers, and Vary when the file's response depends on Accept-Encoding: the same on every path a file takes. */
export function cachingHeaders(how: Pick<WholeFile, 'cacheControl' | 'expires' | 'vary'>): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { 'Cache-Control': how.cacheControl };
  if (how.expires !== undefined) headers.Expires = new Date(Date.now() + how.expires * 1000).toUTCString();
  if (how.vary) headers.Vary = 'Accept-Encoding';
  return headers;
}

/** What a whole file's response is, before anything is written. */
export interface WholeFileResponse extends MemoryResponse {
  status: 200 | 304;
  /** Read the body from disk (the file is not in memory): its length, and the coding to compress it with on the way. */
  fromDisk: { length: number; coding: Coding | null } | null;
}

/**
 * The response to `head` for `file`: 304 when the client's copy is fresh,
 * the body from memory (compressed form kept in the cache) or else from
 * disk, none for HEAD. sendWholeFile writes it; the fast path (fast-path.ts)
 * takes it when it is all in memory.
 */
export function wholeFileResponse(head: RequestHead, file: CachedFile, how: WholeFile, cache: FileCache): WholeFileResponse {
  const headers: OutgoingHttpHeaders = {
    'Accept-Ranges': 'bytes',
    ...cachingHeaders(how),
    'Last-Modified': file.lastModified,
    ETag: file.etag,
  };
  if (fresh(head.headers, { etag: file.etag, 'last-modified': file.lastModified })) return { status: 304, headers, body: null, fromDisk: null };
  headers['Content-Type'] = how.type;
  let body = file.body;
  let coding = how.coding;
  if (coding !== null && !how.precompressed) {
    if (head.method === 'HEAD' || (body === null && head.httpVersion === '1.0')) {
      // HEAD is not compressed (as nginx); a body compressed from disk has no known length, which HTTP/1.0 needs.
      coding = null;
    } else if (body !== null) {
      const encoded = encodedBody(file, body, coding, cache);
      // Not worth it (a text file of already compressed data): as it is.
      if (encoded.length < body.length) body = encoded;
      else coding = null;
    }
  }
  const length = file.stats!.size;
  if (coding !== null) headers['Content-Encoding'] = coding;
  // Compressed here: ranges of this form are not on offer (nginx drops the header too), and a stream's length is unknown.
  if (coding !== null && !how.precompressed) delete headers['Accept-Ranges'];
  if (coding === null || how.precompressed || body !== null) headers['Content-Length'] = body?.length ?? length;
  if (head.method === 'HEAD' || length === 0) return { status: 200, headers, body: null, fromDisk: null };
  if (body !== null) return { status: 200, headers, body, fromDisk: null };
  return { status: 200, headers, body: null, fromDisk: { length, coding: how.precompressed ? null : coding } };
}

export function sendWholeFile(r: RouteRequest, file: CachedFile, how: WholeFile, cache: FileCache): void {
  const { res } = r;
  const answer = wholeFileResponse(r.req, file, how, cache);
  res.writeHead(answer.status, answer.headers);
  const disk = answer.fromDisk;
  if (disk === null) {
    res.end(answer.body ?? undefined);
    return r.log(answer.status, answer.body?.length ?? 0);
  }
  // From disk: what the stat saw, no more (the file may be growing).
  const stream = readFileRegion(file.real, 0, disk.length - 1);
  const encoder = disk.coding === null ? null : createEncoder(disk.coding, disk.length);
  let bytes = 0;
  const last: Readable = encoder ?? stream;
  last.on('data', (chunk: Buffer) => (bytes += chunk.length));
  const done = (err: Error | null) => {
    if (err) res.destroy();
    r.log(200, bytes);
  };
  if (encoder === null) pipeline(stream, res, done);
  else pipeline(stream, encoder, res, done);
}

function encodedBody(file: CachedFile, body: Buffer, coding: Coding, cache: FileCache): Buffer {
  let encoded = file.encoded[coding];
  if (encoded === undefined) {
    encoded = compressSync(coding, body);
    cache.addEncoded(file, coding, encoded);
  }
  return encoded;
}
