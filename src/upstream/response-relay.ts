/**
 * The client side of an upstream exchange: writes the back end's response
 * head and body to the client as they come, through body-sink.ts
 * (compression; what a slow client cannot take yet spooled, or the caller
 * told to stop reading the back end until it can). Checks the body against
 * a declared Content-Length: bytes past it are dropped with a warning and
 * the response ends there (nginx 1.19.1 and later: the client gets the
 * declared length, and that back-end connection is not reused); a body that
 * ends short is cut. Writes the access log line once, however the exchange
 * ends.
 */
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { unwatchClient, watchClient, type InFlight } from '../http/in-flight.js';
import { BodySink, RESPONSE_MEMORY } from '../http/body-sink.js';
import { readAccel } from '../http/accel-headers.js';
import type { CgiHead } from './cgi-response.js';
import { upstreamFailed, UpstreamError, warnPastEnd } from './upstream-failure.js';

/** nginx's default fastcgi_max_temp_file_size: past it the back end waits for the client. */
const MAX_TEMP_FILE = 1024 ** 3;
const LIMITS = {
  buffered: { buffering: true, memory: RESPONSE_MEMORY, maxFile: MAX_TEMP_FILE },
  unbuffered: { buffering: false, memory: RESPONSE_MEMORY, maxFile: MAX_TEMP_FILE },
};

export class ResponseRelay implements InFlight {
  /** Nothing more is wanted from the back end: its response ended (or overran), failed, or the client went away. */
  done = false;
  /** The body went past its Content-Length (the back end's connection is not to be reused). */
  overran = false;
  /** The access log line is written: the exchange is over on the client's side too. */
  private closed = false;
  private readonly sink: BodySink;
  private status = 0;
  /** Bytes the front wrote itself (an error answer). */
  private bytes = 0;
  /** Body bytes still due by the declared Content-Length; undefined when none was declared (or none is sent). */
  private remaining: number | undefined;

  constructor(
    private readonly r: RouteRequest<RequestInfo, HttpResponse>,
    private readonly ctx: ExchangeContext,
    private readonly upstream: string,
    /** The client went away first: the back end's connection is of no more use. */
    private readonly onClientGone: () => void,
    /** Spool what the client cannot take yet rather than slow the back end down. */
    buffering: boolean,
  ) {
    this.sink = new BodySink(r.res, buffering ? LIMITS.buffered : LIMITS.unbuffered, (err) => this.fail(new UpstreamError(502, 'read', `compression failed: ${err.message}`)), ctx.logger);
    watchClient(r.req, r.res, this);
  }

  clientGone(): void {
    if (this.closed) return;
    if (!this.r.res.headersSent) this.status = 499; // nginx's code for "client closed request"
    const backEndDone = this.done;
    this.complete();
    if (!backEndDone) this.onClientGone();
  }

  get clientResponse(): HttpResponse {
    return this.r.res;
  }

  get headSent(): boolean {
    return this.r.res.headersSent;
  }

  /** Writes the head; false when Node refused it (the answer is then a 502). */
  head(head: CgiHead): boolean {
    const { res, req } = this.r;
    if (this.ctx.draining) res.shouldKeepAlive = false;
    const bodiless = req.method === 'HEAD' || head.status === 204 || head.status === 304;
    this.remaining = bodiless ? undefined : head.contentLength;
    try {
      this.sink.head(this.ctx.compression, req, head.status, head.reason, head.headers, head.contentLength);
    } catch (err) {
      this.fail(new UpstreamError(502, 'read', `an invalid response head: ${(err as Error).message}`));
      return false;
    }
    this.status = head.status;
    return true;
  }

  /**
   * A head's X-Accel-* headers: taken off unless a web server in front reads
   * them (reroute null), the buffering and the cache's freshness they ask for
   * applied. True for an X-Accel-Redirect the front follows: nothing of this
   * answer goes to the client, and the front routes the request again (its
   * final answer is logged). False: the head is to be written.
   */
  redirected(head: CgiHead): boolean {
    const accel = head.accel ? readAccel(head.headers, 0, this.r.res, this.r.reroute) : null;
    if (accel === null) return false;
    if (accel.buffering !== null) this.sink.buffer(accel.buffering);
    if (accel.redirect === null) return false;
    this.done = true;
    this.closed = true;
    this.sink.close();
    unwatchClient(this.r.req, this);
    this.r.reroute!(this.r, accel.redirect);
    return true;
  }

  /**
   * A piece of the body; false when the client is full (wait for
   * `whenDrained`) or the body is over (`done`: it reached past its
   * Content-Length, and what fitted was written with the end).
   */
  body(chunk: Buffer): boolean {
    if (this.done || chunk.length === 0) return !this.done;
    const part = this.fitted(chunk);
    if (!this.overran) return this.sink.write(part);
    this.finishBody(part);
    return false;
  }

  /** All of `chunk` that the declared Content-Length leaves room for; past it, the rest is dropped with a warning. */
  private fitted(chunk: Buffer): Buffer {
    const remaining = this.remaining;
    if (remaining === undefined) return chunk;
    if (chunk.length <= remaining) {
      this.remaining = remaining - chunk.length;
      return chunk;
    }
    this.overran = true;
    this.remaining = 0;
    warnPastEnd(this.ctx.logger, `${this.r.req.method} ${this.r.req.url}`, this.upstream, true);
    return chunk.subarray(0, remaining);
  }

  /** The declared Content-Length has all been received (undefined: none was declared). */
  get lengthReached(): boolean {
    return this.remaining === 0;
  }

  whenDrained(resume: () => void): void {
    this.sink.whenReady(resume);
  }

  /** The back end finished the response; `last`: its last body bytes, written with the end. */
  end(last: Buffer | null = null): void {
    if (this.done) return;
    const part = last === null ? null : this.fitted(last);
    if (this.remaining !== undefined && this.remaining > 0) {
      this.fail(new UpstreamError(502, 'read', `the body ended ${this.remaining} bytes short of its Content-Length`));
      return;
    }
    this.finishBody(part);
  }

  private finishBody(last: Buffer | null): void {
    this.done = true;
    this.sink.end(() => this.complete(), last);
  }

  fail(error: UpstreamError): void {
    if (this.closed) return;
    if (!this.headSent) this.status = error.status;
    this.bytes += upstreamFailed(this.r, this.ctx.logger, this.upstream, error, this.ctx.draining);
    this.complete();
  }

  private complete(): void {
    this.done = true;
    this.closed = true;
    this.sink.close();
    unwatchClient(this.r.req, this);
    this.r.log(this.status, this.bytes + this.sink.bytes);
  }
}
