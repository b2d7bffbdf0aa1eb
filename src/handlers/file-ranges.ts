/**
 * A Range asking for several parts of a static file: one multipart/byteranges
 * 206, as nginx answers it and as the cache answers it from a stored
 * response (send, which does a file's other ranges, answers several with
 * the whole file). Overlapping and adjacent ranges are combined first; what
 * is then one range, and a request whose preconditions or If-Range decide
 * otherwise, stays with send.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import parseRange from 'range-parser';
import { ifRangeHolds, multipartBody, multipartRanges, type ByteRange } from '../http/byte-ranges.js';
import { readFileRegion } from '../http/file-region.js';
import type { RouteRequest } from '../http/handler.js';
import { preconditionStatus } from '../http/preconditions.js';
import type { CachedFile } from './file-cache.js';

/** The ranges of `file` a request asks for when they are several, else null. */
function severalRanges(r: RouteRequest, file: CachedFile): ByteRange[] | null {
  const h = r.req.headers;
  if (h.range === undefined || file.stats === null) return null;
  const validators = { etag: file.etag, 'last-modified': file.lastModified };
  if (preconditionStatus(200, validators, h) !== null || !ifRangeHolds(h['if-range'], file.etag, file.lastModified)) return null;
  const ranges = parseRange(file.stats.size, h.range, { combine: true });
  return ranges === -1 || ranges === -2 || ranges.type !== 'bytes' || ranges.length < 2 ? null : ranges;
}

/** Answers with the multipart 206 and returns true, or returns false and leaves the request to send. */
export function sendRanges(r: RouteRequest, file: CachedFile, headers: OutgoingHttpHeaders): boolean {
  const ranges = severalRanges(r, file);
  if (ranges === null) return false;
  const { req, res } = r;
  const parts = multipartRanges(ranges, file.stats!.size, file.type);
  res.writeHead(206, { ...headers, 'Accept-Ranges': 'bytes', 'Last-Modified': file.lastModified, ETag: file.etag, 'Content-Type': parts.contentType, 'Content-Length': parts.length });
  if (req.method === 'HEAD') {
    res.end();
    r.log(206, 0);
  } else if (file.body !== null) {
    const body = multipartBody(parts, ranges, file.body);
    res.end(body);
    r.log(206, body.length);
  } else {
    // From disk: each part's head, then its bytes, one region after another.
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < ranges!.length; i++) {
        yield parts.heads[i]!;
        for await (const chunk of readFileRegion(file.real, ranges![i]!.start, ranges![i]!.end)) yield chunk as Buffer;
      }
      yield parts.tail;
    }
    pipeline(Readable.from(body()), res, (err) => {
      if (err) res.destroy();
      r.log(206, err ? 0 : parts.length);
    });
  }
  return true;
}
