/**
 * Listeners that speak a front end's back-end protocol (uwsgi, FastCGI,
 * SCGI), so nginx's uwsgi_pass / fastcgi_pass / scgi_pass (or Apache's
 * mod_proxy_uwsgi / mod_proxy_fcgi) can send requests to gatehouse. Each
 * request becomes a GatewayStream handed to node:http (`serve`), so it goes
 * through the same routes, limits and logs as an HTTP request.
 *
 * uwsgi and SCGI carry one request per connection and get the response as
 * raw HTTP (what uWSGI itself answers; nginx reads the status line). FastCGI
 * gets it in STDOUT records with the status line turned into `Status:`,
 * then END_REQUEST; with FCGI_KEEP_CONN the connection takes the next
 * request. A second request on a connection before the first is answered
 * is refused with FCGI_CANT_MPX_CONN, as FCGI_GET_VALUES says
 * (FCGI_MPXS_CONNS=0). A connection that sends garbage is closed, with
 * one line in the error log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log/logger.js';
import {
  decodePairs,
  encodeEndRequest,
  encodePairs,
  encodeRecord,
  encodeStream,
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
import { MemberList } from '../http/member-list.js';
import { gatewayRequest, GatewayStream, type GatewaySink } from './gateway-stream.js';

export type GatewayProtocol = 'uwsgi' | 'fastcgi' | 'scgi';

/** The largest vars block taken (uWSGI's own cap is 64 KiB). */
const MAX_VARS = 64 * 1024;

/** The node:http server the requests go to (only its 'connection' and 'request' events are used). */
type HttpServer = Pick<Server, 'emit' | 'prependListener'>;

export interface GatewayServer extends Server {
  closeIdleConnections(): void;
}

/**
 * `waitMs` (header_timeout): how long a connection may take to send a
 * request's variables, or stay idle between two FastCGI requests.
 */
export function createGatewayServer(protocol: GatewayProtocol, http: HttpServer, logger: Logger, waitMs: number): GatewayServer {
  const idle = new MemberList<Socket>();
  const serve = (stream: Duplex) => http.emit('connection', stream);
  // The end of the stream ends the response: node:http must not chunk it for an HTTP/1.1 request.
  http.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => (res.useChunkedEncodingByDefault = false));
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

/** A sink writing to `socket` with its backpressure, through `frame`. */
function socketSink(socket: Socket, frame: (chunk: Buffer) => Buffer[], end: () => void): GatewaySink {
  return {
    write(chunk, done) {
      let ok = true;
      for (const piece of frame(chunk)) ok = socket.write(piece);
      if (ok) done();
      else socket.once('drain', done);
    },
    end,
    abort: () => socket.destroy(),
    resume: () => socket.resume(),
  };
}

/** uwsgi and SCGI: the vars, then CONTENT_LENGTH bytes of body, one request per connection. */
function oneRequest(protocol: 'uwsgi' | 'scgi', socket: Socket, serve: (stream: Duplex) => void, garbage: (why: string) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  let stream: GatewayStream | null = null;
  let remaining = 0;
  const onData = (chunk: Buffer) => {
    if (stream !== null) {
      const body = chunk.subarray(0, remaining);
      remaining -= body.length;
      if (body.length > 0 && !stream.body(body)) socket.pause();
      return;
    }
    pending = Buffer.concat([pending, chunk]);
    let pairs: [string, string][];
    let used: number;
    if (protocol === 'uwsgi') {
      const packet = decodeUwsgiPacket(pending);
      if (packet === null) return;
      if (typeof packet === 'string') return garbage(packet);
      if (packet.modifier1 !== 0) return garbage(`modifier1 ${packet.modifier1} (only 0, WSGI, is served)`);
      ({ pairs, used } = packet);
    } else {
      const head = decodeScgiHead(pending, MAX_VARS);
      if (head === null) return;
      if (typeof head === 'string') return garbage(head);
      ({ pairs, used } = head);
    }
    const request = gatewayRequest(pairs);
    if (typeof request === 'string') return garbage(request);
    socket.setTimeout(0);
    stream = new GatewayStream(request, socketSink(socket, (c) => [c], () => socket.end()));
    socket.once('close', () => stream!.destroy());
    remaining = request.contentLength;
    const rest = pending.subarray(used);
    pending = Buffer.alloc(0);
    serve(stream);
    if (rest.length > 0) onData(rest);
  };
  socket.on('data', onData);
}

/** FastCGI: records; one request at a time, kept connections take the next. */
function fastcgiConnection(socket: Socket, serve: (stream: Duplex) => void, garbage: (why: string) => void, idle: MemberList<Socket>, waitMs: number): void {
  const reader = new RecordReader();
  let current: { id: number; keep: boolean; params: Buffer[]; stream: GatewayStream | null } | null = null;
  idle.add(socket);
  socket.once('close', () => {
    idle.delete(socket);
    current?.stream?.destroy();
  });

  const start = (id: number, keep: boolean, params: Buffer[]) => {
    const pairs = decodePairs(Buffer.concat(params));
    if (pairs === null) return garbage('malformed FCGI_PARAMS');
    const request = gatewayRequest(pairs);
    if (typeof request === 'string') return garbage(request);
    let statusLine = true;
    const sink = socketSink(
      socket,
      (chunk) => {
        // node:http's first write is the whole head: its status line becomes CGI's Status header.
        if (statusLine && chunk.subarray(0, 7).toString('latin1') === 'HTTP/1.') chunk = Buffer.concat([Buffer.from('Status:'), chunk.subarray(8)]);
        statusLine = false;
        return encodeStream(FCGI.STDOUT, id, chunk);
      },
      () => {
        socket.write(encodeRecord(FCGI.STDOUT, id));
        socket.write(encodeEndRequest(id, 0, FCGI_REQUEST_COMPLETE));
        current = null;
        if (!keep) return void socket.end();
        idle.add(socket);
        socket.setTimeout(waitMs);
      },
    );
    // node:http gave up on the request (the front end's ABORT_REQUEST clears `current` first).
    sink.abort = () => current !== null && socket.destroy();
    const stream = new GatewayStream(request, sink);
    current!.stream = stream;
    idle.delete(socket);
    socket.setTimeout(0);
    serve(stream);
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
        else current = { id, keep: (content[2]! & FCGI_KEEP_CONN) !== 0, params: [], stream: null };
      } else if (current === null || id !== current.id) {
        // Records of a request refused above (or of none): nothing to do with them.
        if (id === 0) socket.write(encodeRecord(FCGI.UNKNOWN_TYPE, 0, Buffer.from([type, 0, 0, 0, 0, 0, 0, 0])));
      } else if (type === FCGI.PARAMS) {
        if (current.stream !== null) return garbage('FCGI_PARAMS after the request started');
        if (content.length > 0) current.params.push(content);
        else start(current.id, current.keep, current.params);
      } else if (type === FCGI.STDIN) {
        if (current.stream === null) return garbage('FCGI_STDIN before the end of FCGI_PARAMS');
        if (content.length > 0 && !current.stream.body(content)) socket.pause();
      } else if (type === FCGI.ABORT_REQUEST) {
        const { stream, keep } = current;
        current = null;
        stream?.destroy();
        socket.write(encodeEndRequest(id, 0, FCGI_REQUEST_COMPLETE));
        if (!keep) socket.end();
      } else if (type !== FCGI.DATA) {
        return garbage(`an unexpected record of type ${type}`);
      }
    }
  });
}
