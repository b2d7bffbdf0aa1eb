/**
 * Where every request enters, whatever brought it: node:http's objects (TLS,
 * what the fast path hands over, gateway listeners), the fast path's lean
 * ones, an HTTP/2 stream, or an Upgrade. Each goes through route(): the
 * forwarded client, the target, redirect_https, the route and
 * max_request_body; then its route's action takes it. The listeners and
 * connections these come from are http-front.ts's.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { ExchangeContext, Handler, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { refuse, sendPlain } from '../http/plain-response.js';
import { hostName, parseTarget } from '../http/request-target.js';
import type { TrustedProxies } from '../http/forwarded.js';
import type { AccessLog } from '../log/access-log.js';
import type { Router } from './router.js';
import type { LeanParts, Serve } from './fast-path.js';
import { H2Request, H2Response } from './h2-compat.js';
import { connectionOf, h2Request, Http2Response, overHeaderListSize } from './http2-response.js';
import { gatewayScheme } from './gateway-request.js';
import { restoreLine } from './stand-in-line.js';
import { InternalRedirect } from './internal-redirect.js';
import { destroySocket, headWithoutUpgrade, Upgrade } from './upgrade-request.js';

/** What node:http takes for a 100-continue expectation (its own test: the token anywhere in the value). */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/** Where route() sends a request: its route's action and the request's place under it. */
export type Placement = Omit<RouteRequest, 'req' | 'res' | 'log' | 'reroute' | 'lean'> & { handler: Handler };
/** Or why the front answers the request itself: a status, or 'https' for redirect_https. */
type Placing = Placement | 400 | 404 | 413 | 'https';

/** What the front needs to know about the listener a request came in on. */
export interface ListenerInfo {
  scheme: 'http' | 'https';
  /** Redirect every request to https on this port (a plain listener's redirect_https). */
  httpsPort: number | null;
  /** A uwsgi, FastCGI or SCGI listener: X-Accel-Redirect is the web server's in front (RouteRequest.reroute). */
  gateway: boolean;
}

export class RequestIntake {
  /** Where an X-Accel-Redirect takes a request. */
  private readonly redirects: InternalRedirect;

  constructor(
    private readonly router: Router,
    private readonly ctx: ExchangeContext,
    private readonly settings: Config,
    /** Null when no peer is trusted (the default): requests then skip forwarded-header handling entirely. */
    private readonly proxies: TrustedProxies | null,
  ) {
    this.redirects = new InternalRedirect(router, ctx);
  }

  /** A request as node:http has it (TLS, HTTP/2, and what the fast path hands over). */
  onRequest(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, expectsContinue = false): void {
    restoreLine(req);
    const fault = req instanceof H2Request ? 0 : framingFault(req);
    if (fault !== 0) {
      this.ctx.accessLog?.begin(req);
      return refuse({ res, log: this.logFor(req, res) }, fault);
    }
    const r = this.route(req, res, listener, expectsContinue);
    if (r === null) return;
    if (expectsContinue) continueInTurn(req, res);
    r.handler.serve(r);
  }

  /**
   * An HTTP/2 stream: a lean request record and response writer
   * (http2-response.ts), through the same path as the fast path's requests;
   * an action that needs node:http's objects gets node:http2's look-alikes
   * (h2-compat.ts), made then. Expect and CONNECT as node:http2 answers them.
   */
  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], listener: ListenerInfo, lean: Serve['lean']): void {
    // As nghttp2 answers one over the limit it has announced: the stream reset with ENHANCE_YOUR_CALM.
    if (overHeaderListSize(stream, rawHeaders, this.settings.max_header_size)) {
      stream.on('error', () => {});
      return void stream.close(h2constants.NGHTTP2_ENHANCE_YOUR_CALM);
    }
    const method = headers[':method'];
    if (method === 'CONNECT' || (headers.expect !== undefined && headers.expect !== '100-continue')) {
      stream.on('error', () => {});
      stream.respond({ ':status': method === 'CONNECT' ? 405 : 417 }, { endStream: true });
      return;
    }
    if (headers.expect !== undefined) stream.additionalHeaders({ ':status': 100 });
    const conn = connectionOf(stream);
    const req = h2Request(stream, headers, rawHeaders, conn.socket);
    lean(req, new Http2Response(stream, method, conn), new H2LeanParts(stream, headers, rawHeaders));
    // Nothing to read: without this, node:http2 would resume the stream once it closes, and
    // first close it again from an immediate of its own (for a client still sending).
    if (stream.endAfterHeaders) stream.pause();
  }

  /**
   * A request asking to switch protocols: node:http has let go of the socket
   * (its 'upgrade' event). Routed as any other; an action with upgrade()
   * takes the socket, and nothing is made for an answer it does not send.
   * Any other answer (a refusal, or an action without upgrade() or that
   * declines, which sees the request as any other) goes through a
   * ServerResponse of our own on the socket (upgradeResponse()).
   */
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, listener: ListenerInfo, resume: ((socket: Socket) => void) | null): void {
    restoreLine(req);
    // node:http took its own error listener away with the socket. Not a closure: an action
    // keeping the socket (an open WebSocket) must not keep this request's objects with it.
    socket.on('error', destroySocket);
    afterEarlierAnswers(socket, () => this.inTurn(req, socket, head, listener, resume));
  }

  /** onUpgrade() once the socket is this request's alone. */
  private inTurn(req: IncomingMessage, socket: Socket, head: Buffer, listener: ListenerInfo, resume: ((socket: Socket) => void) | null): void {
    // node:http hands an upgrade over at the end of its head, its body unread and the request
    // marked complete. None with a body is switched (a WebSocket handshake has none; h2c is not
    // served, and `curl --http2 -d` sends a POST with Upgrade: h2c): it is read again as an
    // ordinary request, the `upgrade` token out of its Connection header, so llhttp reads the body.
    if (resume !== null && declaresBody(req)) {
      socket.removeListener('error', destroySocket);
      socket.unshift(Buffer.concat([headWithoutUpgrade(req), head]));
      return resume(socket);
    }
    // As node:http checks any other request: the framing (a missing Host first), then the expectation
    // (417 for one it does not know: gatehouse sets no 'checkExpectation').
    const fault = framingFault(req);
    if (fault !== 0) {
      this.ctx.accessLog?.begin(req);
      const res = this.upgradeResponse(req, socket, head, resume);
      return refuse({ res, log: this.logFor(req, res) }, fault);
    }
    const expect = req.headers.expect;
    if (expect !== undefined && !CONTINUE.test(expect)) {
      this.ctx.accessLog?.begin(req);
      const res = this.upgradeResponse(req, socket, head, resume);
      return this.logFor(req, res)(417, sendPlain(res, 417, 'Expectation Failed', false));
    }
    const place = this.place(req, listener);
    if (typeof place !== 'object' || place.handler.upgrade === undefined) return this.serveDeclined(req, socket, head, place, listener, resume);
    // The 101 is the action's to write: the access log gets no response of ours.
    // Its line is written when the socket closes: the log keeps what it needs of the request, not the request.
    const log = this.ctx.accessLog?.kept(req) ?? noLog;
    place.handler.upgrade(new Upgrade(this, req, socket, head, place, log, listener, resume));
  }

  /** @internal An action declined an upgrade: it is served as any other request. */
  declined(u: Upgrade, place: Placement, listener: ListenerInfo, resume: ((socket: Socket) => void) | null): void {
    this.serveDeclined(u.req, u.socket, u.head, place, listener, resume);
  }

  /** An upgrade served as any other request, a 100 Continue first when it asks for one (only 100-continue is left by now), as onRequest. */
  private serveDeclined(req: IncomingMessage, socket: Socket, head: Buffer, place: Placing, listener: ListenerInfo, resume: ((socket: Socket) => void) | null): void {
    const expectsContinue = req.headers.expect !== undefined;
    const r = this.placed(req, this.upgradeResponse(req, socket, head, resume), place, listener, expectsContinue);
    if (r === null) return;
    if (expectsContinue) r.res.writeContinue();
    r.handler.serve(r);
  }

  /**
   * node:http's response on an upgrade's socket, for an answer that switches
   * no protocol; once it is sent the connection goes on with its next
   * request (`resume`), as node:http would have done without an 'upgrade'
   * listener, unless the answer closes it.
   */
  private upgradeResponse(req: IncomingMessage, socket: Socket, head: Buffer, resume: ((socket: Socket) => void) | null): ServerResponse {
    const res = new ServerResponse(req);
    // llhttp reads Proxy-Connection as Connection.
    const close = (value: string | string[] | undefined) => typeof value === 'string' && value.toLowerCase().includes('close');
    res.shouldKeepAlive = req.httpVersionMinor >= 1 && !close(req.headers.connection) && !close(req.headers['proxy-connection']);
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      // node:http's own `_last`: the answer said Connection: close (shouldKeepAlive off, or the action's header).
      const last = (res as unknown as { _last?: boolean })._last === true;
      if (last || resume === null || this.ctx.draining || !req.complete) return void socket.destroySoon();
      socket.removeListener('error', destroySocket);
      if (head.length > 0) socket.unshift(head);
      resume(socket);
    });
    return res;
  }

  /**
   * A request the fast path read, with its lean request record and response
   * writer: an action that takes them gets them; any other gets node:http's
   * objects, made now (`lean.toNode`).
   */
  onLeanRequest(req: RequestInfo, res: HttpResponse, listener: ListenerInfo, lean: LeanParts): void {
    const r = this.route(req, res, listener, false);
    if (r === null) return;
    r.body = lean.body;
    if (r.handler.serveLean !== undefined) {
      r.lean = lean;
      return r.handler.serveLean(r);
    }
    const node = lean.toNode();
    this.ctx.accessLog?.begin(node.req);
    r.handler.serve({ ...r, req: node.req, res: node.res, log: this.logFor(node.req, node.res) });
  }

  /**
   * What every request goes through before its route's action takes it:
   * the forwarded client, the target, redirect_https, the route and
   * max_request_body. Null when the front has answered already.
   */
  private route<Req extends RequestInfo, Res extends HttpResponse>(
    req: Req,
    res: Res,
    listener: ListenerInfo,
    expectsContinue: boolean,
  ): (RouteRequest<Req, Res> & { handler: Handler; body: Readable | null }) | null {
    return this.placed(req, res, this.place(req, listener), listener, expectsContinue);
  }

  /** Where a request goes (see Placing). */
  private place(req: RequestInfo, listener: ListenerInfo): Placing {
    // First, so that even a refusal is logged with the forwarded client (nginx's real_ip).
    const forwarded = this.proxies?.resolve(req);
    this.ctx.accessLog?.begin(req);
    const target = parseTarget(req.url ?? '/');
    if (target === null) return 400;
    if (target.host !== null) useTargetHost(req, target.host);
    const host = hostName(req.headers.host);
    // A trusted proxy may say the client came over https (routing keeps the Host the proxy sent).
    const scheme = forwarded?.proto ?? gatewayScheme(req.socket) ?? listener.scheme;
    if (listener.httpsPort !== null && scheme !== 'https') return 'https';
    const match = this.router.match(host, target.path);
    if (match === null || match.entry.internal) return 404;
    const maxRequestBody = match.entry.maxRequestBody;
    // max_request_body holds on every route, as nginx's client_max_body_size: a declared
    // body over it is refused before it is read (or, with Expect: 100-continue, sent).
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxRequestBody) return 413;
    return { scheme, host, prefix: match.prefix, rest: target.path.slice(match.prefix.length), query: target.query, maxRequestBody, handler: match.entry.handler };
  }

  /** route() once the request is placed: its answer if the front gives it (null then), else what its action takes. */
  private placed<Req extends RequestInfo, Res extends HttpResponse>(
    req: Req,
    res: Res,
    place: Placing,
    listener: ListenerInfo,
    expectsContinue: boolean,
  ): (RouteRequest<Req, Res> & { handler: Handler; body: Readable | null }) | null {
    // keepalive_timeout 0 means no keep-alive, as in nginx (to Node it would mean no timeout at all).
    if (this.settings.keepalive_timeout === 0) res.shouldKeepAlive = false;
    const log = this.logFor(req, res);
    if (typeof place === 'object') {
      const { scheme, host, prefix, rest, query, maxRequestBody, handler } = place;
      return { req, res, scheme, host, prefix, rest, query, maxRequestBody, log, reroute: listener.gateway ? null : this.redirects.reroute, lean: null, handler, body: null };
    }
    if (place === 'https') redirectToHttps(req, res, hostName(req.headers.host), listener.httpsPort!, log);
    else if (place === 404 && !expectsContinue) log(404, sendPlain(res, 404, 'Not Found', false));
    else refuse({ res, log }, place);
    return null;
  }

  private logFor(req: RequestInfo, res: HttpResponse | undefined): RouteRequest['log'] {
    const accessLog = this.ctx.accessLog;
    return accessLog === null ? noLog : logTo(accessLog, req, res);
  }
}

/** An HTTP/2 stream's LeanParts: node:http2's compatibility objects are made only if an action asks. */
class H2LeanParts implements LeanParts {
  readonly body: Readable | null;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly rawHeaders: string[],
  ) {
    this.body = stream.endAfterHeaders ? null : stream;
  }

  toNode(): { req: IncomingMessage; res: ServerResponse } {
    const req = new H2Request(this.stream, this.headers, {}, this.rawHeaders);
    return { req: req as unknown as IncomingMessage, res: new H2Response(this.stream) as unknown as ServerResponse };
  }
}

/** Apart from logFor(): a closure's variables would make every call of it allocate them, access log or not. */
function logTo(accessLog: AccessLog<RequestInfo>, req: RequestInfo, res: HttpResponse | undefined): RouteRequest['log'] {
  return (status, bytes) => accessLog.write(req, status, bytes, res);
}

/**
 * What llhttp lets through on an HTTP/1 connection and RFC 9112 refuses:
 * an HTTP/0.9 request line (no version: llhttp makes it a request), 400;
 * a version 2 or above on the request line, 505 as nginx answers;
 * Transfer-Encoding in HTTP/1.0 (§6.1: the framing is faulty), more than
 * one Host, or none in HTTP/1.1 (§3.2), 400 (node:http refuses a missing
 * Host itself, but not on a request it hands to 'upgrade'). The status, or
 * 0 when there is no fault.
 */
function framingFault(req: IncomingMessage): number {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor === 0 ? 400 : 505;
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) return 400;
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (isHost(raw[i]!)) hosts++;
  return hosts > 1 || (hosts === 0 && req.httpVersionMinor === 1) ? 400 : 0;
}

/**
 * An absolute-form target (`GET http://a.example/p`) names the host: RFC
 * 9112 §3.2.2 has the server ignore the Host header then (nginx routes by
 * it too). It replaces the Host header, as Apache does, so that routing,
 * the app's HTTP_HOST, the cache key and a proxied request all see one host.
 * Only node:http reads such targets (the fast path hands them over).
 */
function useTargetHost(req: RequestInfo, host: string): void {
  req.headers.host = host;
  const raw = req.rawHeaders;
  let i = 0;
  while (i < raw.length && !isHost(raw[i]!)) i += 2;
  // An HTTP/1.0 request may come without a Host: it gets this one.
  if (i === raw.length) raw.push('Host', host);
  else raw[i + 1] = host;
}

const isHost = (name: string) => name.length === 4 && name.toLowerCase() === 'host';

/**
 * `then()` once node:http has written its answers to the requests pipelined
 * before the one it let go of the socket for (an upgrade, a CONNECT): until
 * then the socket is theirs. Never if the socket closes first.
 */
export function afterEarlierAnswers(socket: Socket, then: () => void): void {
  if (socket.destroyed) return;
  const earlier = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  // node:http gives the socket to its next queued answer when one finishes (its own 'finish' listener runs first).
  if (earlier != null) return void earlier.once('finish', () => afterEarlierAnswers(socket, then));
  then();
}

function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0);
}

/**
 * 100 Continue, once this response is the connection's current one (behind
 * pipelined ones it has no socket yet) and only while its final answer has
 * not begun (RFC 9110 §10.1.1 lets a server skip it then). Written earlier,
 * node:http (20) would put it after the final answer's head when that is
 * written with a Buffer body (OutgoingMessage._send puts the head in front of
 * what is queued), and the client would take it for its next answer.
 */
function continueInTurn(req: IncomingMessage, res: ServerResponse): void {
  if (res.socket !== null) return void res.writeContinue();
  // node:http closes the connection after an answer that skipped the 100 (the client may still send
  // the body it holds back); a request that declares none holds nothing back.
  if (!declaresBody(req)) (res as unknown as { _expect_continue: boolean })._expect_continue = false;
  res.once('socket', () => {
    if (!res.headersSent) res.writeContinue();
  });
}

function redirectToHttps(req: RequestInfo, res: HttpResponse, host: string, port: number, log: RouteRequest['log']): void {
  const authority = host.includes(':') ? `[${host}]` : host || 'localhost';
  const location = `https://${authority}${port === 443 ? '' : `:${port}`}${req.url ?? '/'}`;
  // 308 keeps the method and body of a POST; a GET is answered 301 as nginx does.
  const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
  log(status, sendPlain(res, status, `Moved Permanently: ${location}`, req.method !== 'GET' && req.method !== 'HEAD', { Location: location }));
}

/** The request's `log` when there is no access log: nothing to allocate per request. */
function noLog(): void {}
