/**
 * A connection to a FastCGI listener (gateway-listener.ts): records in, one
 * request at a time; the response goes out in STDOUT records with
 * `Status:`, then END_REQUEST, and with FCGI_KEEP_CONN the connection takes
 * the next request. A second request before the first is answered is
 * refused with FCGI_CANT_MPX_CONN, as FCGI_GET_VALUES says
 * (FCGI_MPXS_CONNS=0).
 */
import type { Socket } from 'node:net';
import {
  decodePairs,
  encodeEndRequest,
  encodePairs,
  encodeRecord,
  FCGI,
  FCGI_CANT_MPX_CONN,
  FCGI_KEEP_CONN,
  FCGI_REQUEST_COMPLETE,
  FCGI_RESPONDER,
  FCGI_UNKNOWN_ROLE,
  RecordReader,
  recordHeader,
  type FcgiRecord,
} from '../upstream/fastcgi-records.js';
import { GatewayExchange, writeAll, type GatewayListener } from './gateway-exchange.js';
import { gatewayRequest } from './gateway-request.js';
import type { GatewayWire } from './gateway-response.js';

/** FastCGI records carry at most this much content each. */
const MAX_RECORD = 0xffff;
const VALUES: Record<string, string> = { FCGI_MAX_CONNS: '1024', FCGI_MAX_REQS: '1024', FCGI_MPXS_CONNS: '0' };

/** The request being answered: its id, FCGI_KEEP_CONN, its params until they are all in, then its exchange. */
class FastcgiRequest implements GatewayWire {
  readonly statusPrefix = 'Status: ';
  params: Buffer[] = [];
  exchange: GatewayExchange | null = null;

  constructor(
    private readonly connection: FastcgiConnection,
    readonly id: number,
    readonly keep: boolean,
  ) {}

  get socket(): Socket {
    return this.connection.socket;
  }

  send(data: Buffer[], last: boolean): boolean {
    // The request was aborted (FCGI_ABORT_REQUEST): what is still written for it goes nowhere.
    if (this.connection.current !== this) return true;
    const parts: Buffer[] = [];
    for (const d of data) stdoutRecords(this.id, d, parts);
    if (last) parts.push(encodeRecord(FCGI.STDOUT, this.id), encodeEndRequest(this.id, 0, FCGI_REQUEST_COMPLETE));
    const ok = parts.length === 0 || writeAll(this.socket, parts);
    if (last) this.connection.ended(this);
    return ok;
  }
}

export class FastcgiConnection {
  private readonly reader = new RecordReader();
  current: FastcgiRequest | null = null;

  constructor(
    readonly socket: Socket,
    private readonly listener: GatewayListener,
  ) {
    listener.idle.add(socket);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.current?.exchange?.res.onDrain());
    socket.once('close', () => {
      listener.idle.delete(socket);
      this.current?.exchange?.gone('the front end closed the connection');
    });
  }

  /** The current request's response is written. */
  ended(request: FastcgiRequest): void {
    this.current = null;
    if (!request.keep) return void this.socket.end();
    this.listener.idle.add(this.socket);
    this.socket.setTimeout(this.listener.waitMs);
  }

  private onData(chunk: Buffer): void {
    const records = this.reader.push(chunk);
    if (typeof records === 'string') return this.listener.garbage(this.socket, records);
    for (const record of records) {
      if (this.socket.destroyed) return;
      const why = this.onRecord(record);
      if (why !== null) return this.listener.garbage(this.socket, why);
    }
  }

  /** Handles one record; what is wrong with the connection when it is not FastCGI, else null. */
  private onRecord({ type, requestId: id, content }: FcgiRecord): string | null {
    const socket = this.socket;
    const current = this.current;
    if (type === FCGI.GET_VALUES) {
      const asked = decodePairs(content) ?? [];
      socket.write(encodeRecord(FCGI.GET_VALUES_RESULT, 0, encodePairs(asked.filter(([n]) => n in VALUES).map(([n]) => [n, VALUES[n]!]))));
    } else if (type === FCGI.BEGIN_REQUEST) {
      if (content.length < 8) return 'a short FCGI_BEGIN_REQUEST';
      if (current !== null) socket.write(encodeEndRequest(id, 0, FCGI_CANT_MPX_CONN));
      else if (content.readUInt16BE(0) !== FCGI_RESPONDER) socket.write(encodeEndRequest(id, 0, FCGI_UNKNOWN_ROLE));
      else this.current = new FastcgiRequest(this, id, (content[2]! & FCGI_KEEP_CONN) !== 0);
    } else if (current === null || id !== current.id) {
      // Records of a request refused above (or of none): nothing to do with them.
      if (id === 0) socket.write(encodeRecord(FCGI.UNKNOWN_TYPE, 0, Buffer.from([type, 0, 0, 0, 0, 0, 0, 0])));
    } else if (type === FCGI.PARAMS) {
      if (current.exchange !== null) return 'FCGI_PARAMS after the request started';
      if (content.length > 0) current.params.push(content);
      else return this.start(current);
    } else if (type === FCGI.STDIN) {
      const x = current.exchange;
      if (x === null) return 'FCGI_STDIN before the end of FCGI_PARAMS';
      if (content.length === 0 && x.left > 0) x.gone('the front end ended the body early');
      else if (!x.feed(content)) socket.pause();
    } else if (type === FCGI.ABORT_REQUEST) {
      this.current = null;
      current.exchange?.gone('the front end aborted the request');
      socket.write(encodeEndRequest(id, 0, FCGI_REQUEST_COMPLETE));
      if (!current.keep) socket.end();
    } else if (type !== FCGI.DATA) {
      return `an unexpected record of type ${type}`;
    }
    return null;
  }

  /** The params are all in: the request goes to the routes. */
  private start(request: FastcgiRequest): string | null {
    const pairs = decodePairs(Buffer.concat(request.params));
    if (pairs === null) return 'malformed FCGI_PARAMS';
    const parsed = gatewayRequest(pairs);
    if (typeof parsed === 'string') return parsed;
    request.params = [];
    this.listener.idle.delete(this.socket);
    this.socket.setTimeout(0);
    request.exchange = new GatewayExchange(parsed, request, this.listener.serve);
    return null;
  }
}

/** STDOUT records carrying `data` (headers, then the bytes themselves: nothing copied). */
function stdoutRecords(id: number, data: Buffer, out: Buffer[]): void {
  for (let at = 0; at < data.length; at += MAX_RECORD) {
    const piece = data.subarray(at, at + MAX_RECORD);
    out.push(recordHeader(FCGI.STDOUT, id, piece.length), piece);
  }
}
