/**
 * A whole static file as the response, from memory or from disk: 200, 304
 * when the client's copy is fresh, HEAD without the body; compressed on the
 * way when asked. The headers are send's (Content-Type, ETag, Last-Modified,
 * Accept-Ranges), so a file looks the same whichever path served it; ranges
 * and If-Match / If-Unmodified-Since stay with send.
 */
import { createReadStream } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import fresh from 'fresh';
import { compressSync, createEncoder, type Coding } from '../front/compression.js';
import type { CachedFile, FileCache } from './file-cache.js';
import type { RouteRequest } from './handler.js';

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

export function sendWholeFile(r: RouteRequest, file: CachedFile, how: WholeFile, cache: FileCache): void {
  const { req, res } = r;
  const headers: OutgoingHttpHeaders = {
    'Accept-Ranges': 'bytes',
    ...cachingHeaders(how),
    'Last-Modified': file.lastModified,
    ETag: file.etag,
  };
  if (fresh(req.headers, { etag: file.etag, 'last-modified': file.lastModified })) {
    res.writeHead(304, headers);
    res.end();
    return r.log(304, 0);
  }
  headers['Content-Type'] = how.type;
  let body = file.body;
  let coding = how.coding;
  if (coding !== null && !how.precompressed) {
    if (req.method === 'HEAD' || (body === null && req.httpVersion === '1.0')) {
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
  res.writeHead(200, headers);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return r.log(200, 0);
  }
  if (body !== null) {
    res.end(body);
    return r.log(200, body.length);
  }
  // From disk: what the stat saw, no more (the file may be growing).
  const stream = createReadStream(file.real, { start: 0, end: length - 1 });
  const encoder = coding === null || how.precompressed ? null : createEncoder(coding, length);
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
