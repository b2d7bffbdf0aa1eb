/**
 * Listeners that speak a front end's back-end protocol (uwsgi, FastCGI,
 * SCGI), so nginx's uwsgi_pass / fastcgi_pass / scgi_pass (or Apache's
 * mod_proxy_uwsgi / mod_proxy_fcgi) can send requests to gatehouse. Each
 * request becomes the same lean request record and response writer the
 * fast path makes (gateway-request.ts, gateway-response.ts), so it goes
 * through the same routes, limits and logs as an HTTP request, with no HTTP
 * made up and parsed again in between.
 *
 * uwsgi and SCGI carry one request per connection (here) and get the
 * response as raw HTTP (what uWSGI itself answers; nginx reads the status
 * line), ended by the connection's end. FastCGI is fastcgi-connection.ts.
 * A connection that sends garbage is closed, with one line in the error log.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { decodeScgiHead } from '../upstream/netstring.js';
import { decodeUwsgiPacket } from '../upstream/uwsgi-packet.js';
import { MemberList } from '../http/member-list.js';
import type { Serve } from './fast-path.js';
import { FastcgiConnection } from './fastcgi-connection.js';
import { GatewayExchange, writeAll, type GatewayListener } from './gateway-exchange.js';
import { gatewayRequest } from './gateway-request.js';
import type { GatewayWire } from './gateway-response.js';

export type GatewayProtocol = 'uwsgi' | 'fastcgi' | 'scgi';

/** The largest vars block taken (uWSGI's own cap is 64 KiB). */
const MAX_VARS = 64 * 1024;

export interface GatewayServer extends Server {
  closeIdleConnections(): void;
}

/**
 * `serve`: the front's handler of lean requests. `waitMs` (header_timeout):
 * how long a connection may take to send a request's variables, or stay
 * idle between two FastCGI requests.
 */
export function createGatewayServer(protocol: GatewayProtocol, serve: Serve['lean'], logger: Logger, waitMs: number): GatewayServer {
  const listener: GatewayListener = {
    serve,
    idle: new MemberList<Socket>(),
    waitMs,
    garbage(socket, why) {
      logger.warning(`${protocol} connection from ${socket.remoteAddress ?? 'a unix socket'}: ${why}; closed`);
      socket.destroy();
    },
  };
  const server = createServer((socket) => {
    socket.on('error', ignore);
    // Armed while no request is under way.
    socket.on('timeout', destroy);
    socket.setTimeout(waitMs);
    if (protocol === 'fastcgi') new FastcgiConnection(socket, listener);
    else new OneRequest(protocol, socket, listener);
  }) as GatewayServer;
  server.closeIdleConnections = () => {
    for (const socket of listener.idle) socket.destroy();
  };
  return server;
}

function ignore(): void {}

function destroy(this: Socket): void {
  this.destroy();
}

const kRequest = Symbol('gatehouse.gatewayRequest');
type RequestSocket = Socket & { [kRequest]?: OneRequest };

/** A uwsgi or SCGI connection's listeners, the same functions for every connection (a connection per request: no closures made for each). */
const LISTENERS: ReadonlyArray<[string, (this: RequestSocket, chunk: Buffer) => void]> = [
  ['data', function (this: RequestSocket, chunk: Buffer) { this[kRequest]!.onData(chunk); }],
  ['drain', function (this: RequestSocket) { this[kRequest]!.exchange?.res.onDrain(); }],
  ['close', function (this: RequestSocket) { this[kRequest]!.onClose(); }],
];

/** uwsgi and SCGI: the vars, then CONTENT_LENGTH bytes of body; the response ends with the connection. */
class OneRequest implements GatewayWire {
  readonly statusPrefix = 'HTTP/1.1 ';
  private pending: Buffer | null = null;
  exchange: GatewayExchange | null = null;

  constructor(
    private readonly protocol: 'uwsgi' | 'scgi',
    readonly socket: Socket,
    private readonly listener: GatewayListener,
  ) {
    (socket as RequestSocket)[kRequest] = this;
    for (const [event, fn] of LISTENERS) socket.on(event, fn);
    // Idle until its vars are all in: a server that drains closes it at once rather than wait for them.
    listener.idle.add(socket);
  }

  onClose(): void {
    this.listener.idle.delete(this.socket);
    this.exchange?.gone('the front end closed the connection');
  }

  send(data: Buffer[], last: boolean): boolean {
    const socket = this.socket;
    const ok = data.length === 0 || writeAll(socket, data);
    if (!last) return ok;
    // All written and the request all read: closing at once spares a shutdown and the wait for the front end's close.
    if (socket.writableLength === 0 && this.exchange !== null && this.exchange.left === 0) socket.destroy();
    else socket.end();
    return ok;
  }

  onData(chunk: Buffer): void {
    const socket = this.socket;
    if (this.exchange !== null) {
      if (!this.exchange.feed(chunk)) socket.pause();
      return;
    }
    const data: Buffer = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    const head = this.protocol === 'uwsgi' ? uwsgiHead(data) : decodeScgiHead(data, MAX_VARS);
    if (typeof head === 'string') return this.listener.garbage(socket, head);
    if (head === null) return void (this.pending = data);
    this.pending = null;
    const request = gatewayRequest(head.pairs);
    if (typeof request === 'string') return this.listener.garbage(socket, request);
    socket.setTimeout(0);
    this.listener.idle.delete(socket);
    this.exchange = new GatewayExchange(request, this, this.listener.serve);
    if (head.used < data.length) this.onData(data.subarray(head.used));
  }
}

/** A uwsgi packet's vars, null while incomplete, or what is wrong with it. */
function uwsgiHead(data: Buffer): { pairs: [string, string][]; used: number } | null | string {
  const packet = decodeUwsgiPacket(data);
  if (packet === null || typeof packet === 'string') return packet;
  return packet.modifier1 === 0 ? packet : `modifier1 ${packet.modifier1} (only 0, WSGI, is served)`;
}
