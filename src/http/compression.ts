/**
 * Response compression (gzip and br), for app responses and static files
 * alike, with the rules of nginx's gzip and Caddy's encode: the client's
 * Accept-Encoding picks the coding, only text-like types are worth it, and a
 * response that varies with Accept-Encoding says so (Vary).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync, type BrotliCompress, type BrotliOptions, type Gzip } from 'node:zlib';
import type { COMPRESSIONS } from '../config/schema.js';

export type Coding = (typeof COMPRESSIONS)[number];

/** Quality 4 costs about what gzip -6 does and gives 5–25% smaller bodies (measured on JSON of 1–64 KiB). */
const BROTLI_QUALITY = 4;
const GZIP_LEVEL = 6;
/**
 * Whole bodies up to this size are compressed at once on the main thread
 * (under a millisecond), which is cheaper than a zlib stream's trip through
 * the thread pool: a 20 KiB JSON app response went at 2200 req/s (br) and
 * 2700 (gzip) this way, 1460 and 1120 through a stream. Larger bodies go
 * through a stream, so the event loop is never held long.
 */
export const SYNC_LIMIT = 64 * 1024;

/** Media types worth compressing besides text/*, +json and +xml (as the mime database marks them compressible). */
const COMPRESSIBLE = new Set([
  'application/json',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/xml',
  'application/wasm',
  'application/x-ndjson',
  'application/vnd.ms-fontobject',
  'application/x-font-ttf',
  'font/ttf',
  'font/otf',
  'image/bmp',
  'image/x-icon',
  'image/vnd.microsoft.icon',
]);

/** Whether a response of this Content-Type is worth compressing (never images, video, archives; never an event stream, which must flow as written). */
export function compressible(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type.startsWith('text/')) return type !== 'text/event-stream';
  return COMPRESSIBLE.has(type) || type.endsWith('+json') || type.endsWith('+xml');
}

/**
 * The codings a client takes, by its Accept-Encoding header: those we offer
 * with a q above 0 (an explicit entry, else `*`), highest q first, ties in
 * our order. Not named, or q=0: not acceptable.
 */
export function acceptedCodings(header: string, offered: readonly Coding[]): Coding[] {
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const semi = part.indexOf(';');
    let name = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip'; // RFC 9110 8.4.1.3: the same coding
    let weight = 1;
    if (semi >= 0) {
      const m = /(?:^|;)\s*q\s*=\s*([0-9.]+)\s*(?:;|$)/i.exec(part.slice(semi));
      weight = m ? Number(m[1]) : 1;
      if (!(weight >= 0 && weight <= 1)) weight = 0; // a malformed weight accepts nothing
    }
    q.set(name, Math.max(weight, q.get(name) ?? 0));
  }
  const weight = (coding: Coding) => q.get(coding) ?? q.get('*') ?? 0;
  // A stable sort: equal weights keep our order.
  return offered.filter((c) => weight(c) > 0).sort((a, b) => weight(b) - weight(a));
}

/** A Vary value that names Accept-Encoding, added to what was there (left alone when it has it or is `*`). */
export function varyWithAcceptEncoding(vary: string | undefined): string {
  if (vary === undefined || vary.trim() === '') return 'Accept-Encoding';
  const names = vary.split(',').map((v) => v.trim().toLowerCase());
  return names.includes('accept-encoding') || names.includes('*') ? vary : `${vary}, Accept-Encoding`;
}

/** Cache-Control: no-transform forbids changing the body's coding. */
export function noTransform(cacheControl: string | undefined): boolean {
  return cacheControl !== undefined && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cacheControl);
}

/** A compressed body is not byte-for-byte the one a strong ETag named: the tag becomes weak (as nginx does). */
export function weakEtag(etag: string): string {
  return etag.startsWith('W/') ? etag : `W/${etag}`;
}

function brotliOptions(sizeHint: number | undefined): BrotliOptions {
  const params: Record<number, number> = { [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY };
  if (sizeHint !== undefined) params[constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
  return { params };
}

/** The server's compression settings, and the client's choice (the last Accept-Encoding seen is remembered: clients repeat theirs). */
export class Compression {
  private lastHeader: string | undefined;
  private lastAccepted: readonly Coding[] = [];

  constructor(
    /** Codings offered, in our order of preference. */
    readonly codings: readonly Coding[],
    /** Smaller bodies are sent as they are. */
    readonly minSize: number,
  ) {}

  /** The coding this client gets for a body of ours, or null (as it is). */
  choose(req: { headers: IncomingHttpHeaders }): Coding | null {
    return this.accepted(req)[0] ?? null;
  }

  /** The codings this client takes, best first. */
  accepted(req: { headers: IncomingHttpHeaders }): readonly Coding[] {
    const header = req.headers['accept-encoding'];
    if (header === undefined) return [];
    if (header !== this.lastHeader) {
      this.lastAccepted = acceptedCodings(header, this.codings);
      this.lastHeader = header;
    }
    return this.lastAccepted;
  }
}

/** Compresses a whole body at once (up to SYNC_LIMIT: see there). */
export function compressSync(coding: Coding, body: Buffer): Buffer {
  return coding === 'br' ? brotliCompressSync(body, brotliOptions(body.length)) : gzipSync(body, { level: GZIP_LEVEL });
}

export type Encoder = Gzip | BrotliCompress;

/** A compressing stream; `sizeHint` (the body's length, when known) lets brotli size its buffers. */
export function createEncoder(coding: Coding, sizeHint?: number): Encoder {
  return coding === 'br' ? createBrotliCompress(brotliOptions(sizeHint)) : createGzip({ level: GZIP_LEVEL });
}

/** Pushes out what the encoder holds so far, without resetting its dictionary (gzip's default flush would). */
export function flushEncoder(encoder: Encoder, coding: Coding): void {
  encoder.flush(coding === 'br' ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH);
}

const kFlushQueued = Symbol('gatehouse.flushQueued');

/**
 * What an app or back end streams slowly (progress, a page in parts) must
 * not wait in the encoder: flushed once this turn's chunks are in.
 */
export function flushSoon(encoder: Encoder, coding: Coding): void {
  const e = encoder as Encoder & { [kFlushQueued]?: boolean };
  if (e[kFlushQueued] === true) return;
  e[kFlushQueued] = true;
  setImmediate(() => {
    e[kFlushQueued] = false;
    if (!e.writableEnded && !e.destroyed) flushEncoder(e, coding);
  });
}
