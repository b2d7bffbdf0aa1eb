/**
 * The `app` action: the request goes to an application's worker pool. For
 * a WSGI app the body is read completely first (a slow client costs a
 * buffer, not a Python process); an ASGI app gets a large or unsized body as
 * it arrives (src/asgi/streamed-exchange.ts). The app is mounted at the route's prefix (SCRIPT_NAME, or an
 * ASGI scope's root_path), the rest of the path is PATH_INFO.
 *
 * The pool's interface decides the request block: a WSGI environ or an ASGI
 * scope (src/asgi/scope.ts); the response frames are the same. With
 * `interface = "auto"` it is known once the first worker has imported the
 * app; a request arriving before that waits for it. An ASGI app also takes
 * WebSockets (upgrade()).
 */
import type { Readable } from 'node:stream';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { Exchange } from '../pool/exchange.js';
import { affinityOf } from '../pool/worker-slots.js';
import { clientAddress } from '../http/forwarded.js';
import { encodeRequest, Frame } from '../wire/frames.js';
import { BlockWriter } from '../wire/block-writer.js';
import { bodyEnviron, buildEnviron } from './environ.js';
import { buildScope, scopeBody } from '../asgi/scope.js';
import { hasUnsizedH2Body, readRouteBody, SPILL_BYTES } from '../http/request-body.js';
import { refuse } from '../http/plain-response.js';
import { WsgiExchange } from './wsgi-exchange.js';
import { StreamedExchange } from '../asgi/streamed-exchange.js';
import { WebSocketSession, type SessionRoute } from '../asgi/websocket-session.js';
import type { WebSocketFront } from '../asgi/websocket-front.js';
import type { ExchangeContext, Handler, HttpResponse, LeanRouteRequest, RequestInfo, RouteRequest, UpgradeRequest } from '../http/handler.js';

export class WsgiApp implements Handler {
  constructor(
    readonly pool: WorkerPool,
    private readonly ctx: ExchangeContext,
    /** Spilled request bodies are handed to this user, who runs the workers. */
    private readonly bodyOwner: { uid?: number; gid?: number },
    /** body_timeout in seconds: a body that stops arriving this long gets 408. */
    private readonly bodyTimeout: number,
    /** max_temp_file_size: bytes of a response in the temp file for a slow client before the app waits. */
    private readonly maxTempFile: number,
    /** WebSockets for an ASGI app. */
    private readonly websockets: WebSocketFront,
  ) {}

  private readonly cancel = (x: WsgiExchange) => this.pool.cancel(x);
  /** Where each request's environ or scope is written, and its frame taken from (synchronously). */
  private readonly block = new BlockWriter();
  /** What this app's WebSocket sessions share, made at the first. */
  private sessions: SessionRoute | null = null;

  serve(r: RouteRequest): void {
    this.answer(r, r.req);
  }

  serveLean(r: LeanRouteRequest): void {
    this.answer(r, r.body);
  }

  /**
   * A WebSocket handshake to an ASGI app (src/asgi/websocket-session.ts).
   * Any other upgrade, or any to a WSGI app, is served as an ordinary request.
   */
  upgrade(u: UpgradeRequest): void {
    const asgi = this.pool.asgi;
    if (asgi === null) return this.pool.whenInterfaceKnown(() => this.upgrade(u));
    if (!asgi || u.req.headers.upgrade?.toLowerCase() !== 'websocket') return u.decline();
    buildScope(u.req, u, this.block);
    const frame = this.block.frame(scopeBody(0, null), null);
    frame[0] = Frame.WS_OPEN;
    const session = new WebSocketSession(frame, u, (this.sessions ??= { front: this.websockets, pool: this.pool, logger: this.ctx.logger }));
    this.websockets.handshake(u.req, u.socket, u.head, this.stick(session, u.req));
  }

  private answer(r: RouteRequest<RequestInfo, HttpResponse>, body: Readable | null): void {
    const asgi = this.pool.asgi;
    if (asgi === null) return this.whenInterfaceKnown(r, body);
    const req = r.req;
    const env = asgi ? buildScope(req, r, this.block) : buildEnviron(req, r, this.block);
    const bodyKeys = asgi ? scopeBody : bodyEnviron;
    const te = env.transferEncoding;
    if (env.contentLength === undefined && te === undefined && !hasUnsizedH2Body(req)) return this.dispatch(r, this.block.frame(asgi ? scopeBody(0, null) : '', null), null);
    // The front's own reader gives no stream for a declared empty body.
    if (body === null) return this.dispatch(r, this.block.frame(bodyKeys(0, null), null), null);
    // llhttp de-chunks; any other coding would reach the app still encoded (nginx: 501 too).
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return refuse(r, 501);
    // An ASGI app reads a body of unknown or large size as it arrives; a small one travels whole, in the REQ.
    if (asgi && (env.contentLength === undefined || Number(env.contentLength) > SPILL_BYTES)) {
      return this.send(r, new StreamedExchange(this.block.frame(scopeBody(0, null), null), r, this.ctx, this.maxTempFile, this.cancel, body, this.bodyTimeout * 1000));
    }
    this.readBody(r, body, this.block.toString(), bodyKeys);
  }

  // These two apart from answer(): their closures' variables would be allocated on every call of it.
  private whenInterfaceKnown(r: RouteRequest<RequestInfo, HttpResponse>, body: Readable | null): void {
    this.pool.whenInterfaceKnown(() => this.answer(r, body));
  }

  private readBody(r: RouteRequest<RequestInfo, HttpResponse>, body: Readable, block: string, bodyKeys: (length: number, file: string | null) => string): void {
    readRouteBody(r, body, this.bodyOwner, this.bodyTimeout * 1000, this.ctx.logger, (read) =>
      this.dispatch(r, encodeRequest(0, block + bodyKeys(read.length, read.file), read.data), read.file),
    );
  }

  private dispatch(r: RouteRequest<RequestInfo, HttpResponse>, frame: Buffer, bodyFile: string | null): void {
    this.send(r, new WsgiExchange(frame, r, this.ctx, this.maxTempFile, bodyFile, this.cancel));
  }

  private send(r: RouteRequest<RequestInfo, HttpResponse>, x: WsgiExchange): void {
    this.pool.dispatch(this.stick(x, r.req));
  }

  /** `x`, given its client's affinity when the app is sticky (src/pool/worker-slots.ts). */
  private stick<X extends Exchange>(x: X, req: RequestInfo): X {
    if (this.pool.sticky) x.affinity = affinityOf(clientAddress(req));
    return x;
  }
}
