/**
 * Listeners that speak a front end's back-end protocol (uwsgi, FastCGI,
 * SCGI), so nginx's uwsgi_pass / fastcgi_pass / scgi_pass (or Apache's
 * mod_proxy_uwsgi / mod_proxy_fcgi) can send requests to gatehouse. Each
 * request becomes the same lean request record and response writer the
 * fast path makes (gateway-request.ts, gateway-response.ts), so it goes
 * through the same routes, limits and logs as an HTTP request, with no HTTP
 * made up and parsed again in between.
 *
 * uwsgi and SCGI carry one request per connection and get the response as
 * raw HTTP (what uWSGI itself answers; nginx reads the status line), ended
 * by the connection's end. FastCGI gets it in STDOUT records with `Status:`,
 * then END_REQUEST; with FCGI_KEEP_CONN the connection takes the next
 * request. A second request on a connection before the first is answered
 * is refused with FCGI_CANT_MPX_CONN, as FCGI_GET_VALUES says
 * (FCGI_MPXS_CONNS=0). A connection that sends garbage is closed, with
 * one line in the error log.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import {
  decodePairs,
  encodeEndRequest,
  encodePairs,
  encodeRecord,
  FCGI,
  FCGI_CANT_MPX_CONN,
  FCGI_REQUEST_COMPLETE,
  FCGI_RESPONDER,
  FCGI_UNKNOWN_ROLE,
  FCGI_KEEP_CONN,
  RecordReader,
} from '../upstream/fastcgi-records.js';
import { decodeScgiHead } from '../upstream/netstring.js';
import { decodeUwsgiPacket } from '../upstream/uwsgi-packet.js';
import { inFlightOn } from '../http/in-flight.js';
import { MemberList } from '../http/member-list.js';
import type { Serve } from './fast-path.js';
import { gatewayRequest, type GatewayRequest } from './gateway-request.js';
import { GatewayResponse, type GatewayWire } from './gateway-response.js';
import { nodeObjects } from './gateway-node.js';

export type GatewayProtocol = 'uwsgi' | 'fastcgi' | 'scgi';

/** The largest vars block taken (uWSGI's own cap is 64 KiB). */
const MAX_VARS = 64 * 1024;
/** FastCGI records carry at most this much content each. */
const MAX_RECORD = 0xffff;
/** Up to this size a response's records are joined into one write. */
const JOIN_LIMIT = 64 * 1024;

export interface GatewayServer extends Server {
  closeIdleConnections(): void;
}

/**
 * `serve`: the front's handler of lean requests. `waitMs` (header_timeout):
 * how long a connection may take to send a request's variables, or stay
 * idle between two FastCGI requests.
 */
export function createGatewayServer(protocol: GatewayProtocol, serve: Serve['lean'], logger: Logger, waitMs: number): GatewayServer {
  const idle = new MemberList<Socket>();
  const server = createServer((socket) => {
    socket.on('error', () => {});
    const garbage = (why: string) => {
      logger.warning(`${protocol} connection from ${socket.remoteAddress ?? 'a unix socket'}: ${why}; closed`);
      socket.destroy();
    };
    // Armed while no request is under way.
    socket.on('timeout', () => socket.destroy());
    socket.setTimeout(waitMs);
    if (protocol === 'fastcgi') fastcgiConnection(socket, serve, garbage, idle, waitMs);
    else oneRequest(protocol, socket, serve, garbage);
  }) as GatewayServer;
  server.closeIdleConnections = () => {
    for (const socket of idle) socket.destroy();
  };
  return server;
}

/** A request's body as the front end sends it; reading it resumes the connection. */
class GatewayBody extends Readable {
  constructor(readonly source: Socket) {
    super();
  }

  override _read(): void {
    this.source.resume();
  }
}

/** A request under way on a connection: its body still to come, and its response. */
class Exchange {
  readonly body: GatewayBody | null;
  /** Body bytes still to come. */
  left: number;
  readonly res: GatewayResponse;

  constructor(
    private readonly request: GatewayRequest,
    wire: GatewayWire,
    serve: Serve['lean'],
  ) {
    const { req, contentLength } = request;
    this.body = contentLength > 0 ? new GatewayBody(wire.socket) : null;
    this.left = contentLength;
    this.res = new GatewayResponse(req.method!, wire);
    serve(req, this.res, { body: this.body, toNode: () => nodeObjects(req, this.body, wire) });
  }

  /** Body bytes from the front end; false: the connection is to pause until the body is read. */
  feed(chunk: Buffer): boolean {
    if (this.body === null || this.left === 0) return true;
    const piece = chunk.length > this.left ? chunk.subarray(0, this.left) : chunk;
    this.left -= piece.length;
    const more = this.body.push(piece);
    if (this.left > 0) return more;
    this.body.push(null);
    // The body is all in: the connection no longer waits for it to be read (a kept FastCGI connection's next request follows).
    this.body.source.resume();
    return true;
  }

  /** The front end went away, or gave up on the request: the work under way for it stops. */
  gone(why: string): void {
    if (this.left > 0) this.body?.destroy(Object.assign(new Error(why), { code: 'ECONNRESET' }));
    for (const x of inFlightOn(this.request.req.socket).slice()) x.clientGone();
    this.res.close();
  }
}

/** `parts` on the socket: one write when they are small, else corked writes. */
function writeAll(socket: Socket, parts: Buffer[]): boolean {
  if (parts.length === 1) return socket.write(parts[0]!);
  let size = 0;
  for (const p of parts) size += p.length;
  if (size <= JOIN_LIMIT) return socket.write(Buffer.concat(parts, size));
  socket.cork();
  let ok = true;
  for (const p of parts) ok = socket.write(p);
  socket.uncork();
  return ok;
}

/** uwsgi and SCGI: the vars, then CONTENT_LENGTH bytes of body, one request per connection. */
function oneRequest(protocol: 'uwsgi' | 'scgi', socket: Socket, serve: Serve['lean'], garbage: (why: string) => void): void {
  let pending: Buffer | null = null;
  let exchange: Exchange | null = null;
  const wire: GatewayWire = {
    socket,
    statusPrefix: 'HTTP/1.1 ',
    send(data, last) {
      const ok = data.length === 0 || writeAll(socket, data);
      if (last) socket.end();
      return ok;
    },
  };
  const onData = (chunk: Buffer) => {
    if (exchange !== null) {
      if (!exchange.feed(chunk)) socket.pause();
      return;
    }
    const data: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let pairs: [string, string][];
    let used: number;
    if (protocol === 'uwsgi') {
      const packet = decodeUwsgiPacket(data);
      if (typeof packet === 'string') return garbage(packet);
      if (packet !== null && packet.modifier1 !== 0) return garbage(`modifier1 ${packet.modifier1} (only 0, WSGI, is served)`);
      if (packet === null) return void (pending = data);
      ({ pairs, used } = packet);
    } else {
      const head = decodeScgiHead(data, MAX_VARS);
      if (typeof head === 'string') return garbage(head);
      if (head === null) return void (pending = data);
      ({ pairs, used } = head);
    }
    pending = null;
    const request = gatewayRequest(pairs);
    if (typeof request === 'string') return garbage(request);
    socket.setTimeout(0);
    const x = (exchange = new Exchange(request, wire, serve));
    socket.on('drain', () => x.res.onDrain());
    socket.once('close', () => x.gone('the front end closed the connection'));
    if (used < data.length) onData(data.subarray(used));
  };
  socket.on('data', onData);
}

/** STDOUT records carrying `data` (headers, then the bytes themselves: nothing copied). */
function stdoutRecords(id: number, data: Buffer, out: Buffer[]): void {
  for (let at = 0; at < data.length; at += MAX_RECORD) {
    const piece = data.subarray(at, at + MAX_RECORD);
    const header = Buffer.allocUnsafe(8);
    header[0] = 1;
    header[1] = FCGI.STDOUT;
    header.writeUInt16BE(id, 2);
    header.writeUInt16BE(piece.length, 4);
    header[6] = 0;
    header[7] = 0;
    out.push(header, piece);
  }
}

/** FastCGI: records; one request at a time, kept connections take the next. */
function fastcgiConnection(socket: Socket, serve: Serve['lean'], garbage: (why: string) => void, idle: MemberList<Socket>, waitMs: number): void {
  const reader = new RecordReader();
  /** The request being answered: its id, FCGI_KEEP_CONN, its params until they are all in, then its exchange. */
  let current: { id: number; keep: boolean; params: Buffer[]; exchange: Exchange | null } | null = null;
  idle.add(socket);
  socket.on('drain', () => current?.exchange?.res.onDrain());
  socket.once('close', () => {
    idle.delete(socket);
    current?.exchange?.gone('the front end closed the connection');
  });

  const start = (request: NonNullable<typeof current>) => {
    const pairs = decodePairs(Buffer.concat(request.params));
    if (pairs === null) return garbage('malformed FCGI_PARAMS');
    const parsed = gatewayRequest(pairs);
    if (typeof parsed === 'string') return garbage(parsed);
    const { id, keep } = request;
    request.params = [];
    const wire: GatewayWire = {
      socket,
      statusPrefix: 'Status: ',
      send(data, last) {
        // The request was aborted (FCGI_ABORT_REQUEST): what is still written for it goes nowhere.
        if (current !== request) return true;
        const parts: Buffer[] = [];
        for (const d of data) stdoutRecords(id, d, parts);
        if (last) parts.push(encodeRecord(FCGI.STDOUT, id), encodeEndRequest(id, 0, FCGI_REQUEST_COMPLETE));
        const ok = parts.length === 0 || writeAll(socket, parts);
        if (!last) return ok;
        current = null;
        if (!keep) socket.end();
        else {
          idle.add(socket);
          socket.setTimeout(waitMs);
        }
        return ok;
      },
    };
    idle.delete(socket);
    socket.setTimeout(0);
    request.exchange = new Exchange(parsed, wire, serve);
  };

  socket.on('data', (chunk: Buffer) => {
    const records = reader.push(chunk);
    if (typeof records === 'string') return garbage(records);
    for (const { type, requestId: id, content } of records) {
      if (socket.destroyed) return;
      if (type === FCGI.GET_VALUES) {
        const asked = decodePairs(content) ?? [];
        const known: Record<string, string> = { FCGI_MAX_CONNS: '1024', FCGI_MAX_REQS: '1024', FCGI_MPXS_CONNS: '0' };
        socket.write(encodeRecord(FCGI.GET_VALUES_RESULT, 0, encodePairs(asked.filter(([n]) => n in known).map(([n]) => [n, known[n]!]))));
      } else if (type === FCGI.BEGIN_REQUEST) {
        if (content.length < 8) return garbage('a short FCGI_BEGIN_REQUEST');
        if (current !== null) socket.write(encodeEndRequest(id, 0, FCGI_CANT_MPX_CONN));
        else if (content.readUInt16BE(0) !== FCGI_RESPONDER) socket.write(encodeEndRequest(id, 0, FCGI_UNKNOWN_ROLE));
        else current = { id, keep: (content[2]! & FCGI_KEEP_CONN) !== 0, params: [], exchange: null };
      } else if (current === null || id !== current.id) {
        // Records of a request refused above (or of none): nothing to do with them.
        if (id === 0) socket.write(encodeRecord(FCGI.UNKNOWN_TYPE, 0, Buffer.from([type, 0, 0, 0, 0, 0, 0, 0])));
      } else if (type === FCGI.PARAMS) {
        if (current.exchange !== null) return garbage('FCGI_PARAMS after the request started');
        if (content.length > 0) current.params.push(content);
        else start(current);
      } else if (type === FCGI.STDIN) {
        const x = current.exchange;
        if (x === null) return garbage('FCGI_STDIN before the end of FCGI_PARAMS');
        if (content.length === 0 && x.left > 0) x.gone('the front end ended the body early');
        else if (!x.feed(content)) socket.pause();
      } else if (type === FCGI.ABORT_REQUEST) {
        const { exchange, keep } = current;
        current = null;
        exchange?.gone('the front end aborted the request');
        socket.write(encodeEndRequest(id, 0, FCGI_REQUEST_COMPLETE));
        if (!keep) socket.end();
      } else if (type !== FCGI.DATA) {
        return garbage(`an unexpected record of type ${type}`);
      }
    }
  });
}
