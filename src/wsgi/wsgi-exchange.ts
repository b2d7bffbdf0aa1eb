/**
 * One HTTP request on its way through a worker pool: turns the worker's
 * frames into the HTTP response, and owns what the request leaves behind
 * (temp body file, access log line).
 */
import { fstat, open, close } from 'node:fs';
import type { Exchange } from '../pool/exchange.js';
import type { WorkerProcess } from '../pool/worker-process.js';
import type { Socket } from 'node:net';
import { decodeHead, encodeEmpty, Frame, responseHeadEnd, type FileSpec } from '../wire/frames.js';
import { discardBodyFile } from '../http/request-body.js';
import { sendPlain } from '../http/plain-response.js';
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { unwatchClient, watchClient, type InFlight } from '../http/in-flight.js';
import { readFileRegion } from '../http/file-region.js';
import { pipeInto, ResponseSpool } from '../http/response-spool.js';
import { compressSync, createEncoder, flushSoon, SYNC_LIMIT, type Coding, type Compression, type Encoder } from '../http/compression.js';
import { compressHead } from '../http/compress-head.js';

/** How much of a response the front holds in memory for a slow client; the rest is spooled to disk. */
const RESPONSE_BUFFER = 1024 * 1024;

const FAIL_TEXT = { 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' } as const;

export class WsgiExchange implements Exchange, InFlight {
  worker: WorkerProcess | null = null;
  id = 0;
  queuedAt = 0;
  sentAt = 0;
  protected status = 0;
  protected bytes = 0;
  protected done = false;
  /** A FILE region is being streamed; END must wait for it. */
  private streaming = false;
  /** Body the client could not take yet, on disk; END must wait for it too. */
  private spool: ResponseSpool | null = null;
  /** The app waits until the spool is empty (spoolLimit reached). */
  private holdingApp = false;
  /** The WSGI worker whose stream is not read meanwhile (it may have finished this request: this.worker is then null). */
  private heldWorker: WorkerProcess | null = null;
  private endPending = false;
  /** The body is being compressed: it goes through this on its way to the response. */
  private encoder: Encoder | null = null;
  private coding: Coding = 'gzip';

  constructor(
    readonly frame: Buffer,
    protected readonly req: RequestInfo,
    protected readonly res: HttpResponse,
    protected readonly ctx: ExchangeContext,
    /**
     * Bytes spooled past which the app waits until the client has taken them
     * all: an ASGI app's sends for this response (WS_PAUSE, WS_RESUME), a
     * WSGI worker as a whole (its stream is not read: it cannot wait for one
     * response alone).
     */
    private readonly spoolLimit: number,
    private readonly bodyFile: string | null,
    /** Takes the request back from its pool (queue or worker). */
    protected readonly cancel: (x: WsgiExchange) => void,
    /** Writes the access log line (the route's: a cache fetching from the app may keep it quiet). */
    private readonly log: RouteRequest['log'],
  ) {
    watchClient(req, res, this);
  }

  get clientResponse(): HttpResponse {
    return this.res;
  }

  get label(): string {
    return `${this.req.method} ${this.req.url}`;
  }

  response(payload: Buffer): void {
    if (this.done) return;
    const headEnd = responseHeadEnd(payload);
    let body = payload.subarray(headEnd);
    const z = this.ctx.compression;
    // Small bodies (the common case) cost one comparison here, and their head goes out as the worker sent it.
    const compress = z !== null && (body.length >= z.minSize || this.req.method === 'HEAD');
    if (!compress && this.res.writeHeadBlock !== undefined) return this.respondAsSent(payload, headEnd, body);
    const head = decodeHead(payload, 4, headEnd);
    if (compress) {
      const coding = compressHead(head, z, this.req, body.length, body.length > SYNC_LIMIT);
      if (coding !== null && body.length > SYNC_LIMIT) {
        if (this.writeHead(head)) this.encode(coding, body.length);
        this.body(body);
        return this.end();
      }
      if (coding !== null) {
        body = compressSync(coding, body);
        head.push('Content-Length', String(body.length));
      }
    }
    if (!this.writeHead(head)) return;
    this.bytes = body.length;
    this.res.end(body);
    this.complete();
  }

  /** response() of a head that needs no change, written from the worker's bytes. */
  private respondAsSent(payload: Buffer, headEnd: number, body: Buffer): void {
    if (this.ctx.draining) this.res.shouldKeepAlive = false;
    try {
      this.status = this.res.writeHeadBlock!(payload, 4, headEnd);
    } catch (err) {
      return this.invalidHead(err as Error);
    }
    this.bytes = body.length;
    this.res.end(body);
    this.complete();
  }

  start(head: string[], trailers = false): void {
    if (this.done) return;
    if (trailers) this.res.expectTrailers?.();
    const z = this.ctx.compression;
    const coding = z === null ? null : compressHead(head, z, this.req, undefined, true);
    if (this.writeHead(head) && coding !== null) this.encode(coding, undefined);
  }

  body(chunk: Buffer): void {
    if (this.done) return;
    if (this.encoder === null) this.bytes += chunk.length;
    else flushSoon(this.encoder, this.coding);
    const out = this.encoder ?? this.res;
    if ((this.spool === null || this.spool.empty) && out.writableLength <= RESPONSE_BUFFER) {
      out.write(chunk);
      return;
    }
    this.spool ??= new ResponseSpool(out, () => {
      if (this.holdingApp) this.holdApp(false);
      if (this.endPending) this.end();
    });
    this.spool.write(chunk);
    if (!this.holdingApp && this.spool.pending > this.spoolLimit) this.holdApp(true);
  }

  private holdApp(hold: boolean): void {
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
        const stream = readFileRegion(fd, spec.offset, spec.offset + spec.length - 1);
        stream.on('error', (e) => this.fileFailed(e.message));
        if (this.encoder === null) stream.on('data', (chunk) => (this.bytes += chunk.length));
        stream.on('end', () => {
          this.streaming = false;
          if (this.endPending) this.end();
        });
        pipeInto(stream, this.encoder ?? this.res, false);
      });
    });
  }

  end(): void {
    if (this.done) return;
    if (this.streaming || (this.spool !== null && !this.spool.empty)) {
      this.endPending = true;
      return;
    }
    // With an encoder, the response ends when its last bytes are out ('end', in encode()).
    if (this.encoder !== null) return void this.encoder.end();
    this.res.end();
    this.complete();
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

  /** From here on the body goes through an encoder; its output is what the client gets, and what the access log counts. */
  private encode(coding: Coding, sizeHint: number | undefined): void {
    const encoder = createEncoder(coding, sizeHint);
    pipeInto(encoder, this.res, true);
    encoder.on('data', (chunk: Buffer) => (this.bytes += chunk.length));
    encoder.once('end', () => {
      if (!this.done) this.complete();
    });
    encoder.once('error', (err) => {
      this.ctx.logger.error(`${this.label}: compression failed: ${err.message}`);
      this.abort();
    });
    this.encoder = encoder;
    this.coding = coding;
  }

  private fileFailed(why: string): void {
    this.ctx.logger.error(`${this.label}: file response failed: ${why}`);
    this.streaming = false;
    this.abort();
  }

  /** Writes `head` (its status line taken off: the rest is the headers, not copied into an array of their own). */
  private writeHead(head: string[]): boolean {
    const statusLine = head.shift()!;
    this.status = Number(statusLine.slice(0, 3));
    if (this.ctx.draining) this.res.shouldKeepAlive = false;
    try {
      this.res.writeHead(this.status, statusLine.slice(4), head.length > 0 ? head : undefined);
      return true;
    } catch (err) {
      this.invalidHead(err as Error);
      return false;
    }
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
    if (this.holdingApp) this.holdApp(false);
    this.spool?.close();
    this.encoder?.destroy();
    unwatchClient(this.req, this);
    discardBodyFile(this.bodyFile);
    this.log(this.status, this.bytes);
  }
}
