/**
 * node:http's request and response objects for a gateway request whose
 * route action needs them (static files, redirects, `return`: those with
 * only Handler.serve). The ServerResponse writes its HTTP/1.1 answer to a
 * stand-in socket whose bytes go out through the protocol's wire (the
 * status line becoming the wire's, `Status:` for FastCGI), delimited by the
 * wire's end, never chunked. App, proxy and cache routes never need these:
 * they take the lean request and GatewayResponse.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex, type Readable } from 'node:stream';
import type { RequestInfo } from '../http/handler.js';
import { copyPeer } from './gateway-request.js';
import type { GatewayWire } from './gateway-response.js';

/** What ServerResponse writes to: the wire, with node:http's socket calls as no-ops. */
class WireSocket extends Duplex {
  private first = true;

  constructor(private readonly wire: GatewayWire) {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    // node:http's first write starts with its status line: the wire has its own.
    if (this.first && chunk.subarray(0, 9).toString('latin1') === 'HTTP/1.1 ') chunk = Buffer.concat([Buffer.from(this.wire.statusPrefix, 'latin1'), chunk.subarray(9)]);
    this.first = false;
    if (this.wire.send([chunk], false)) done();
    else this.wire.socket.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.wire.send([], true);
    done();
  }

  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/** The request as an IncomingMessage (its body, if any, passed on as it arrives) and a ServerResponse writing to `wire`. */
export function nodeObjects(lean: RequestInfo, body: Readable | null, wire: GatewayWire): { req: IncomingMessage; res: ServerResponse } {
  const socket = new WireSocket(wire);
  copyPeer(lean.socket, socket);
  const req = new IncomingMessage(socket as unknown as Socket);
  req.method = lean.method;
  req.url = lean.url;
  req.httpVersion = lean.httpVersion;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = lean.httpVersion === '1.0' ? 0 : 1;
  req.headers = lean.headers;
  req.rawHeaders = lean.rawHeaders;
  const end = () => {
    req.complete = true;
    req.push(null);
  };
  if (body === null) end();
  else body.on('data', (chunk: Buffer) => req.push(chunk)).once('end', end);
  const res = new ServerResponse(req);
  // The end of the wire ends the response: nothing to chunk, no connection to keep.
  res.useChunkedEncodingByDefault = false;
  res.shouldKeepAlive = false;
  res.assignSocket(socket as unknown as Socket);
  res.once('finish', () => socket.end());
  return { req, res };
}
