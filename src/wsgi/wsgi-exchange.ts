/**
 * One HTTP request on its way through a worker pool: turns the worker's
 * frames into the HTTP response, and owns what the request leaves behind
 * (temp body file, access log line).
 */
import { fstat, open, close } from 'node:fs';
import type { Exchange } from '../pool/exchange.js';
import type { WorkerProcess } from '../pool/worker-process.js';
import type { Readable } from 'node:stream';
import { decodeHead, encodeEmpty, Frame, responseHeadEnd, type FileSpec } from '../wire/frames.js';
import { discardBodyFile } from '../http/request-body.js';
import { sendPlain } from '../http/plain-response.js';
import type { ExchangeContext, HttpResponse, NodeParts, RequestInfo, Reroute, RouteRequest } from '../http/handler.js';
import { unwatchClient, watchClient, type InFlight } from '../http/in-flight.js';
import { readFileRegion } from '../http/file-region.js';
import { isIdempotent } from '../http/idempotent.js';
import { BodySink, RESPONSE_MEMORY } from '../http/body-sink.js';
import { compressSync, SYNC_LIMIT } from '../http/compression.js';
import { compressHead } from '../http/compress-head.js';
import { readAccel } from '../http/accel-headers.js';


const FAIL_TEXT = { 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' } as const;

/** The log of a rerouted request's first exchange: its line is the final answer's. */
function rerouted(): void {}

export class WsgiExchange implements Exchange, InFlight {
  worker: WorkerProcess | null = null;
  /** Set only for a sticky app's requests: the others keep the shape they have without it. */
  declare affinity?: number;
  id = 0;
  queuedAt = 0;
  sentAt = 0;
  protected status = 0;
  protected bytes = 0;
  protected done = false;
  /** A streamed body's way to the client (compression, memory, temp file); from START on. */
  private sink: BodySink | null = null;
  /** A FILE region is being streamed; END must wait for it. */
  private streaming = false;
  /** Its stream, once the file is open (destroyed if the exchange ends first). */
  private fileStream: Readable | null = null;
  private endPending = false;
  /** The app waits until the client has taken what is in the temp file (maxTempFile reached). */
  private holdingApp = false;
  /** The WSGI worker whose stream is not read meanwhile (it may have finished this request: this.worker is then null). */
  private heldWorker: WorkerProcess | null = null;
  /** The head's X-Accel-Buffering, if it had one (accel-headers.ts): start()'s sink buffers as it says. */
  private buffering: boolean | null = null;

  protected readonly req: RequestInfo;
  protected readonly res: HttpResponse;
  /** Writes the access log line (the route's: a cache fetching from the app may keep it quiet); nothing once the request is rerouted. */
  private log: RouteRequest['log'];
  /**
   * What an X-Accel-Redirect needs of the route request (its reroute
   * follows one), kept here rather than the request itself: an exchange
   * must not hold one more object for as long as it runs.
   */
  private readonly reroute: Reroute | null;
  private readonly scheme: string;
  private readonly host: string;
  private readonly lean: NodeParts | null;

  constructor(
    readonly frame: Buffer,
    r: RouteRequest<RequestInfo, HttpResponse>,
    protected readonly ctx: ExchangeContext,
    /**
     * Bytes in the temp file past which the app waits until the client has
     * taken them all (max_temp_file_size; 0: no temp file): an ASGI app's
     * sends for this response (WS_PAUSE, WS_RESUME), a WSGI worker as a
     * whole (its stream is not read: it cannot wait for one response alone).
     */
    private readonly maxTempFile: number,
    private readonly bodyFile: string | null,
    /** Takes the request back from its pool (queue or worker). */
    protected readonly cancel: (x: WsgiExchange) => void,
  ) {
    this.req = r.req;
    this.res = r.res;
    this.log = r.log;
    this.reroute = r.reroute;
    this.scheme = r.scheme;
    this.host = r.host;
    this.lean = r.lean;
    watchClient(this.req, this.res, this);
  }

  get clientResponse(): HttpResponse {
    return this.res;
  }

  get label(): string {
    return `${this.req.method} ${this.req.url}`;
  }

  get idempotent(): boolean {
    return isIdempotent(this.req.method);
  }

  response(payload: Buffer): void {
    if (this.done) return;
    const headEnd = responseHeadEnd(payload);
    let body = payload.subarray(headEnd);
    const z = this.ctx.compression;
    // Small bodies (the common case) cost one comparison here, and their head goes out as the worker sent it.
    const compress = z !== null && (body.length >= z.minSize || this.req.method === 'HEAD');
    if (!compress && this.res.writeHeadBlock !== undefined && this.respondAsSent(payload, headEnd, body)) return;
    const head = decodeHead(payload, 4, headEnd);
    if (this.readAccel(head)) return;
    // A large body is compressed through a stream, as a streamed one, so the event loop is never held long.
    if (compress && body.length > SYNC_LIMIT) {
      this.start(head, false, body.length);
      this.body(body);
      return this.end();
    }
    const coding = compress ? compressHead(head, z, this.req, body.length, false) : null;
    if (coding !== null) {
      body = compressSync(coding, body);
      head.push('Content-Length', String(body.length));
    }
    if (!this.writeHead(head)) return;
    this.bytes = body.length;
    this.res.end(body);
    this.complete();
  }

  /** response() of a head that needs no change, written from the worker's bytes; false when it needs one (nothing written). */
  private respondAsSent(payload: Buffer, headEnd: number, body: Buffer): boolean {
    if (this.ctx.draining) this.res.shouldKeepAlive = false;
    try {
      this.status = this.res.writeHeadBlock!(payload, 4, headEnd);
    } catch (err) {
      this.invalidHead(err as Error);
      return true;
    }
    // 0: the head has X-Accel-* headers, to be read and taken off (response() goes on with it decoded).
    if (this.status === 0) return false;
    this.bytes = body.length;
    this.res.end(body);
    this.complete();
    return true;
  }

  /** The head of a streamed response (`length`: its body's, when known). */
  start(head: string[], trailers = false, length?: number): void {
    if (this.done || this.readAccel(head)) return;
    if (trailers) this.res.expectTrailers?.();
    const sink = new BodySink(this.res, { buffering: this.buffering ?? true, memory: RESPONSE_MEMORY, maxFile: this.maxTempFile }, (err) => {
      this.ctx.logger.error(`${this.label}: compression failed: ${err.message}`);
      this.abort();
    }, this.ctx.logger);
    if (this.writeHead(head, (status, reason, headers) => sink.head(this.ctx.compression, this.req, status, reason, headers, length))) this.sink = sink;
  }

  body(chunk: Buffer): void {
    if (this.done || this.sink === null) return;
    if (!this.sink.write(chunk) && !this.holdingApp) {
      this.holdApp(true);
      this.sink.whenReady(() => this.holdApp(false));
    }
  }

  private holdApp(hold: boolean): void {
    if (this.holdingApp === hold) return;
    this.holdingApp = hold;
    const w = this.heldWorker ?? this.worker;
    if (w === null) return;
    if (w.interface === 'wsgi') {
      w.holdStream(this, hold);
      this.heldWorker = hold ? w : null;
    } else if (!this.done) w.relay(this, encodeEmpty(hold ? Frame.WS_PAUSE : Frame.WS_RESUME, 0));
  }

  /** Kept by the response until its end: written after the last body bytes (the encoder's too). */
  trailers(fields: Array<[string, string]>): void {
    if (!this.done) this.res.addTrailers?.(fields);
  }

  file(spec: FileSpec): void {
    if (this.done || spec.length === 0) return;
    this.streaming = true;
    open(spec.path, 'r', (err, fd) => {
      if (err) return this.fileFailed(`cannot open ${spec.path.toString()}: ${err.code}`);
      fstat(fd, (statErr, st) => {
        if (statErr || st.dev !== spec.dev || st.ino !== spec.ino) {
          close(fd, () => {});
          return this.fileFailed(`${spec.path.toString()} was replaced before it could be sent`);
        }
        const stream: Readable = readFileRegion(fd, spec.offset, spec.offset + spec.length - 1);
        if (this.done) return void stream.destroy();
        this.fileStream = stream;
        const sink = this.sink!;
        stream.on('error', (e) => this.fileFailed(e.message));
        // The file waits for a slow client rather than fill the temp file.
        stream.on('data', (chunk: Buffer) => {
          sink.write(chunk);
          if (!sink.keepingUp) {
            stream.pause();
            sink.whenReady(() => stream.resume());
          }
        });
        stream.on('end', () => {
          this.streaming = false;
          this.fileStream = null;
          if (this.endPending) this.end();
        });
      });
    });
  }

  end(): void {
    if (this.done) return;
    if (this.streaming) {
      this.endPending = true;
      return;
    }
    if (this.sink === null) {
      this.res.end();
      return this.complete();
    }
    this.sink.end(() => {
      if (!this.done) this.complete();
    });
  }

  abort(): void {
    if (this.done) return;
    this.res.destroy();
    this.complete();
  }

  fail(status: 502 | 503 | 504, reason: string): void {
    if (this.done) return;
    if (this.res.headersSent) {
      this.ctx.logger.warning(`${this.label}: ${reason} after the response started; connection cut`);
      this.abort();
      return;
    }
    this.status = status;
    this.bytes = sendPlain(this.res, status, FAIL_TEXT[status], this.ctx.draining);
    this.ctx.logger.log(status === 503 ? 'warning' : 'error', `${this.label}: ${status} ${reason}`);
    this.complete();
  }

  /** The client went away before the response was complete. */
  clientGone(): void {
    if (this.done) return;
    if (!this.res.headersSent) this.status = 499; // nginx's code for "client closed request"
    this.complete();
    this.cancel(this);
  }

  private fileFailed(why: string): void {
    this.ctx.logger.error(`${this.label}: file response failed: ${why}`);
    this.streaming = false;
    this.abort();
  }

  /**
   * Writes `head` (its status line taken off: the rest is the headers, not
   * copied into an array of their own), by `write` when given (a sink's,
   * which may compress); false when Node refused it (answered 500).
   */
  private writeHead(head: string[], write?: (status: number, reason: string, headers: string[]) => void): boolean {
    const statusLine = head.shift()!;
    this.status = Number(statusLine.slice(0, 3));
    if (this.ctx.draining) this.res.shouldKeepAlive = false;
    try {
      if (write === undefined) this.res.writeHead(this.status, statusLine.slice(4), head.length > 0 ? head : undefined);
      else write(this.status, statusLine.slice(4), head);
      return true;
    } catch (err) {
      this.invalidHead(err as Error);
      return false;
    }
  }

  /**
   * The X-Accel-* headers of the app's head (status line first), taken off
   * it unless a web server in front reads them (reroute null): the buffering
   * and the cache's freshness they ask for noted. True when the head has
   * X-Accel-Redirect and the front follows it: nothing of the answer goes
   * out (the rest of its frames are dropped), the front routes the request
   * again, and the access log line is the final answer's.
   */
  private readAccel(head: string[]): boolean {
    const accel = readAccel(head, 1, this.res, this.reroute);
    if (accel === null) return false;
    this.buffering = accel.buffering;
    if (accel.redirect === null) return false;
    const { req, res, log, scheme, host, lean } = this;
    this.log = rerouted;
    this.complete();
    this.reroute!({ req, res, log, scheme, host, lean }, accel.redirect);
    return true;
  }

  /** Node refused a header the worker let through (or the head was no head): 500 rather than a crash. */
  private invalidHead(err: Error): void {
    this.ctx.logger.error(`${this.label}: invalid response from the app: ${err.message}`);
    this.res.removeHeader('content-length');
    this.status = 500;
    this.bytes = sendPlain(this.res, 500, 'Internal Server Error', this.ctx.draining);
    this.complete();
  }

  protected complete(): void {
    this.done = true;
    // An ASGI request ends in its worker by itself (CANCEL when the client left); a WSGI worker's stream must be read again.
    this.holdApp(false);
    this.fileStream?.destroy();
    if (this.sink !== null) {
      this.bytes = this.sink.bytes;
      this.sink.close();
    }
    unwatchClient(this.req, this);
    discardBodyFile(this.bodyFile);
    this.log(this.status, this.bytes);
  }
}
