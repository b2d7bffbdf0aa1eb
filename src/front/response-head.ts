/**
 * An HTTP/1.1 response head as the fast path writes it (http1-response.ts):
 * made from a status, a reason and flat headers, or taken as it is from a
 * worker's head block (the status line's field, then names and values in
 * turn, each ended by a NUL: its bytes are the head's, with each NUL made
 * ': ' after a name and CRLF after a line, and no string is made of them).
 * The front adds Date and Connection (and Keep-Alive) unless the headers
 * have them, and `Transfer-Encoding: chunked` for a body of unknown length,
 * as node:http writes them. The worker has checked the headers (no
 * hop-by-hop header, token names, values without control characters,
 * latin-1). A head with an X-Accel-* header is flagged (`accel`): the
 * caller rewrites it without them. The head's bytes are written straight
 * into the buffer that goes out (write()), not built as a string first.
 */
import { isAccelNameAt } from '../http/accel-headers.js';
import { flatHeader, isHeaderName, isHeaderNameAt } from '../http/header-name.js';
import { writeLatin1 } from '../wire/block-writer.js';
import { decodeHead } from '../wire/frames.js';
import { connectionBytes, dateLine } from './response-lines.js';

const CHUNKED = 'Transfer-Encoding: chunked\r\n';
const NO_HEADERS: readonly string[] = [];
/** What the headers hold, as bits of `seen`. */
const LENGTH = 1;
const DATED = 2;
const CONNECTION = 4;
const CLOSE = 8;
const ACCEL = 16;

export class ResponseHead {
  status = 0;
  /** Its size in bytes, once complete(). */
  size = 0;
  /** The body goes in chunks (no Content-Length, and a body may come). */
  chunked = false;
  private seen = 0;
  private reason = '';
  private headers: readonly string[] = NO_HEADERS;
  /** The worker's head block the head is copied from, from blockStart to blockEnd; null: made of `reason` and `headers`. */
  private block: Buffer | null = null;
  private blockStart = 0;
  private blockEnd = 0;
  /** The Date line, null when the app gave one. */
  private dateLine: Buffer | null = null;
  /** The Connection lines, null when the headers had one. */
  private connectionLine: Buffer | null = null;

  /** The head of `status`, `reason` and `[name, value, ...]`. */
  static of(status: number, reason: string, flat: readonly string[]): ResponseHead {
    const head = new ResponseHead();
    // "HTTP/1.1 ", the code, a space, the reason and CRLF.
    let size = 9 + String(status).length + 1 + reason.length + 2;
    let seen = 0;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!;
      const value = flat[i + 1]!;
      size += name.length + value.length + 4;
      // Only the front's own answers set Connection (close); the worker lets no app do it.
      if (isHeaderName(name, 'content-length')) seen |= LENGTH;
      else if (isHeaderName(name, 'date')) seen |= DATED;
      else if (isHeaderName(name, 'connection')) seen |= value.toLowerCase() === 'close' ? CONNECTION | CLOSE : CONNECTION;
    }
    head.status = status;
    head.reason = reason;
    head.headers = flat;
    head.size = size;
    head.seen = seen;
    return head;
  }

  /** The head of a worker's head block, `block` from `start` to `end`; throws when it is no head. */
  static ofBlock(block: Buffer, start: number, end: number): ResponseHead {
    const head = new ResponseHead();
    let i = start;
    while (i < end && block[i] !== 0) i++;
    if (i - start < 4 || block[start + 3] !== 32) throw new Error('no status line in the head block');
    // "HTTP/1.1 ", the block, CRLF after its last line.
    let size = 9 + end - start + 2;
    let seen = 0;
    while (i < end) {
      const name = i + 1;
      i = name;
      while (i < end && block[i] !== 0) i++;
      if (i === end) throw new Error('a header name without a value in the head block');
      const value = i + 1;
      i = value;
      while (i < end && block[i] !== 0) i++;
      // Two bytes more per field: its name's NUL becomes ': ', the NUL before it (the status line's or the last value's) CRLF.
      size += 2;
      if (isHeaderNameAt(block, name, value - 1, 'content-length')) seen |= LENGTH;
      else if (isHeaderNameAt(block, name, value - 1, 'date')) seen |= DATED;
      else if (isHeaderNameAt(block, name, value - 1, 'connection')) seen |= block.toString('latin1', value, i).toLowerCase() === 'close' ? CONNECTION | CLOSE : CONNECTION;
      else if (isAccelNameAt(block, name, value - 1)) seen |= ACCEL;
    }
    head.status = (block[start]! - 48) * 100 + (block[start + 1]! - 48) * 10 + (block[start + 2]! - 48);
    head.block = block;
    head.blockStart = start;
    head.blockEnd = end;
    head.size = size;
    head.seen = seen;
    return head;
  }

  /** The headers have an X-Accel-* header: this head is not for the client as it is (src/http/accel-headers.ts). */
  get accel(): boolean {
    return (this.seen & ACCEL) !== 0;
  }

  /** The headers say Connection: close. */
  get closes(): boolean {
    return (this.seen & CLOSE) !== 0;
  }

  /** Adds the lines the front writes (Date, Connection, chunked framing) and the blank line; `size` is then whole. */
  /** The headers give the body's length. */
  get sized(): boolean {
    return (this.seen & LENGTH) !== 0;
  }

  complete(last: boolean, keepAliveTimeout: number, bodiless: boolean, chunkable: boolean): void {
    let size = this.size + 2;
    if ((this.seen & DATED) === 0) size += (this.dateLine = dateLine()).length;
    if ((this.seen & CONNECTION) === 0) size += (this.connectionLine = connectionBytes(last, keepAliveTimeout)).length;
    if ((this.seen & LENGTH) === 0 && !bodiless && chunkable) {
      this.chunked = true;
      size += CHUNKED.length;
    }
    this.size = size;
  }

  getHeader(name: string): string | undefined {
    // A head taken from a block is read as strings only if asked (the access log may).
    if (this.block !== null && this.headers === NO_HEADERS) {
      const at = this.block.indexOf(0, this.blockStart);
      this.headers = at < 0 || at >= this.blockEnd ? [] : decodeHead(this.block, at + 1, this.blockEnd);
    }
    return flatHeader(this.headers, name);
  }

  /** Writes the head at the start of `buf` (`size` bytes); `buf`. */
  write(buf: Buffer): Buffer {
    let at = writeLatin1(buf, 0, 'HTTP/1.1 ');
    if (this.block !== null) at = this.putBlock(buf, at);
    else {
      at = writeLatin1(buf, at, String(this.status));
      buf[at++] = 32;
      at = writeLatin1(buf, at, this.reason);
      at = writeLatin1(buf, at, '\r\n');
      const h = this.headers;
      for (let i = 0; i < h.length; i += 2) {
        at = writeLatin1(buf, at, h[i]!);
        at = writeLatin1(buf, at, ': ');
        at = writeLatin1(buf, at, h[i + 1]!);
        at = writeLatin1(buf, at, '\r\n');
      }
    }
    if (this.dateLine !== null) at = put(buf, at, this.dateLine);
    if (this.connectionLine !== null) at = put(buf, at, this.connectionLine);
    if (this.chunked) at = writeLatin1(buf, at, CHUNKED);
    writeLatin1(buf, at, '\r\n');
    return buf;
  }

  /** The block's lines at `at` in `buf`; where they end. */
  private putBlock(buf: Buffer, at: number): number {
    const block = this.block!;
    const end = this.blockEnd;
    // The status line's NUL ends a line; then each name's is ': ', each value's a line end.
    let name = false;
    for (let i = this.blockStart; i < end; i++) {
      const c = block[i]!;
      if (c !== 0) buf[at++] = c;
      else {
        buf[at++] = name ? 58 : 13;
        buf[at++] = name ? 32 : 10;
        name = !name;
      }
    }
    buf[at++] = 13;
    buf[at++] = 10;
    return at;
  }
}

/** Copies `part` into `buf` at `at`; where it ends. */
function put(buf: Buffer, at: number, part: Buffer): number {
  buf.set(part, at);
  return at + part.length;
}
