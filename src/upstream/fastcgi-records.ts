/**
 * The FastCGI 1.0 record codec: records (8-byte header, content up to 65535
 * bytes, padding to a multiple of 8) and name-value pairs (lengths in 1
 * byte below 128, else 4 bytes with the high bit set).
 *
 * Written here because no npm package fits: `fastcgi-client` opens a
 * connection per request and buffers whole responses (no FCGI_KEEP_CONN
 * pool, no backpressure), `node-fastcgi` is the application side, and
 * `fastcgi-stream` depends on the unmaintained `bufferlist`; the codec
 * itself is small.
 */

import { writeLatin1 } from '../wire/block-writer.js';

export const FCGI = {
  BEGIN_REQUEST: 1,
  ABORT_REQUEST: 2,
  END_REQUEST: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  DATA: 8,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
  UNKNOWN_TYPE: 11,
} as const;

export const FCGI_RESPONDER = 1;
export const FCGI_KEEP_CONN = 1;
/** END_REQUEST protocol status values. */
export const FCGI_REQUEST_COMPLETE = 0;
export const FCGI_CANT_MPX_CONN = 1;
export const FCGI_OVERLOADED = 2;
export const FCGI_UNKNOWN_ROLE = 3;

const MAX_CONTENT = 0xffff;

export interface FcgiRecord {
  type: number;
  requestId: number;
  content: Buffer;
}

/** Writes a record header at `at`; the content follows it, then `padding` bytes. */
function writeHeader(out: Buffer, at: number, type: number, requestId: number, contentLength: number, padding: number): void {
  out[at] = 1;
  out[at + 1] = type;
  out[at + 2] = requestId >> 8;
  out[at + 3] = requestId & 0xff;
  out[at + 4] = contentLength >> 8;
  out[at + 5] = contentLength & 0xff;
  out[at + 6] = padding;
  out[at + 7] = 0;
}

/** The header of a record with no padding, `contentLength` bytes of content to follow it. */
export function recordHeader(type: number, requestId: number, contentLength: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeHeader(out, 0, type, requestId, contentLength, 0);
  return out;
}

const paddingOf = (length: number): number => (8 - (length % 8)) % 8;

/** A few bytes of an allocUnsafe buffer set to 0 (Buffer.fill costs more for so few). */
function zero(out: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) out[i] = 0;
}

/** One record, content ≤ 65535 bytes, padded to 8. */
export function encodeRecord(type: number, requestId: number, content?: Buffer): Buffer {
  const length = content?.length ?? 0;
  const padding = paddingOf(length);
  const out = Buffer.alloc(8 + length + padding);
  writeHeader(out, 0, type, requestId, length, padding);
  content?.copy(out, 8);
  return out;
}

/** A stream's bytes as records of at most 65535 bytes each (no closing empty record). */
export function encodeStream(type: number, requestId: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_CONTENT) out.push(encodeRecord(type, requestId, data.subarray(at, at + MAX_CONTENT)));
  return out;
}

/** Bytes of `length` stream bytes as records (no closing empty record). */
function streamSize(length: number): number {
  const whole = Math.floor(length / MAX_CONTENT);
  const rest = length % MAX_CONTENT;
  return whole * (8 + MAX_CONTENT + paddingOf(MAX_CONTENT)) + (rest > 0 ? 8 + rest + paddingOf(rest) : 0);
}

/** Writes `data` as records at `at` (as encodeStream, in place, padding zeroed); returns where they end. */
function writeStream(out: Buffer, at: number, type: number, requestId: number, data: Buffer): number {
  for (let from = 0; from < data.length; from += MAX_CONTENT) {
    const length = Math.min(MAX_CONTENT, data.length - from);
    const padding = paddingOf(length);
    writeHeader(out, at, type, requestId, length, padding);
    data.copy(out, at + 8, from, from + length);
    at += 8 + length;
    zero(out, at, at + padding);
    at += padding;
  }
  return at;
}

export function encodeBeginRequest(requestId: number, keepConn: boolean, role = FCGI_RESPONDER): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(role, 0);
  body[2] = keepConn ? FCGI_KEEP_CONN : 0;
  return encodeRecord(FCGI.BEGIN_REQUEST, requestId, body);
}

export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(appStatus >>> 0, 0);
  body[4] = protocolStatus;
  return encodeRecord(FCGI.END_REQUEST, requestId, body);
}

export function decodeEndRequest(content: Buffer): { appStatus: number; protocolStatus: number } | null {
  if (content.length < 8) return null;
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4]! };
}

type PairList = readonly (readonly [string, string])[];

/** Latin-1: one byte a character (CGI variables are bytes). */
const lengthSize = (n: number): number => (n < 128 ? 1 : 4);

function pairsSize(pairs: PairList): number {
  let size = 0;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const name = pair[0];
    const value = pair[1];
    size += lengthSize(name.length) + lengthSize(value.length) + name.length + value.length;
  }
  return size;
}

function writeLength(out: Buffer, at: number, n: number): number {
  if (n < 128) {
    out[at] = n;
    return at + 1;
  }
  out.writeUInt32BE((n | 0x80000000) >>> 0, at);
  return at + 4;
}

/** Writes the pairs at `at` (pairsSize bytes); returns where they end. */
function writePairs(out: Buffer, at: number, pairs: PairList): number {
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const name = pair[0];
    const value = pair[1];
    at = writeLength(out, at, name.length);
    at = writeLength(out, at, value.length);
    at = writeLatin1(out, at, name);
    at = writeLatin1(out, at, value);
  }
  return at;
}

/** Name-value pairs (latin-1: CGI variables are bytes) as one buffer, to be cut into PARAMS records. */
export function encodePairs(pairs: PairList): Buffer {
  const out = Buffer.allocUnsafe(pairsSize(pairs));
  writePairs(out, 0, pairs);
  return out;
}

/**
 * A responder request's records in one buffer, so that it goes out in one
 * write: BEGIN_REQUEST, the pairs as PARAMS and the empty PARAMS that ends
 * them, then `stdin` as STDIN records and, with `end`, the empty STDIN that
 * ends the body (without it, more STDIN is to follow).
 */
export function encodeRequest(requestId: number, keepConn: boolean, pairs: PairList, stdin: Buffer | null, end: boolean): Buffer {
  const paramsLength = pairsSize(pairs);
  const size = 16 + streamSize(paramsLength) + 8 + (stdin === null ? 0 : streamSize(stdin.length)) + (end ? 8 : 0);
  const out = Buffer.allocUnsafe(size);
  writeHeader(out, 0, FCGI.BEGIN_REQUEST, requestId, 8, 0);
  out[8] = 0;
  out[9] = FCGI_RESPONDER;
  out[10] = keepConn ? FCGI_KEEP_CONN : 0;
  zero(out, 11, 16);
  let at = 16;
  if (paramsLength > 0 && paramsLength <= MAX_CONTENT) {
    // The common case, written in place: one record.
    const padding = paddingOf(paramsLength);
    writeHeader(out, at, FCGI.PARAMS, requestId, paramsLength, padding);
    at = writePairs(out, at + 8, pairs);
    zero(out, at, at + padding);
    at += padding;
  } else at = writeStream(out, at, FCGI.PARAMS, requestId, encodePairs(pairs));
  writeHeader(out, at, FCGI.PARAMS, requestId, 0, 0);
  at += 8;
  if (stdin !== null) at = writeStream(out, at, FCGI.STDIN, requestId, stdin);
  if (end) writeHeader(out, at, FCGI.STDIN, requestId, 0, 0);
  return out;
}

/** The pairs in a PARAMS stream or a GET_VALUES body; null when it is malformed. */
export function decodePairs(data: Buffer): [string, string][] | null {
  const pairs: [string, string][] = [];
  // One latin-1 string (a byte per character) cut by the lengths: one native decode, not one per name and value.
  const text = data.toString('latin1');
  let at = 0;
  const length = (): number => {
    if (at >= data.length) return -1;
    if (data[at]! < 128) return data[at++]!;
    if (at + 4 > data.length) return -1;
    const n = data.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return n;
  };
  while (at < data.length) {
    const n = length();
    const v = n < 0 ? -1 : length();
    if (v < 0 || at + n + v > data.length) return null;
    pairs.push([text.slice(at, at + n), text.slice(at + n, at + n + v)]);
    at += n + v;
  }
  return pairs;
}

const EMPTY = Buffer.alloc(0);

/**
 * Cuts a byte stream into records, whatever the chunking. A version other
 * than 1 is a protocol error: `push` returns it as a message.
 */
export class RecordReader {
  private pending: Buffer = EMPTY;

  /** The whole records in `chunk` (and what came before it); an error message when the stream is not FastCGI. */
  push(chunk: Buffer): FcgiRecord[] | string {
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const records: FcgiRecord[] = [];
    let at = 0;
    while (data.length - at >= 8) {
      if (data[at] !== 1) return `unsupported FastCGI version ${data[at]}`;
      const contentLength = data.readUInt16BE(at + 4);
      const total = 8 + contentLength + data[at + 6]!;
      if (data.length - at < total) break;
      records.push({ type: data[at + 1]!, requestId: data.readUInt16BE(at + 2), content: data.subarray(at + 8, at + 8 + contentLength) });
      at += total;
    }
    // Copied so a small remainder does not pin a large chunk.
    this.pending = at === data.length ? EMPTY : Buffer.from(data.subarray(at));
    return records;
  }

  /** Bytes of a record not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }
}
