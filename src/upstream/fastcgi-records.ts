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

/** One record, content ≤ 65535 bytes, padded to 8. */
export function encodeRecord(type: number, requestId: number, content: Buffer = Buffer.alloc(0)): Buffer {
  const padding = (8 - (content.length % 8)) % 8;
  const out = Buffer.alloc(8 + content.length + padding);
  out[0] = 1;
  out[1] = type;
  out.writeUInt16BE(requestId, 2);
  out.writeUInt16BE(content.length, 4);
  out[6] = padding;
  content.copy(out, 8);
  return out;
}

/** A stream's bytes as records of at most 65535 bytes each (no closing empty record). */
export function encodeStream(type: number, requestId: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_CONTENT) out.push(encodeRecord(type, requestId, data.subarray(at, at + MAX_CONTENT)));
  return out;
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

function lengthBytes(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0, 0);
  return b;
}

/** Name-value pairs (latin-1: CGI variables are bytes) as one buffer, to be cut into PARAMS records. */
export function encodePairs(pairs: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of pairs) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(lengthBytes(n.length), lengthBytes(v.length), n, v);
  }
  return Buffer.concat(parts);
}

/** The pairs in a PARAMS stream or a GET_VALUES body; null when it is malformed. */
export function decodePairs(data: Buffer): [string, string][] | null {
  const pairs: [string, string][] = [];
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
    pairs.push([data.toString('latin1', at, at + n), data.toString('latin1', at + n, at + n + v)]);
    at += n + v;
  }
  return pairs;
}

/**
 * Cuts a byte stream into records, whatever the chunking. A version other
 * than 1 is a protocol error: `push` returns it as a message.
 */
export class RecordReader {
  private pending: Buffer = Buffer.alloc(0);

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
    this.pending = at === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(at));
    return records;
  }

  /** Bytes of a record not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }
}
