/**
 * The HTTP front: listeners, connections and their limits, drain and stop;
 * each request is handed to request-intake.ts, which routes it to its
 * action. On plain listeners the front reads ordinary requests itself
 * (fast-path.ts); Node's llhttp parses the rest of HTTP/1: HTTP/1.0, chunked
 * bodies, upgrades, and 400 for malformed requests or ones with both
 * Content-Length and Transfer-Encoding. TLS listeners (llhttp throughout) also
 * speak HTTP/2 (listener.ts).
 */
import { IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { chmod } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors.js';
import { formatBind, parseBind } from '../config/bind.js';
import type { Config, ListenerSettings } from '../config/schema.js';
import type { ExchangeContext } from '../http/handler.js';
import { TrustedProxies } from '../http/forwarded.js';
import { clientGoneFrom, inFlightOn, onClientEnd } from '../http/in-flight.js';
import { createListenerServer, type ListenerServer } from './listener.js';
import type { Router } from './router.js';
import { isTls } from './tls-context.js';
import { FastPath, type Serve } from './fast-path.js';
import { MemoryAnswers } from './memory-answers.js';
import { createGatewayServer } from './gateway-listener.js';
import { clearStaleSocket } from './socket-file.js';
import { fitConnections } from './open-files.js';
import { afterEarlierAnswers, RequestIntake, type ListenerInfo } from './request-intake.js';
import { trackSession, type H2Connection } from './http2-response.js';
import { readDirectly } from './read-directly.js';
import { clientErrorStatus, URI_TOO_LONG } from './client-errors.js';
import { overflowedInTarget, readByHttp, unwatchLines, type ParserError } from './uri-too-long.js';
import { MemberList } from '../http/member-list.js';
import { faultBody } from '../http/request-body.js';

export class HttpFront {
  readonly servers: ListenerServer[] = [];
  private readonly sockets = new MemberList<Socket>();
  private readonly sessions = new MemberList<ServerHttp2Session>();
  /** TCP connections open, over every listener (max_connections). */
  private open = 0;
  /** Plain HTTP/1.1 connections start here (see fast-path.ts). */
  private readonly fastPath: FastPath;
  /** Where each request goes from its listener to its route's action. */
  private readonly intake: RequestIntake;
  private readonly proxies: TrustedProxies | null;
  /** Connections refused at max_connections since the last warning, and when that was. */
  private refused = 0;
  private refusedWarnedAt = -Infinity;
  /** Client connections held at once (0: no limit): max_connections, or fewer for the open-file limit (listen()). */
  private maxConnections: number;
  /** The TLS socket node:http2 is making a session of (onSession runs while it does). */
  private h2Socket: TLSSocket | null = null;
  /** What a tracked socket points to (see track()): two records for all of them, not one each. */
  private readonly counted: Tracking = { front: this, counted: true };
  private readonly uncounted: Tracking = { front: this, counted: false };

  constructor(
    router: Router,
    private readonly ctx: ExchangeContext,
    private readonly settings: Config,
  ) {
    this.maxConnections = settings.max_connections;
    this.proxies = settings.forwarded_allow_ips.length > 0 ? new TrustedProxies(settings.forwarded_allow_ips) : null;
    this.intake = new RequestIntake(router, ctx, settings, this.proxies);
    this.fastPath = new FastPath({
      memory: new MemoryAnswers(router),
      settings,
      ctx,
      proxies: this.proxies,
      onClientError: (socket, code) => this.onClientError(Object.assign(new Error(code), { code }), socket),
    });
  }

  /** Listens on every address, for `workers` workers in all; rejects with GH_ERR_BIND naming the address that failed. */
  async listen(listeners: readonly ListenerSettings[], workers: number): Promise<string[]> {
    this.maxConnections = fitConnections(this.settings.max_connections, workers, this.ctx.logger);
    const bound: string[] = [];
    for (const listener of listeners) {
      const bind = parseBind(listener.bind).address!;
      const redirect = listener.redirect_https;
      const tls = isTls(listener);
      // A uwsgi/FastCGI/SCGI listener reads its own requests (gateway-listener.ts).
      const protocol = listener.protocol;
      const gateway = protocol !== 'http';
      const info: ListenerInfo = { scheme: tls ? 'https' : 'http', httpsPort: redirect === false ? null : redirect === true ? 443 : redirect, gateway };
      const serve: Serve = {
        node: (req, res, expectsContinue) => this.intake.onRequest(req, res, info, expectsContinue),
        lean: (req, res, lean) => this.intake.onLeanRequest(req, res, info, lean),
      };
      const server = protocol === 'http' ? this.httpServer(listener, info, serve) : createGatewayServer(protocol, serve.lean, this.ctx.logger, this.settings.header_timeout * 1000);
      if (gateway) server.on('connection', (socket: Socket) => this.admit(socket, false));
      this.servers.push(server);
      if (bind.kind === 'unix') await clearStaleSocket(bind.path);
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
   * A new connection, counted over every listener (Node's maxConnections is
   * per server) before any TLS handshake; false: refused, past max_connections.
   */
  private admit(socket: Socket, tls: boolean): boolean {
    const max = this.maxConnections;
    if (max > 0 && this.open >= max) {
      this.refuseConnection(socket);
      return false;
    }
    this.open++;
    if (tls) socket.once('close', () => this.open--);
    else this.track(socket, true);
    return true;
  }

  /** An HTTP listener: the fast path reads its connections, node:http (or node:http2) what the fast path hands over. */
  private httpServer(listener: ListenerSettings, info: ListenerInfo, serve: Serve): ListenerServer {
    const tls = isTls(listener);
    const server = createListenerServer(listener, this.settings, serve.node);
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.intake.onRequest(req, res, info, true));
    // redirect_https answers every request itself, in onRequest.
    const toHttp = info.httpsPort === null ? takeConnections(server, tls ? 'secureConnection' : 'connection') : null;
    // After an answer that switched no protocol, the connection goes on as one just accepted.
    const resume = toHttp === null ? null : (socket: Socket) => this.fastPath.take(socket, serve, toHttp);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      unwatchLines(socket as Socket);
      this.intake.onUpgrade(req, socket as Socket, head, info, resume);
    });
    server.on('connection', (socket: Socket) => {
      if (!this.admit(socket, tls) || tls) return;
      // redirect_https: node:http reads every request (its own listener, before this one, took the socket).
      if (toHttp === null) return readByHttp(socket);
      // The fast path's plain connections are read directly (read-directly.ts); TLS ones by node:tls.
      readDirectly(socket);
      this.fastPath.take(socket, serve, toHttp);
    });
    // Requests see the TLS socket, not the TCP one under it: track what they see. HTTP/1.1
    // over TLS is read by the fast path too; HTTP/2 sessions go to node:http2.
    if (tls) {
      server.on('secureConnection', (socket: TLSSocket) => {
        this.track(socket, false);
        if (socket.alpnProtocol !== 'h2') return this.fastPath.take(socket, serve, toHttp!);
        // node:http2 makes the session and emits 'session' (onSession) at once.
        this.h2Socket = socket;
        toHttp!(socket);
        this.h2Socket = null;
      });
    }
    server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) =>
      this.intake.onStream(stream, headers, rawHeaders, info, serve.lean));
    server.on('tlsClientError', (err: Error, socket: Socket) => this.ctx.logger.debug(`TLS handshake with ${socket.remoteAddress} failed: ${err.message}`));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as Socket));
    // Without a listener Node drops CONNECT silently; a client deserves an answer.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      unwatchLines(socket as Socket);
      socket.on('error', () => socket.destroy());
      afterEarlierAnswers(socket as Socket, () => socket.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    });
    return server;
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
    const conn: H2Connection = { socket: this.h2Socket ?? (session.socket as TLSSocket), open: 0 };
    trackSession(session, conn);
    // keepalive_timeout for HTTP/2: a session quiet that long with no stream open is closed (GOAWAY).
    const idle = this.settings.keepalive_timeout * 1000;
    if (idle <= 0) return;
    // on(), not setTimeout's callback: node:http2 adds that with once(), and a timeout that
    // came while a stream was open would leave the session without one for good.
    session.setTimeout(idle);
    session.on('timeout', () => conn.open === 0 && session.close());
  }

  /** Past max_connections: close at once, and say so in the error log at most every 10 s. */
  private refuseConnection(socket: Socket): void {
    socket.destroy();
    this.refused++;
    const now = performance.now();
    if (now - this.refusedWarnedAt < 10_000) return;
    this.ctx.logger.warning(`max_connections (${this.maxConnections}) reached: refused ${this.refused} new connection(s)`);
    this.refused = 0;
    this.refusedWarnedAt = now;
  }

  /**
   * A request Node's parser refused (malformed, head too large, head not in
   * time): answered as Node would (but 414 for a target too long,
   * uri-too-long.ts), and written to the access log as nginx does, so a
   * slowloris shows there as 408s.
   */
  private onClientError(err: ParserError, socket: Socket): void {
    // Bytes after a request that ends the connection (RFC 9112 §9.6): ignored; the
    // answer under way goes out, then the connection closes (llhttp keeps reading them).
    if (err.code === 'HPE_CLOSED_CONNECTION') return;
    const incoming = bodyUnderWay(socket);
    // A head too large while its request line was read: its target alone reached the limit.
    const tooLong = incoming === null && err.code === 'HPE_HEADER_OVERFLOW' && overflowedInTarget(socket, err);
    const status = clientErrorStatus(tooLong ? URI_TOO_LONG : err.code);
    if (incoming !== null && err.code?.startsWith('HPE_')) {
      // A body that broke off (a bad chunk), as on the fast path (fast-connection.ts): nothing more is
      // read, and the request is answered in its turn by what reads its body. (llhttp says it again for
      // each piece of data that comes after.)
      socket.pause();
      if (faulted.has(incoming)) return;
      faulted.add(incoming);
      const current = (socket as SocketWithMessage)._httpMessage;
      if (current?.req === incoming && !current.headersSent) current.shouldKeepAlive = false;
      // Nobody reads that body (its answer is under way): the answers go out, then the connection closes.
      if (!faultBody(incoming, Object.assign(err, { status }))) afterEarlierAnswers(socket, () => socket.destroySoon());
      return;
    }
    // The client is gone, or a response is already on its way (pipelining): nothing can be said.
    const replying = err.code !== 'ECONNRESET' && socket.writable && !(socket as SocketWithMessage)._httpMessage?.headersSent;
    if (!replying) return void socket.destroy();
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    // A body that broke off belongs to a request already served: it logs its own line (with its
    // request line, as nginx) when its body ends in the error. Anything else never became a request.
    if (incoming === null) this.ctx.accessLog?.write(new IncomingMessage(socket), status, 0);
    // Once written (answers before it may still be on their way), whether or not the client closes its side.
    socket.destroySoon();
  }

  /** A connection requests come in on; `counted` when its close also ends a max_connections count. */
  private track(socket: Socket, counted: boolean): void {
    this.sockets.add(socket);
    (socket as TrackedSocket)[kFront] = counted ? this.counted : this.uncounted;
    // 'close' comes once: on(), not once() and the wrapper once() makes per connection.
    socket.on('close', onTrackedClose);
    // A FIN while a request is with an app or a back end: the client went away, as nginx sees it (on the
    // fast path and node:http alike; a gateway listener's connection ends its requests as it closes).
    socket.on('end', onClientEnd);
  }

  /** @internal a tracked connection closed. */
  closed(socket: Socket, counted: boolean): void {
    if (counted) this.open--;
    this.onConnectionClosed(socket);
  }

  /** The client went away: stop the work still under way for it. */
  private onConnectionClosed(socket: Socket): void {
    this.sockets.delete(socket);
    clientGoneFrom(socket);
  }

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
interface Tracking {
  front: HttpFront;
  counted: boolean;
}
type TrackedSocket = Socket & { [kFront]?: Tracking };

/** The 'close' listener of every tracked socket: one function, not a closure per connection (idle ones are many). */
function onTrackedClose(this: TrackedSocket): void {
  const t = this[kFront]!;
  t.front.closed(this, t.counted);
}


/** node:http keeps the response being written on its socket (undocumented, but what its own error handler checks). */
type SocketWithMessage = Socket & { _httpMessage?: ServerResponse | null };
/** node:http's parser on its socket, and the request it is reading (undocumented, as above). */
type SocketWithParser = Socket & { parser?: { incoming?: IncomingMessage | null } | null };

/** The request whose body node:http's parser is reading on `socket`, if any. */
function bodyUnderWay(socket: Socket): IncomingMessage | null {
  const incoming = (socket as SocketWithParser).parser?.incoming;
  return incoming == null || incoming.complete ? null : incoming;
}

/** Requests whose body broke off, told so once. */
const faulted = new WeakSet<IncomingMessage>();

function formatTcp(addr: AddressInfo): string {
  return formatBind({ kind: 'tcp', host: addr.address, port: addr.port });
}

