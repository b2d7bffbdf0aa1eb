/**
 * An ASGI request whose body goes to the app as it arrives: REQ_STREAM (the
 * scope), then a REQ_BODY frame per piece read from the client, then
 * REQ_END. The app's receive() gets them as `http.request` messages with
 * `more_body`.
 *
 * No worker waits on a slow client: the task awaiting receive() holds no
 * thread, and the client is read only while the request is at its worker.
 * Backpressure holds: the client is not read (TCP holds it back) while the
 * app has not taken what it was sent (WS_PAUSE / WS_RESUME from the worker)
 * or while the stream to the worker is full.
 *
 * max_request_body, body_timeout and faulty framing (a bad chunk) hold as
 * for a buffered body: 413, 408 or 400 (431 for trailers too large) while
 * the response has not started, else the connection is cut; either way the
 * app's request is cancelled (its receive() says http.disconnect).
 */
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { encodeEmpty, encodeFrame, Frame } from '../wire/frames.js';
import { sendPlain } from '../http/plain-response.js';
import { WsgiExchange } from '../wsgi/wsgi-exchange.js';
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { faultStatus } from '../http/request-body.js';

/** Why reading the client is paused: the app has not taken its body, or the stream to the worker is full. */
const HELD_BY_APP = 1;
const HELD_BY_STREAM = 2;

const REFUSAL = {
  400: 'the body broke off',
  408: 'the body stopped arriving',
  413: 'the body is over max_request_body',
  431: 'its trailers are over max_header_size',
  503: 'its worker gave it back after taking part of its body',
} as const;

export class StreamedExchange extends WsgiExchange {
  private held = 0;
  private length = 0;
  private reading = false;
  /** The whole body was relayed (REQ_END sent). */
  private ended = false;
  /** The status a faulty body is refused with once the request is at its worker; 0: none. */
  private fault: keyof typeof REFUSAL | 0 = 0;
  private idle: NodeJS.Timeout | undefined;
  private readonly limit: number;

  constructor(
    frame: Buffer,
    r: RouteRequest<RequestInfo, HttpResponse>,
    ctx: ExchangeContext,
    maxTempFile: number,
    cancel: (x: WsgiExchange) => void,
    private readonly upload: Readable,
    /** body_timeout in ms (0: none). */
    private readonly idleMs: number,
  ) {
    super(frame, r, ctx, maxTempFile, null, cancel);
    frame[0] = Frame.REQ_STREAM;
    this.limit = r.maxRequestBody;
    // A client that goes away is seen as the connection or stream closing (clientGone()).
    upload.on('error', (err) => {
      const status = faultStatus(err);
      if (status === undefined) return;
      this.fault = status in REFUSAL ? (status as keyof typeof REFUSAL) : 400;
      if (this.reading) this.refuse(this.fault);
    });
  }

  sent(): void {
    // An ASGI worker gives a request back only when it is leaving: what it took of the body is lost with it.
    if (this.length > 0) return this.refuse(503);
    if (this.reading) return;
    this.reading = true;
    if (this.fault !== 0) return this.refuse(this.fault);
    this.upload.on('data', this.onData);
    this.upload.once('end', this.onEnd);
    this.arm();
  }

  relayed(type: number): void {
    if (type === Frame.WS_PAUSE) this.hold(HELD_BY_APP);
    else if (type === Frame.WS_RESUME) this.release(HELD_BY_APP);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.length += chunk.length;
    if (this.length > this.limit) return this.refuse(413);
    const w = this.worker;
    if (w === null) return this.refuse(503);
    this.arm();
    if (!w.relay(this, encodeFrame(Frame.REQ_BODY, 0, chunk))) {
      this.hold(HELD_BY_STREAM);
      w.whenDrained(() => this.release(HELD_BY_STREAM));
    }
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    clearTimeout(this.idle);
    this.worker?.relay(this, encodeEmpty(Frame.REQ_END, 0));
  };

  private hold(why: number): void {
    if (this.held === 0) {
      this.upload.pause();
      clearTimeout(this.idle);
    }
    this.held |= why;
  }

  private release(why: number): void {
    if ((this.held & why) === 0) return;
    this.held &= ~why;
    if (this.held !== 0 || this.done) return;
    this.upload.resume();
    this.arm();
  }

  /** (Re)starts body_timeout's clock: it runs while the front waits for the client, not while it holds the client back. */
  private arm(): void {
    if (this.idleMs <= 0 || this.ended || this.done) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.refuse(408), this.idleMs);
  }

  private refuse(status: keyof typeof REFUSAL): void {
    if (this.done) return;
    if (this.res.headersSent) {
      this.ctx.logger.warning(`${this.label}: ${REFUSAL[status]} after the response started; connection cut`);
      this.abort();
    } else {
      this.status = status;
      this.bytes = sendPlain(this.res, status, STATUS_CODES[status] ?? 'Error', true);
      if (status === 503) this.ctx.logger.warning(`${this.label}: 503 ${REFUSAL[status]}`);
      this.complete();
    }
    this.cancel(this);
  }

  protected override complete(): void {
    super.complete();
    clearTimeout(this.idle);
    this.upload.removeListener('data', this.onData);
    this.upload.removeListener('end', this.onEnd);
    // A body the app did not read to its end is read and dropped (or its connection closes).
    if (!this.ended) this.upload.resume();
  }
}
