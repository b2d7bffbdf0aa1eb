/**
 * A chunked request body on the fast path (fast-connection.ts), de-chunked
 * by llhttp itself: node's own HTTP parser, the one node:http reads with,
 * is given a head of ours and then the body's bytes as they arrive. Chunk
 * sizes, line ends, trailers and their limits (max_header_size for the
 * trailers) are so read exactly as on node:http's path, by construction
 * rather than by a second parser that would have to be proved the same (the
 * request's head is the front's own; request-head.ts).
 *
 * One thing llhttp refuses that RFC 9112 §7.1.1 allows, and nginx reads: a
 * chunk extension with whitespace around its `;` or `=` (`5; name=value`,
 * BWS in the grammar). The body's framing is followed here (chunk-size
 * line, data, its CRLF, ...) only to find such lines: one whose extensions
 * are well formed is given to llhttp as its size alone (extensions mean
 * nothing to an app, and llhttp drops them too); any other line goes to
 * llhttp as it came, which judges it. So is everything from the last chunk
 * on (the trailers).
 *
 * The parser comes from node:http's own module (`_http_common`), as node:http
 * takes it; it is not documented, which is why it is used for this alone.
 */
import { createRequire } from 'node:module';
import { isTchar } from '../http/token.js';
import type { BodyFault } from '../http/request-body.js';
import { clientErrorStatus } from './client-errors.js';

/** What node's parser binding offers, as far as this file uses it. */
interface NodeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  close(): void;
  [callback: number]: unknown;
}
interface ParserModule {
  HTTPParser: {
    new (): NodeParser;
    REQUEST: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
  };
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as ParserModule;

/**
 * The head llhttp reads first: a chunked body, on a connection that ends
 * after it, so that llhttp stops at the body's end and says where (its
 * "data after Connection: close"), rather than reading the next request.
 */
const HEAD = Buffer.from('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', 'latin1');

/** A fault in the body's framing, named by llhttp's code (HPE_INVALID_CHUNK_SIZE...), and the status it is refused with. */
export type ChunkFault = BodyFault & { code: string };

/** Parsers let go of, for the next chunked body (node:http keeps a free list of its own too). */
const spare: OwnedParser[] = [];
const MAX_SPARE = 32;
type OwnedParser = NodeParser & { owner: ChunkedBody | null };

// The parser's callbacks, the same functions for every parser (`this` is the parser).
function onHeaders(this: OwnedParser, pairs: string[]): void {
  this.owner!.trailers.push(...pairs);
}
function onBody(this: OwnedParser, data: Buffer): void {
  const body = this.owner!;
  body.full = !body.push(data);
}
function onComplete(this: OwnedParser): void {
  this.owner!.done = true;
}

function newParser(): OwnedParser {
  const p = new HTTPParser() as OwnedParser;
  p.owner = null;
  p[HTTPParser.kOnHeadersComplete] = () => 0;
  p[HTTPParser.kOnHeaders] = onHeaders;
  p[HTTPParser.kOnBody] = onBody;
  p[HTTPParser.kOnMessageComplete] = onComplete;
  return p;
}

/** Where the reader is in the body's framing. */
const LINE = 0; // at a chunk-size line
const DATA = 1; // in a chunk's data and the CRLF after it
const TAIL = 2; // past the last chunk's line (or a line left to llhttp): the rest goes to llhttp as it comes
/** A size line longer than this is not looked at (nor held back): llhttp judges it. */
const LINE_MAX = 1024;
const LF = 0x0a;

// The states of scanLine, after: the size; whitespace before a `;`; a `;` (and whitespace); a name; whitespace after
// a name; a `=` (and whitespace); a token value; a quoted value's `"` and text; a `\` in it; its closing `"`; the CR.
const SIZE = 0, BEFORE_SEMI = 1, SEMI = 2, NAME = 3, AFTER_NAME = 4, EQ = 5, VALUE = 6, QUOTED = 7, ESCAPE = 8, CLOSED = 9, CR = 10;
const BAD = -1, WHOLE = -2;

/** What scanLine found: a line well formed so far (its end yet to come), whole and well formed without or with whitespace, or neither. */
const PREFIX = 0, PLAIN = 1, SPACED = 2, NOT_A_LINE = 3;

/**
 * Reads a chunk-size line (latin-1) by RFC 9112 §7.1.1: chunk-size
 * *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) CRLF.
 * SPACED: whole and well formed, with whitespace outside a quoted value
 * (the BWS llhttp refuses).
 */
function scanLine(line: Uint8Array): number {
  let state = SIZE;
  let spaced = false;
  for (let i = 0; i < line.length && state >= 0; i++) {
    const c = line[i]!;
    const ws = c === 0x20 || c === 0x09;
    const t = isTchar(c);
    if (ws && state !== QUOTED && state !== ESCAPE) spaced = true;
    switch (state) {
      case SIZE:
        state = hexValue(c) >= 0 ? SIZE : i === 0 ? BAD : ws ? BEFORE_SEMI : c === 0x3b ? SEMI : c === 0x0d ? CR : BAD;
        break;
      case BEFORE_SEMI:
        state = ws ? BEFORE_SEMI : c === 0x3b ? SEMI : BAD;
        break;
      case SEMI:
        state = ws ? SEMI : t ? NAME : BAD;
        break;
      case NAME:
      case AFTER_NAME:
        state = t && state === NAME ? NAME : ws ? AFTER_NAME : c === 0x3d ? EQ : c === 0x3b ? SEMI : c === 0x0d && state === NAME ? CR : BAD;
        break;
      case EQ:
        state = ws ? EQ : t ? VALUE : c === 0x22 ? QUOTED : BAD;
        break;
      case VALUE:
      case CLOSED:
        state = t && state === VALUE ? VALUE : ws ? BEFORE_SEMI : c === 0x3b ? SEMI : c === 0x0d ? CR : BAD;
        break;
      case QUOTED:
        state = c === 0x22 ? CLOSED : c === 0x5c ? ESCAPE : ws || (c >= 0x21 && c <= 0xff && c !== 0x7f) ? QUOTED : BAD;
        break;
      case ESCAPE:
        state = ws || (c >= 0x21 && c <= 0xff && c !== 0x7f) ? QUOTED : BAD;
        break;
      case CR:
        state = c === 0x0a && i === line.length - 1 ? WHOLE : BAD;
        break;
    }
  }
  return state === WHOLE ? (spaced ? SPACED : PLAIN) : state === BAD ? NOT_A_LINE : PREFIX;
}

/** The value of the hex digit `c`, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** How many hex digits a line starts with. */
function digits(line: Uint8Array): number {
  let n = 0;
  while (n < line.length && hexValue(line[n]!) >= 0) n++;
  return n;
}

/** The size line alone (its digits and CRLF), for a SPACED line. */
function sizeOnly(line: Uint8Array): Buffer {
  const n = digits(line);
  const out = Buffer.allocUnsafe(n + 2);
  out.set(line.subarray(0, n));
  out[n] = 0x0d;
  out[n + 1] = LF;
  return out;
}

/** A whole line's chunk size (NaN past what a number counts exactly). */
function sizeOf(line: Uint8Array): number {
  let size = 0;
  for (let i = 0, n = digits(line); i < n; i++) size = size * 16 + hexValue(line[i]!);
  return size <= Number.MAX_SAFE_INTEGER ? size : NaN;
}

/**
 * A chunk-size line (latin-1, its CRLF included) as llhttp is to read it:
 * its size alone when its extensions are well formed but have whitespace
 * around `;` or `=`, which llhttp refuses; null: as it came.
 */
export function sizeAlone(line: string): string | null {
  const bytes = Buffer.from(line, 'latin1');
  return scanLine(bytes) === SPACED ? sizeOnly(bytes).toString('latin1') : null;
}

export class ChunkedBody {
  private parser: OwnedParser | null = spare.pop() ?? newParser();
  /** The last chunk and the trailers are in. */
  done = false;
  /** Trailer names and values, as node:http's rawTrailers. */
  readonly trailers: string[] = [];
  /** The last push() said to wait. */
  full = false;
  private at = LINE;
  /** In DATA: the bytes of the chunk and its CRLF still to come. */
  private left = 0;
  /** The start of a size line whose end is yet to come (not yet given to llhttp). */
  private held: Buffer | null = null;

  constructor(
    maxHeaderSize: number,
    /** Gets each piece of data; false: no more until read (a Readable's push). */
    readonly push: (data: Buffer) => boolean,
  ) {
    const p = this.parser!;
    p.owner = this;
    p.initialize(HTTPParser.REQUEST, {}, maxHeaderSize, 0);
    p.execute(HEAD);
  }

  /**
   * Reads the next bytes of the body: what follows the body in them, if it
   * ended there (null: nothing, or the body goes on); a fault ends it.
   */
  feed(chunk: Buffer): Buffer | null | ChunkFault {
    this.full = false;
    let from = 0; // chunk[from..] is not yet given to llhttp
    let i = 0;
    while (i < chunk.length && this.at !== TAIL) {
      if (this.at === DATA) {
        const n = Math.min(this.left, chunk.length - i);
        i += n;
        this.left -= n;
        if (this.left === 0) this.at = LINE;
        continue;
      }
      const held = this.held;
      this.held = null;
      const lf = chunk.indexOf(LF, i);
      const end = lf < 0 ? chunk.length : lf + 1;
      // The line's bytes: a view of the read, unless it began in an earlier one.
      const part = chunk.subarray(i, Math.min(end, i + LINE_MAX + 1));
      const line = held === null ? part : Buffer.concat([held, part]);
      const scan = line.length <= LINE_MAX ? scanLine(line) : NOT_A_LINE;
      if (scan === PREFIX) {
        // The line ends in a later read and may be one to give alone: what came before it goes now, the line waits.
        this.held = held === null ? Buffer.from(line) : line;
        return this.give(chunk, from, i) ?? null;
      }
      if (scan === SPACED) {
        const alone = sizeOnly(line);
        const given = this.give(chunk, from, i) ?? this.give(alone, 0, alone.length);
        if (given !== undefined) return given;
        from = end;
      } else if (held !== null) {
        const given = this.give(held, 0, held.length);
        if (given !== undefined) return given;
      }
      i = end;
      const size = scan === PLAIN || scan === SPACED ? sizeOf(line) : NaN;
      // After the last chunk's line (0), a line not well formed (or too long to look at) or a size too large to count here: llhttp has the rest.
      if (size > 0) {
        this.at = DATA;
        this.left = size + 2;
      } else {
        this.at = TAIL;
      }
    }
    return this.give(chunk, from, chunk.length) ?? null;
  }

  /**
   * Gives buf[start..end) to llhttp: undefined to go on, else what feed()
   * returns (the body is over, or faulty).
   */
  private give(buf: Buffer, start: number, end: number): Buffer | null | ChunkFault | undefined {
    if (start === end) return undefined;
    const result = this.parser!.execute(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
    if (typeof result === 'number') {
      if (!this.done) return undefined;
      this.close();
      return null;
    }
    this.close();
    // After the body, llhttp skips line ends, then stops at the first other byte (counted as read).
    if (this.done && result.code === 'HPE_CLOSED_CONNECTION') return buf.subarray(start + result.bytesParsed! - 1);
    const code = result.code ?? 'HPE_INVALID_CHUNK_SIZE';
    return Object.assign(new Error(`chunked body: ${(result as { reason?: string }).reason ?? result.message}`), { code, status: clientErrorStatus(code) });
  }

  /** Lets go of the parser, kept for the next body if there is room (safe to call again). */
  close(): void {
    const p = this.parser;
    if (p === null) return;
    this.parser = null;
    p.owner = null;
    if (spare.length < MAX_SPARE) spare.push(p);
    else p.close();
  }
}
