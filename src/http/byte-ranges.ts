/**
 * A multipart/byteranges body (RFC 9110 §14.6): the answer to a Range that
 * asks for several parts, as nginx gives it (the cache, static files); and
 * If-Range. Each part carries the
 * representation's Content-Type and its Content-Range; the boundary is
 * random, so it cannot be guessed to occur in the data.
 */
import { randomBytes } from 'node:crypto';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** Whether an If-Range allows the range for a response: its strong ETag, or its Last-Modified date exactly. */
export function ifRangeHolds(ifRange: string | string[] | undefined, etag: string | string[] | undefined, lastModified: string | string[] | undefined): boolean {
  if (ifRange === undefined) return true;
  if (typeof ifRange !== 'string') return false;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return typeof etag === 'string' && !etag.startsWith('W/') && etag === ifRange;
  return typeof lastModified === 'string' && lastModified === ifRange;
}

export interface MultipartRanges {
  /** `multipart/byteranges; boundary=...` */
  contentType: string;
  /** What goes before each range's bytes (a head per range, in order), and after the last. */
  heads: Buffer[];
  tail: Buffer;
  /** The whole body's length. */
  length: number;
}

export function multipartRanges(ranges: readonly ByteRange[], total: number, type: string | undefined): MultipartRanges {
  const boundary = randomBytes(12).toString('hex');
  const typeLine = type === undefined ? '' : `Content-Type: ${type}\r\n`;
  const heads = ranges.map((r, i) =>
    Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${typeLine}Content-Range: bytes ${r.start}-${r.end}/${total}\r\n\r\n`, 'latin1'),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  let length = tail.length;
  for (let i = 0; i < ranges.length; i++) length += heads[i]!.length + ranges[i]!.end - ranges[i]!.start + 1;
  return { contentType: `multipart/byteranges; boundary=${boundary}`, heads, tail, length };
}

/** The multipart body of `ranges` of a body held in memory. */
export function multipartBody(parts: MultipartRanges, ranges: readonly ByteRange[], body: Buffer): Buffer {
  const pieces: Buffer[] = [];
  ranges.forEach((r, i) => pieces.push(parts.heads[i]!, body.subarray(r.start, r.end + 1)));
  pieces.push(parts.tail);
  return Buffer.concat(pieces, parts.length);
}
