/**
 * A request the fast path gave to the front's handler (fast-connection.ts),
 * until its body is in and its response written, and the node:http objects
 * the fast path makes when a handler needs them.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestInfo } from '../http/handler.js';
import type { FastConnection } from './fast-connection.js';
import type { LeanParts } from './fast-path.js';
import type { Http1Response } from './http1-response.js';
import type { ParsedHead } from './request-head.js';
import type { ChunkedBody, ChunkFault } from './chunked-body.js';

/** node:http's internals that its own server uses around a response, and so does this path. */
export type NodeResponse = ServerResponse & { _keepAliveTimeout: number; _last: boolean };

/** A request given to the handler, until both its body is in and its response is written. */
export class FastRequest implements LeanParts {
  /** Of a Content-Length body, the bytes still to come. */
  private bodyLeft: number;
  /** The last feed() filled the body's buffer: read no more until it is read. */
  full = false;

  constructor(
    private readonly connection: FastConnection,
    readonly head: ParsedHead,
    /** The body, pushed in as it arrives; null when there is none. */
    readonly body: IncomingMessage | null,
    public res: NodeResponse | Http1Response,
    /** A chunked body's reader, until the body is in. */
    readonly chunks: ChunkedBody | null = null,
  ) {
    this.bodyLeft = head.bodyLength;
  }

  /**
   * Pushes the body's part of `chunk` into the body (ending it once all is
   * in); what follows the body in `chunk`, if anything, or a chunked body's
   * framing fault.
   */
  feed(chunk: Buffer): Buffer | null | ChunkFault {
    const body = this.body!;
    const chunks = this.chunks;
    if (chunks !== null) {
      const rest = chunks.feed(chunk);
      this.full = chunks.full;
      if (chunks.done) {
        body.rawTrailers = chunks.trailers;
        endBody(body);
      }
      return rest;
    }
    const n = Math.min(this.bodyLeft, chunk.length);
    this.bodyLeft -= n;
    this.full = !body.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    if (this.bodyLeft === 0) endBody(body);
    return n === chunk.length ? null : chunk.subarray(n);
  }

  /** node:http's request and response in place of the lean ones (what node:http's server makes per request). */
  toNode(): { req: IncomingMessage; res: ServerResponse } {
    const { socket } = this.connection;
    const lean = this.res as Http1Response;
    const req = this.body ?? toRequest(socket, this.head);
    const res = new ServerResponse(req) as NodeResponse;
    res.shouldKeepAlive = lean.shouldKeepAlive;
    // node:http's server sets it so that the response says Keep-Alive: timeout=N.
    res._keepAliveTimeout = lean.keepAliveTimeout * 1000;
    if (this.connection.isCurrent(this)) {
      lean.detachSocket();
      res.assignSocket(socket);
    }
    this.res = res;
    res.once('finish', () => this.finished());
    return { req, res };
  }

  /** Its response is written (Http1Response calls this, node:http's responses emit 'finish'). */
  finished(): void {
    this.connection.finished(this);
  }
}

/** node:http's request object for a head read here (its body, if any, is pushed in later). */
export function toRequest(socket: Socket, head: ParsedHead): IncomingMessage {
  const req = new IncomingMessage(socket);
  req.method = head.method;
  req.url = head.url;
  req.httpVersion = head.httpVersion;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = head.httpVersion === '1.1' ? 1 : 0;
  req.headers = head.headers;
  req.rawHeaders = head.rawHeaders;
  return req;
}

/** The fast path's own record of a request without a body (no node:http object). */
export function leanRequest(socket: Socket, head: ParsedHead): RequestInfo {
  return { method: head.method, url: head.url, httpVersion: head.httpVersion, httpVersionMajor: 1, headers: head.headers, rawHeaders: head.rawHeaders, socket };
}

/** The request's body is all in (node:http's message-complete). */
export function endBody(req: IncomingMessage): void {
  req.complete = true;
  req.push(null);
}

export function aborted(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}
