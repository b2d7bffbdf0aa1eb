/**
 * Where a streamed response body goes on its way to the client, for an app
 * (wsgi-exchange.ts) and every upstream action (proxy, fastcgi, scgi,
 * uwsgi): through the front's compression when the response gets it
 * (compress-head.ts decides), and, with buffering, what a slow client
 * cannot take yet is held in memory up to `memory` bytes, then in an
 * unlinked temp file up to `maxFile` (nginx's proxy_buffers,
 * proxy_temp_path and proxy_max_temp_file_size): the app or back end is
 * read to its end and freed while the client takes its time, and the
 * front's memory stays bounded. Without buffering (the route's setting, or
 * the response's `X-Accel-Buffering: no`), or with the file full, the
 * caller stops its source until `whenReady`.
 */
import type { HttpResponse, RequestHead } from './handler.js';
import { compressHead } from './compress-head.js';
import { createEncoder, flushSoon, type Coding, type Compression, type Encoder } from './compression.js';
import { pipeInto, ResponseSpool } from './response-spool.js';
import type { Logger } from '../log/logger.js';
import { tmpdir } from 'node:os';

/** What a response holds in memory for a slow client before the temp file (an app's, a FastCGI/SCGI/uwsgi back end's; a proxy route's buffer_size). */
export const RESPONSE_MEMORY = 1024 * 1024;

export interface BodySinkLimits {
  buffering: boolean;
  /** Bytes waiting for the client in memory before the temp file is used. */
  memory: number;
  /** Bytes waiting in the temp file at most; 0: no temp file (past `memory` the back end waits). */
  maxFile: number;
}

export class BodySink {
  /** Bytes handed to the client (compressed ones when compressing). */
  bytes = 0;
  private encoder: Encoder | null = null;
  private coding: Coding = 'gzip';
  private spool: ResponseSpool | null = null;
  /** The callers' sources, waiting for the temp file to empty. */
  private waiting: Array<() => void> = [];
  /** end() was called while the temp file still held bytes. */
  private ending: (() => void) | null = null;
  private closed = false;
  /** limits.buffering, unless the response's head said otherwise (buffer()). */
  private buffering: boolean;

  constructor(
    private readonly res: HttpResponse,
    private readonly limits: BodySinkLimits,
    private readonly onError: (err: Error) => void,
    /** For the error log's line when the temp file cannot be used (the response goes on from memory). */
    private readonly logger: Logger,
  ) {
    this.buffering = limits.buffering;
  }

  /**
   * X-Accel-Buffering (accel-headers.ts), read from the head before any body
   * byte: false holds nothing past what the connection takes (the source
   * waits for the client), true holds as `limits` allow.
   */
  buffer(on: boolean): void {
    this.buffering = on;
  }

  /**
   * Writes the response head (headers: names and values, changed in place
   * for compression), compressed as the front's settings say when the back
   * end did not compress it; throws when Node refuses the head. `length`:
   * the body's declared length.
   */
  head(z: Compression | null, req: RequestHead, status: number, reason: string, headers: string[], length: number | undefined): void {
    let coding: Coding | null = null;
    if (z !== null) {
      // compressHead takes the head block (status line first): the status line goes in front of the headers for it.
      headers.unshift(`${status} ${reason}`);
      coding = compressHead(headers, z, req, length, true);
      headers.shift();
    }
    this.res.writeHead(status, reason, headers);
    if (coding !== null) this.compress(coding, length);
  }

  private compress(coding: Coding, sizeHint: number | undefined): void {
    const encoder = createEncoder(coding, sizeHint);
    pipeInto(encoder, this.res, true);
    encoder.on('data', (chunk: Buffer) => (this.bytes += chunk.length));
    encoder.once('error', (err) => this.onError(err));
    this.encoder = encoder;
    this.coding = coding;
  }

  /** A piece of the body; false: stop reading the back end until `whenReady`. */
  write(chunk: Buffer): boolean {
    if (this.closed) return false;
    if (this.encoder === null) this.bytes += chunk.length;
    else flushSoon(this.encoder, this.coding);
    const out = this.encoder ?? this.res;
    const { memory, maxFile } = this.limits;
    if (this.spool === null || this.spool.empty) {
      if (!this.buffering) return out.write(chunk);
      if (out.writableLength <= memory || maxFile === 0) {
        out.write(chunk);
        return maxFile > 0 || out.writableLength <= memory;
      }
    }
    this.spool ??= new ResponseSpool(out, this.spoolEmptied, this.spoolFailed);
    this.spool.write(chunk);
    return this.spool.pending < maxFile && !this.spool.failed;
  }

  /**
   * The client takes what is written as it comes: nothing waits in the temp
   * file, and no more than `memory` in memory. A source that can wait
   * (a file on disk) waits for `whenReady` while this is false, rather than
   * fill the temp file.
   */
  get keepingUp(): boolean {
    return this.spoolEmpty && (this.encoder ?? this.res).writableLength <= this.limits.memory;
  }

  /** Runs `resume` once the client has taken enough. */
  whenReady(resume: () => void): void {
    if (this.spool !== null && !this.spool.empty) this.waiting.push(resume);
    else {
      const out: { once(event: 'drain', listener: () => void): unknown } = this.encoder ?? this.res;
      out.once('drain', () => this.closed || resume());
    }
  }

  /**
   * The body is complete: `done` runs once its last byte was handed to the
   * client. `last`: the body's last bytes, written with the end when nothing
   * is waiting before them (one write to the client).
   */
  end(done: () => void, last: Buffer | null = null): void {
    if (this.closed) return;
    this.ending = done;
    if (last !== null && last.length > 0) {
      if (this.spoolEmpty && this.encoder === null && (!this.buffering || this.res.writableLength <= this.limits.memory)) return this.finish(last);
      this.write(last);
    }
    if (this.spoolEmpty) this.finish();
  }

  private get spoolEmpty(): boolean {
    return this.spool === null || this.spool.empty;
  }

  /** Lets go of the temp file and the encoder (the exchange ended, well or not). */
  close(): void {
    this.closed = true;
    this.spool?.close();
    if (this.encoder !== null && !this.encoder.writableEnded) this.encoder.destroy();
  }

  private readonly spoolFailed = (err: Error): void => {
    this.logger.error(`cannot hold a response for a slow client in a temp file in ${tmpdir()} (TMPDIR): ${err.message}; it goes on from memory, its source waiting for the client`);
  };

  private readonly spoolEmptied = (): void => {
    if (this.ending !== null) return this.finish();
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  };

  private finish(last?: Buffer): void {
    const done = this.ending!;
    this.ending = null;
    if (this.encoder === null) {
      if (last !== undefined) this.bytes += last.length;
      this.res.end(last);
      return done();
    }
    // pipeInto ends the response on the encoder's 'end', before this listener runs.
    this.encoder.once('end', done);
    this.encoder.end();
  }
}
