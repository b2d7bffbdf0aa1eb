/**
 * One request under way on a uwsgi, FastCGI or SCGI connection
 * (gateway-listener.ts): its body as the front end sends it, its response,
 * and what the front end going away does to the work under way for it.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { clientGoneFrom } from '../http/in-flight.js';
import type { MemberList } from '../http/member-list.js';
import type { Serve } from './fast-path.js';
import type { GatewayRequest } from './gateway-request.js';
import { GatewayResponse, JOIN_LIMIT, type GatewayWire } from './gateway-response.js';
import { nodeObjects } from './gateway-node.js';

/** What the connections of one gateway listener share. */
export interface GatewayListener {
  serve: Serve['lean'];
  /** Connections waiting for a request's variables, or FastCGI ones for their next request (closed when the server drains). */
  idle: MemberList<Socket>;
  /** header_timeout: the longest wait for a request, between two. */
  waitMs: number;
  /** Closes a connection that does not speak the protocol, with a log line. */
  garbage(socket: Socket, why: string): void;
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

export class GatewayExchange {
  readonly body: GatewayBody | null;
  /** Body bytes still to come. */
  left: number;
  readonly res: GatewayResponse;

  /** Hands the request to the front's handler (`serve`), its response written to `wire`. */
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
    clientGoneFrom(this.request.req.socket);
    this.res.close();
  }
}

/** `parts` on the socket: one write when they are small, else corked writes. */
export function writeAll(socket: Socket, parts: Buffer[]): boolean {
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
