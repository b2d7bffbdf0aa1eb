/**
 * The compression decision for an app response, taken on the head block the
 * worker sent (`[status line, name, value, name, value, ...]`) and written
 * into it, so the response goes out with the headers it needs.
 */
import type { RequestHead } from './handler.js';
import { compressible, noTransform, varyWithAcceptEncoding, weakEtag, type Coding, type Compression } from './compression.js';

/**
 * Returns the coding to apply, or null. A response compression concerns
 * (a compressible type, not encoded, no range, no no-transform, not known to
 * be smaller than the minimum) gets Vary: Accept-Encoding whatever the
 * client asked; when it is compressed it also gets Content-Encoding, a weak
 * ETag, and loses Content-Length and Accept-Ranges (the caller sets the new
 * length when it knows it).
 *
 * `length` is the body's size when the caller knows it (a Content-Length in
 * the head counts first); `streamed` says the compressed body's length will
 * not be known, so it goes chunked, which HTTP/1.0 clients do not have.
 */
export function compressHead(head: string[], z: Compression, req: RequestHead, length: number | undefined, streamed: boolean): Coding | null {
  const status = Number(head[0]!.slice(0, 3));
  if (status < 200 || status === 204 || status === 206 || status === 304) return null;
  let type: string | undefined;
  let lengthAt = -1;
  let varyAt = -1;
  let etagAt = -1;
  let rangesAt = -1;
  for (let i = 1; i < head.length; i += 2) {
    switch (head[i]!.toLowerCase()) {
      case 'content-type':
        type = head[i + 1];
        break;
      case 'content-encoding':
      case 'content-range':
        return null;
      case 'cache-control':
        if (noTransform(head[i + 1])) return null;
        break;
      case 'content-length':
        lengthAt = i;
        break;
      case 'vary':
        if (varyAt < 0) varyAt = i;
        break;
      case 'etag':
        etagAt = i;
        break;
      case 'accept-ranges':
        rangesAt = i;
        break;
    }
  }
  if (!compressible(type)) return null;
  const size = lengthAt >= 0 ? Number(head[lengthAt + 1]) : length;
  if (size !== undefined && size < z.minSize) return null;
  if (varyAt >= 0) head[varyAt + 1] = varyWithAcceptEncoding(head[varyAt + 1]);
  else head.push('Vary', 'Accept-Encoding');
  if (req.method === 'HEAD' || (streamed && req.httpVersion === '1.0')) return null;
  const coding = z.choose(req);
  if (coding === null) return null;
  if (etagAt >= 0) head[etagAt + 1] = weakEtag(head[etagAt + 1]!);
  // Remove the later one first, so the other's index still holds.
  for (const at of [lengthAt, rangesAt].sort((a, b) => b - a)) if (at >= 0) head.splice(at, 2);
  head.push('Content-Encoding', coding);
  return coding;
}
