/**
 * The HTTP front: listeners, connection limits, routing each request to its
 * handler. On plain listeners the front reads ordinary requests itself
 * (fast-path.ts); Node's llhttp parses the rest of HTTP/1: HTTP/1.0, chunked
 * bodies, upgrades, and 400 for malformed requests or ones with both
 * Content-Length and Transfer-Encoding. TLS listeners (llhttp throughout) also
 * speak HTTP/2 (listener.ts); every request takes the same onRequest path.
 * An HTTP/1.1 request asking to switch protocols (Upgrade) is routed the
 * same way and given to its action's upgrade() (onUpgrade).
 */
import { IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { chmod, lstatSync, unlinkSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex, Readable } from 'node:stream';
import { GatehouseError } from '../errors.js';
import { formatBind, parseBind } from '../config/bind.js';
import type { Config, ListenerSettings } from '../config/schema.js';
import type { ExchangeContext, Handler, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { refuse, sendPlain } from '../http/plain-response.js';
import { parseTarget } from '../http/request-target.js';
import { TrustedProxies } from '../http/forwarded.js';
import { inFlightOn } from '../http/in-flight.js';
import { createListenerServer, type ListenerServer } from './listener.js';
import { hostName, type Router } from './router.js';
import { isTls } from './tls-context.js';
import { FastPath, type LeanParts, type Serve } from './fast-path.js';
import { H2Request, H2Response } from './h2-compat.js';
import { h2Request, Http2Response } from './http2-response.js';
import { MemoryAnswers } from './memory-answers.js';
import { createGatewayServer } from './gateway-listener.js';
import { gatewayScheme } from './gateway-stream.js';

/** What the front needs to know about the listener a request came in on. */
interface ListenerInfo {
  scheme: 'http' | 'https';
  /** Redirect every request to https on this port (a plain listener's redirect_https). */
  httpsPort: number | null;
}

export class HttpFront {
  readonly servers: ListenerServer[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<ServerHttp2Session>();
  /** TCP connections open, over every listener (max_connections). */
  private open = 0;
  /** Plain HTTP/1.1 connections start here (see fast-path.ts). */
  private readonly fastPath: FastPath;
  /** Null when no peer is trusted (the default): requests then skip forwarded-header handling entirely. */
  private readonly proxies: TrustedProxies | null;
  /** Connections refused at max_connections since the last warning, and when that was. */
  private refused = 0;
  private refusedWarnedAt = -Infinity;

  constructor(
    private readonly router: Router,
    private readonly ctx: ExchangeContext,
    private readonly settings: Config,
  ) {
    this.proxies = settings.forwarded_allow_ips.length > 0 ? new TrustedProxies(settings.forwarded_allow_ips) : null;
    this.fastPath = new FastPath({
      memory: new MemoryAnswers(router),
      settings,
      ctx,
      proxies: this.proxies,
      onClientError: (socket, code) => this.onClientError(Object.assign(new Error(code), { code }), socket),
    });
  }

  /** Listens on every address; rejects with GH_ERR_BIND naming the address that failed. */
  async listen(listeners: readonly ListenerSettings[]): Promise<string[]> {
    const bound: string[] = [];
    for (const listener of listeners) {
      const bind = parseBind(listener.bind).address!;
      const redirect = listener.redirect_https;
      const tls = isTls(listener);
      const info: ListenerInfo = { scheme: tls ? 'https' : 'http', httpsPort: redirect === false ? null : redirect === true ? 443 : redirect };
      const serve: Serve = {
        node: (req, res) => this.onRequest(req, res, info),
        lean: (req, res, lean) => this.onLeanRequest(req, res, info, lean),
      };
      const http = createListenerServer(listener, this.settings, serve.node);
      // A uwsgi/FastCGI/SCGI listener hands node:http one stream per request (gateway-listener.ts).
      const protocol = listener.protocol;
      const gateway = protocol !== 'http';
      const server = gateway ? createGatewayServer(protocol, http, this.ctx.logger, this.settings.header_timeout * 1000) : http;
      http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, info, true));
      const max = this.settings.max_connections;
      // redirect_https answers every request itself, in onRequest.
      const toHttp = info.httpsPort === null && !gateway ? takeConnections(server, tls ? 'secureConnection' : 'connection') : null;
      // After an answer that switched no protocol, the connection goes on as one just accepted.
      const resume = toHttp === null ? null : (socket: Socket) => this.fastPath.take(socket, serve, toHttp);
      http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket as Socket, head, info, resume));
      server.on('connection', (socket: Socket) => {
        // Counted over every listener (Node's maxConnections is per server), before any TLS handshake.
        if (max > 0 && this.open >= max) return this.refuseConnection(socket);
        this.open++;
        if (tls) return void socket.once('close', () => this.open--);
        this.track(socket, true);
        if (toHttp !== null) this.fastPath.take(socket, serve, toHttp);
      });
      // Requests see the TLS socket, not the TCP one under it: track what they see. HTTP/1.1
      // over TLS is read by the fast path too; HTTP/2 sessions go to node:http2.
      if (tls) {
        server.on('secureConnection', (socket: TLSSocket) => {
          this.track(socket, false);
          if (socket.alpnProtocol === 'h2') toHttp!(socket);
          else this.fastPath.take(socket, serve, toHttp!);
        });
      }
      server.on('session', (session: ServerHttp2Session) => this.onSession(session));
      server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) =>
        this.onStream(stream, headers, rawHeaders, info, serve.lean));
      server.on('tlsClientError', (err: Error, socket: Socket) => this.ctx.logger.debug(`TLS handshake with ${socket.remoteAddress} failed: ${err.message}`));
      http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as Socket));
      // Without a listener Node drops CONNECT silently; a client deserves an answer.
      http.on('connect', (_req: IncomingMessage, socket: Duplex) => {
        socket.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      });
      this.servers.push(server);
      if (bind.kind === 'unix') removeStaleSocket(bind.path);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
          reject(new GatehouseError('GH_ERR_BIND', `cannot listen on ${formatBind(bind)}: ${why}`));
        });
        const listening = () => resolve();
        const mode = listener.chmod === undefined ? undefined : parseInt(listener.chmod, 8);
        const chmodded = (path: string) => () =>
          chmod(path, mode!, (err) => (err ? reject(new GatehouseError('GH_ERR_BIND', `cannot chmod ${path}: ${err.code ?? err.message}`)) : listening()));
        if (bind.kind === 'unix') server.listen(bind.path, mode === undefined ? listening : chmodded(bind.path));
        else server.listen({ host: bind.host, port: bind.port }, listening);
      });
      const addr = server.address();
      bound.push(`${gateway ? protocol : info.scheme}://${typeof addr === 'string' || addr === null ? `unix:${addr}` : formatTcp(addr)}`);
    }
    return bound;
  }

  /**
   * Stops accepting and closes idle keep-alive connections; requests under
   * way (still sending their body, or still receiving the response) go on
   * until `deadline` (performance.now() ms), and are answered with
   * Connection: close. HTTP/2 sessions get GOAWAY and close once their
   * streams are done.
   */
  async drain(deadline: number): Promise<void> {
    this.ctx.draining = true;
    for (const s of this.servers) s.close();
    // GOAWAY: the client opens no new stream; the session closes once its streams are done.
    for (const session of this.sessions) session.close();
    while (this.sockets.size > 0 && performance.now() < deadline) {
      // Node counts a connection idle once its response is ended, even while
      // that response is still being written to a slow client: close idle ones
      // only when nothing is still on its way out.
      const flushing = [...this.sockets].some((s) => inFlightOn(s).length > 0 || s.writableLength > 0);
      if (!flushing) {
        for (const s of this.servers) s.closeIdleConnections();
        this.fastPath.closeIdle();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Cuts every connection at once. */
  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private onSession(session: ServerHttp2Session): void {
    if (this.ctx.draining) return void session.close();
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    // keepalive_timeout for HTTP/2: a session quiet that long with no stream open is closed (GOAWAY).
    let open = 0;
    session.on('stream', (stream: Duplex) => {
      open++;
      stream.once('close', () => open--);
    });
    const idle = this.settings.keepalive_timeout * 1000;
    if (idle > 0) session.setTimeout(idle, () => open === 0 && session.close());
  }

  /** Past max_connections: close at once, and say so in the error log at most every 10 s. */
  private refuseConnection(socket: Socket): void {
    socket.destroy();
    this.refused++;
    const now = performance.now();
    if (now - this.refusedWarnedAt < 10_000) return;
    this.ctx.logger.warning(`max_connections (${this.settings.max_connections}) reached: refused ${this.refused} new connection(s)`);
    this.refused = 0;
    this.refusedWarnedAt = now;
  }

  /**
   * A request Node's parser refused (malformed, head too large, head not in
   * time): answered as Node would, and written to the access log as nginx
   * does, so a slowloris shows there as 408s.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // Bytes after a request that ends the connection (RFC 9112 §9.6): ignored; the
    // answer under way goes out, then the connection closes (llhttp keeps reading them).
    if (err.code === 'HPE_CLOSED_CONNECTION') return;
    const status = CLIENT_ERRORS[err.code ?? ''] ?? 400;
    // The client is gone, or a response is already on its way (pipelining): nothing can be said.
    const replying = err.code !== 'ECONNRESET' && socket.writable && !(socket as SocketWithMessage)._httpMessage?.headersSent;
    if (!replying) return void socket.destroy();
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    this.ctx.accessLog?.write(new IncomingMessage(socket), status, 0);
    // Once written (answers before it may still be on their way), whether or not the client closes its side.
    socket.destroySoon();
  }

  /** A connection requests come in on; `counted` when its close also ends a max_connections count. */
  private track(socket: Socket, counted: boolean): void {
    this.sockets.add(socket);
    (socket as TrackedSocket)[kFront] = { front: this, counted };
    socket.once('close', onTrackedClose);
  }

  /** @internal a tracked connection closed. */
  closed(socket: Socket, counted: boolean): void {
    if (counted) this.open--;
    this.onConnectionClosed(socket);
  }

  /** The client went away: stop the work still under way for it. */
  private onConnectionClosed(socket: Socket): void {
    this.sockets.delete(socket);
    for (const x of inFlightOn(socket).slice()) x.clientGone();
  }

  /** A request as node:http has it (TLS, HTTP/2, and what the fast path hands over). */
  private onRequest(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, expectsContinue = false): void {
    const fault = req instanceof H2Request ? 0 : framingFault(req);
    if (fault !== 0) {
      this.ctx.accessLog?.begin(req);
      return refuse({ res, log: this.logFor(req, res) }, fault);
    }
    const r = this.route(req, res, listener, expectsContinue);
    if (r === null) return;
    if (expectsContinue) continueInTurn(res);
    r.handler.serve(r);
  }

  /**
   * An HTTP/2 stream: a lean request record and response writer
   * (http2-response.ts), through the same path as the fast path's requests;
   * an action that needs node:http's objects gets node:http2's look-alikes
   * (h2-compat.ts), made then. Expect and CONNECT as node:http2 answers them.
   */
  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], listener: ListenerInfo, lean: Serve['lean']): void {
    const method = headers[':method'];
    if (method === 'CONNECT' || (headers.expect !== undefined && headers.expect !== '100-continue')) {
      stream.on('error', () => {});
      stream.respond({ ':status': method === 'CONNECT' ? 405 : 417 }, { endStream: true });
      return;
    }
    if (headers.expect !== undefined) stream.additionalHeaders({ ':status': 100 });
    const req = h2Request(stream, headers, rawHeaders);
    const body = stream.endAfterHeaders ? null : stream;
    const toNode = () => {
      const nodeReq = new H2Request(stream, headers, {}, rawHeaders);
      return { req: nodeReq as unknown as IncomingMessage, res: new H2Response(stream) as unknown as ServerResponse };
    };
    lean(req, new Http2Response(stream, method), { body, toNode });
  }

  /**
   * A request asking to switch protocols: node:http has let go of the socket
   * (its 'upgrade' event). Routed as any other; an action with upgrade()
   * takes the socket. Any other answer (a refusal, or an action without
   * upgrade(), which sees the request as any other) goes through a
   * ServerResponse of our own on the socket; once it is sent the connection
   * goes on with its next request (`resume`), as node:http would have done
   * without an 'upgrade' listener, unless the answer closes it.
   */
  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, listener: ListenerInfo, resume: ((socket: Socket) => void) | null): void {
    // node:http took its own error listener away with the socket.
    const onError = () => socket.destroy();
    socket.on('error', onError);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = req.httpVersionMinor >= 1 && req.headers.connection?.toLowerCase().includes('close') !== true;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      // node:http's own `_last`: the answer said Connection: close (shouldKeepAlive off, or the action's header).
      const last = (res as unknown as { _last?: boolean })._last === true;
      if (last || resume === null || this.ctx.draining || !req.complete) return void socket.destroySoon();
      socket.removeListener('error', onError);
      if (head.length > 0) socket.unshift(head);
      resume(socket);
    });
    const fault = framingFault(req);
    if (fault !== 0) {
      this.ctx.accessLog?.begin(req);
      return refuse({ res, log: this.logFor(req, res) }, fault);
    }
    const r = this.route(req, res, listener, false);
    if (r === null) return;
    const { handler, res: _res, body: _body, ...routed } = r;
    if (handler.upgrade === undefined) return handler.serve(r);
    res.detachSocket(socket);
    handler.upgrade({ ...routed, socket, head });
  }

  /**
   * A request the fast path read, with its lean request record and response
   * writer: an action that takes them gets them; any other gets node:http's
   * objects, made now (`lean.toNode`).
   */
  private onLeanRequest(req: RequestInfo, res: HttpResponse, listener: ListenerInfo, lean: LeanParts): void {
    const r = this.route(req, res, listener, false);
    if (r === null) return;
    r.body = lean.body;
    if (r.handler.serveLean !== undefined) return r.handler.serveLean(r);
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
    // First, so that even a refusal is logged with the forwarded client (nginx's real_ip).
    const forwarded = this.proxies?.resolve(req);
    this.ctx.accessLog?.begin(req);
    // keepalive_timeout 0 means no keep-alive, as in nginx (to Node it would mean no timeout at all).
    if (this.settings.keepalive_timeout === 0) res.shouldKeepAlive = false;
    const log = this.logFor(req, res);
    const target = parseTarget(req.url ?? '/');
    if (target === null) return refused({ res, log }, 400);
    const host = hostName(req.headers.host);
    // A trusted proxy may say the client came over https (routing keeps the Host the proxy sent).
    const scheme = forwarded?.proto ?? gatewayScheme(req.socket) ?? listener.scheme;
    if (listener.httpsPort !== null && scheme !== 'https') {
      redirectToHttps(req, res, host, listener.httpsPort, log);
      return null;
    }
    const match = this.router.match(host, target.path);
    if (match === null) {
      if (expectsContinue) return refused({ res, log }, 404);
      log(404, sendPlain(res, 404, 'Not Found', false));
      return null;
    }
    const r = {
      req,
      res,
      scheme,
      host,
      prefix: match.prefix,
      rest: match.rest,
      query: target.query,
      maxRequestBody: match.entry.maxRequestBody,
      log,
      handler: match.entry.handler,
      body: null as Readable | null,
    };
    // max_request_body holds on every route, as nginx's client_max_body_size: a declared
    // body over it is refused before it is read (or, with Expect: 100-continue, sent).
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > r.maxRequestBody) return refused(r, 413);
    return r;
  }

  private logFor(req: RequestInfo, res: HttpResponse): RouteRequest['log'] {
    const accessLog = this.ctx.accessLog;
    return accessLog === null ? noLog : (status: number, bytes: number) => accessLog.write(req, status, bytes, res);
  }
}

/**
 * What llhttp lets through on an HTTP/1 connection and RFC 9112 refuses:
 * an HTTP/0.9 request line (no version: llhttp makes it a request), 400;
 * a version 2 or above on the request line, 505 as nginx answers;
 * Transfer-Encoding in HTTP/1.0 (§6.1: the framing is faulty) and more than
 * one Host (§3.2), 400. The status, or 0 when there is no fault.
 */
function framingFault(req: IncomingMessage): number {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor === 0 ? 400 : 505;
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) return 400;
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
  return hosts > 1 ? 400 : 0;
}

/**
 * 100 Continue, once this response is the connection's current one (behind
 * pipelined ones it has no socket yet) and only while its final answer has
 * not begun (RFC 9110 §10.1.1 lets a server skip it then). Written earlier,
 * node:http (20) would put it after the final answer's head when that is
 * written with a Buffer body (OutgoingMessage._send puts the head in front of
 * what is queued), and the client would take it for its next answer.
 */
function continueInTurn(res: ServerResponse): void {
  if (res.socket !== null) return void res.writeContinue();
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

/** refuse(), for route(): the request is answered. */
function refused(r: { res: HttpResponse; log: RouteRequest['log'] }, status: number): null {
  refuse(r, status);
  return null;
}

/**
 * Takes over a listener's connections: node's own listener for `event`
 * ('connection', or 'secureConnection' on TLS) is removed, and returned to be
 * called for each connection the fast path hands over (or, on TLS, each
 * HTTP/2 one).
 */
function takeConnections(server: ListenerServer, event: 'connection' | 'secureConnection'): (socket: Socket) => void {
  const http = server.listeners(event) as Array<(socket: Socket) => void>;
  server.removeAllListeners(event);
  return (socket) => {
    for (const listener of http) listener.call(server, socket);
  };
}

const kFront = Symbol('gatehouse.front');
type TrackedSocket = Socket & { [kFront]?: { front: HttpFront; counted: boolean } };

/** The 'close' listener of every tracked socket: one function, not a closure per connection (idle ones are many). */
function onTrackedClose(this: TrackedSocket): void {
  const t = this[kFront]!;
  t.front.closed(this, t.counted);
}

/** The request's `log` when there is no access log: nothing to allocate per request. */
function noLog(): void {}

/** Node's parser errors and the status it answers them with (anything else: 400). */
const CLIENT_ERRORS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/** node:http keeps the response being written on its socket (undocumented, but what its own error handler checks). */
type SocketWithMessage = Socket & { _httpMessage?: { headersSent?: boolean } };

function formatTcp(addr: AddressInfo): string {
  return formatBind({ kind: 'tcp', host: addr.address, port: addr.port });
}

/** A socket file left by a previous run would make listen fail; a non-socket file is left alone. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // does not exist
  }
}
