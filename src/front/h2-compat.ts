/**
 * HTTP/2 requests for the route actions that need node:http's objects
 * (made on demand by the front; the app bridge takes the lean ones of
 * http2-response.ts). Node's compatibility API (Http2ServerRequest /
 * Http2ServerResponse) mirrors IncomingMessage and ServerResponse; these
 * subclasses smooth the few places where the front's HTTP/1 habits would be
 * wrong for HTTP/2:
 *
 * - the request gets a Host header from `:authority` (what routing, the
 *   environ's HTTP_HOST and redirects read), when the client sent none, and
 *   keeps the client's address for the access log;
 * - a response drops its reason phrase (HTTP/2 has none) and the
 *   connection-specific headers HTTP/2 forbids (Connection, Keep-Alive,
 *   Transfer-Encoding, Upgrade, Proxy-Connection: RFC 9113 8.2.2) rather
 *   than failing the response;
 * - `writableNeedDrain`, `destroyed` and `shouldKeepAlive` exist, as on
 *   ServerResponse.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ReadableOptions } from 'node:stream';
import { CONNECTION_SPECIFIC } from './http2-response.js';


export class H2Request extends Http2ServerRequest {
  /** The client's address, kept: once the stream is closed `socket` no longer leads to the connection. */
  readonly peerAddress: string | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: ReadableOptions, rawHeaders: readonly string[]) {
    const authority = headers[':authority'];
    if (headers.host === undefined && authority !== undefined) {
      headers.host = authority;
      rawHeaders = [...rawHeaders, 'host', authority];
    }
    super(stream, headers, options, rawHeaders);
    this.peerAddress = stream.session?.socket.remoteAddress;
  }
}

export class H2Response extends Http2ServerResponse<H2Request> {
  /** The front sets it while draining; an HTTP/2 session is closed with GOAWAY instead. */
  shouldKeepAlive = true;

  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders): this;
  override writeHead(statusCode: number, statusMessage: string, headers?: OutgoingHttpHeaders): this;
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    // Node's compat writeHead takes a flat [name, value, ...] array too, as http's does.
    return super.writeHead(statusCode, withoutConnectionHeaders(typeof a === 'string' ? b : a) as OutgoingHttpHeaders | undefined);
  }

  override setHeader(name: string, value: number | string | readonly string[]): void {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) super.setHeader(name, value);
  }
}

// Properties in Writable's typings, so they cannot be declared as accessors above.
Object.defineProperties(H2Response.prototype, {
  writableNeedDrain: {
    get(this: H2Response) {
      return this.stream.writableNeedDrain;
    },
  },
  // A reset stream is closed before it is destroyed; either way it takes no more writes (they would throw).
  destroyed: {
    get(this: H2Response) {
      return this.stream.destroyed || this.stream.closed;
    },
  },
});

function withoutConnectionHeaders(headers: OutgoingHttpHeaders | readonly string[] | undefined): OutgoingHttpHeaders | string[] | undefined {
  if (headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    const flat = headers as readonly string[];
    const kept: string[] = [];
    for (let i = 0; i < flat.length; i += 2) if (!CONNECTION_SPECIFIC.has(flat[i]!.toLowerCase())) kept.push(flat[i]!, flat[i + 1]!);
    return kept;
  }
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) kept[name] = value;
  return kept;
}
