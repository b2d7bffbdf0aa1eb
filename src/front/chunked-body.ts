/**
 * A chunked request body on the fast path (fast-connection.ts), de-chunked
 * by llhttp itself: node's own HTTP parser, the one node:http reads with,
 * is given a head of ours and then the body's bytes as they arrive. Chunk
 * sizes, extensions, line ends and trailers are so read exactly as on
 * node:http's path, with its limits (max_header_size for the trailers), by
 * construction rather than by a second parser that would have to be proved
 * the same (the request's head is the front's own; request-head.ts).
 *
 * The parser comes from node:http's own module (`_http_common`), as node:http
 * takes it; it is not documented, which is why it is used for this alone.
 */
import { createRequire } from 'node:module';

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

/** A fault in the body's framing, named by llhttp's code (HPE_INVALID_CHUNK_SIZE...). */
export type ChunkFault = Error & { code: string };

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

export class ChunkedBody {
  private parser: OwnedParser | null = spare.pop() ?? newParser();
  /** The last chunk and the trailers are in. */
  done = false;
  /** Trailer names and values, as node:http's rawTrailers. */
  readonly trailers: string[] = [];
  /** The last push() said to wait. */
  full = false;

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
    const result = this.parser!.execute(chunk);
    if (typeof result === 'number') {
      if (this.done) this.close();
      return null;
    }
    this.close();
    // After the body, llhttp skips line ends, then stops at the first other byte (counted as read).
    if (this.done && result.code === 'HPE_CLOSED_CONNECTION') return chunk.subarray(result.bytesParsed! - 1);
    return Object.assign(new Error(`chunked body: ${(result as { reason?: string }).reason ?? result.message}`), { code: result.code ?? 'HPE_INVALID_CHUNK_SIZE' });
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
