/**
 * The client side of an upstream exchange: writes the back end's response
 * head and body to the client as they come, says when the client cannot
 * take more (the caller stops reading the back end until 'drain'), checks
 * the body against a declared Content-Length, and writes the access log
 * line once, however the exchange ends.
 */
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { inFlightOn, type InFlight } from '../http/in-flight.js';
import { sendPlain } from '../http/plain-response.js';
import type { CgiHead } from './cgi-response.js';
import { upstreamFailed, UpstreamError } from './upstream-failure.js';

export class ResponseRelay implements InFlight {
  done = false;
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
    return this.r.res.write(chunk);
  }

  whenDrained(resume: () => void): void {
    this.r.res.once('drain', resume);
  }

  /** The back end finished the response. */
  end(): void {
    if (this.done) return;
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

  /** A refusal of the front's own (400, 413, 431...) before the back end saw the request. */
  refuse(status: number, text: string): void {
    if (this.done) return;
    this.status = status;
    this.bytes = sendPlain(this.r.res, status, text, true);
    this.complete();
  }

  private complete(): void {
    this.done = true;
    if (this.r.req.httpVersionMajor !== 2) {
      const list = inFlightOn(this.r.req.socket);
      const at = list.indexOf(this);
      if (at >= 0) list.splice(at, 1);
    }
    this.r.log(this.status, this.bytes);
  }
}
