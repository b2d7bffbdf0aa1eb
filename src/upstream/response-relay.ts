/**
 * The client side of an upstream exchange: writes the back end's response
 * head and body to the client as they come; what a slow client cannot take
 * yet is spooled (buffering) or the caller is told to stop reading the back
 * end until 'drain'. Checks the body against a declared Content-Length, and
 * writes the access log line once, however the exchange ends.
 */
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { inFlightOn, type InFlight } from '../http/in-flight.js';
import { ResponseSpool } from '../http/response-spool.js';
import type { CgiHead } from './cgi-response.js';
import { upstreamFailed, UpstreamError } from './upstream-failure.js';

/** How much of a response the front holds in memory for a slow client before spooling to disk (as for apps). */
const RESPONSE_BUFFER = 1024 * 1024;

export class ResponseRelay implements InFlight {
  done = false;
  /** Body the client could not take yet, on disk; the end waits for it. */
  private spool: ResponseSpool | null = null;
  private endPending = false;
  private status = 0;
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
    private readonly buffering: boolean,
  ) {
    // As for the app action: an HTTP/2 stream says when it closes, an HTTP/1 connection is watched by the front.
    if (r.req.httpVersionMajor === 2) r.res.once('close', () => this.clientGone());
    else inFlightOn(r.req.socket).push(this);
  }

  clientGone(): void {
    if (this.done) return;
    if (!this.r.res.headersSent) this.status = 499; // nginx's code for "client closed request"
    this.complete();
    this.onClientGone();
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
      res.writeHead(head.status, head.reason, head.headers);
    } catch (err) {
      this.fail(new UpstreamError(502, 'read', `an invalid response head: ${(err as Error).message}`));
      return false;
    }
    this.status = head.status;
    return true;
  }

  /** A piece of the body; false when the client is full (wait for `whenDrained`) or the body broke its Content-Length. */
  body(chunk: Buffer): boolean {
    if (this.done || chunk.length === 0) return !this.done;
    if (this.remaining !== undefined) {
      if (chunk.length > this.remaining) {
        this.fail(new UpstreamError(502, 'read', `a body longer than its Content-Length`));
        return false;
      }
      this.remaining -= chunk.length;
    }
    this.bytes += chunk.length;
    const res = this.r.res;
    if (!this.buffering) return res.write(chunk);
    if ((this.spool === null || this.spool.empty) && res.writableLength <= RESPONSE_BUFFER) res.write(chunk);
    else (this.spool ??= new ResponseSpool(res, () => this.endPending && this.end())).write(chunk);
    return true;
  }

  whenDrained(resume: () => void): void {
    this.r.res.once('drain', resume);
  }

  /** The back end finished the response. */
  end(): void {
    if (this.done) return;
    if (this.spool !== null && !this.spool.empty) {
      this.endPending = true;
      return;
    }
    if (this.remaining !== undefined && this.remaining > 0) {
      this.fail(new UpstreamError(502, 'read', `the body ended ${this.remaining} bytes short of its Content-Length`));
      return;
    }
    this.r.res.end();
    this.complete();
  }

  fail(error: UpstreamError): void {
    if (this.done) return;
    if (!this.headSent) this.status = error.status;
    this.bytes += upstreamFailed(this.r, this.ctx.logger, this.upstream, error, this.ctx.draining);
    this.complete();
  }

  private complete(): void {
    this.done = true;
    this.spool?.close();
    if (this.r.req.httpVersionMajor !== 2) {
      const list = inFlightOn(this.r.req.socket);
      const at = list.indexOf(this);
      if (at >= 0) list.splice(at, 1);
    }
    this.r.log(this.status, this.bytes);
  }
}
