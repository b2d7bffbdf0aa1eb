/**
 * One request that came in over uwsgi, FastCGI or SCGI, as node:http sees
 * it: a duplex stream whose readable side is the request rewritten as
 * HTTP/1.0 (from the front end's CGI variables) and its body, and whose
 * writable side takes node:http's response for the protocol to frame. It
 * carries the client's and server's addresses the front end sent, so the
 * environ, the access log and forwarded-header trust see the real client;
 * and whether the client came over https (HTTPS=on).
 *
 * The request line carries the front end's SERVER_PROTOCOL when it is
 * HTTP/1.0 or HTTP/1.1 (else HTTP/1.1), with `Connection: close`: one
 * request per stream is all there is, and the response is delimited by the
 * stream's end, never chunked (gateway-listener.ts tells node:http so).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { inFlightOn } from '../http/in-flight.js';

const kScheme = Symbol('gatehouse.gatewayScheme');

/** The scheme a front end said its client used; undefined for an ordinary connection. */
export function gatewayScheme(socket: Socket): 'http' | 'https' | undefined {
  return (socket as { [kScheme]?: 'http' | 'https' })[kScheme];
}

export interface GatewayRequest {
  /** The request line and headers, as HTTP/1.0. */
  head: Buffer;
  contentLength: number;
  scheme: 'http' | 'https';
  remoteAddress: string;
  remotePort: number | undefined;
  localAddress: string;
  localPort: number | undefined;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `HTTP_X_FORWARDED_FOR` → `X-Forwarded-For`. */
function headerName(variable: string): string {
  return variable
    .slice(5)
    .split('_')
    .map((w) => w.charAt(0) + w.slice(1).toLowerCase())
    .join('-');
}

/** Percent-encodes what cannot stand in a request line (a front end may pass a decoded path). */
function requestTarget(text: string): string {
  return text.replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/**
 * The request the front end's variables describe, or why they do not. The
 * target is REQUEST_URI when given, else DOCUMENT_URI or SCRIPT_NAME +
 * PATH_INFO with QUERY_STRING (nginx's stock params send no PATH_INFO for
 * FastCGI and SCGI): the routes and the app see the real path.
 */
export function gatewayRequest(pairs: readonly (readonly [string, string])[]): GatewayRequest | string {
  const vars = new Map<string, string>();
  for (const [name, value] of pairs) vars.set(name, value);
  const method = vars.get('REQUEST_METHOD') ?? '';
  if (!TOKEN.test(method)) return `no valid REQUEST_METHOD (${JSON.stringify(method.slice(0, 20))})`;
  const query = vars.get('QUERY_STRING') ?? '';
  let target = vars.get('REQUEST_URI') || '';
  if (target === '') {
    const path = vars.get('DOCUMENT_URI') || (vars.get('SCRIPT_NAME') ?? '') + (vars.get('PATH_INFO') ?? '') || '/';
    target = query === '' ? path : `${path}?${query}`;
  }
  if (!target.startsWith('/')) return `a request target that is not a path (${JSON.stringify(target.slice(0, 40))})`;
  const contentLength = Number(vars.get('CONTENT_LENGTH') || '0');
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) return `an invalid CONTENT_LENGTH`;
  const version = vars.get('SERVER_PROTOCOL') === 'HTTP/1.0' ? '1.0' : '1.1';
  const lines = [`${method} ${requestTarget(target)} HTTP/${version}`, 'Connection: close'];
  let host = false;
  for (const [name, value] of vars) {
    // A value that would break the head is dropped; so are names no header could have.
    if (/[\0\r\n]/.test(value)) continue;
    if (name.startsWith('HTTP_') && name.length > 5 && /^[A-Z0-9_]+$/.test(name)) {
      const header = headerName(name);
      // The body's headers come from CONTENT_TYPE and CONTENT_LENGTH (nginx sends both forms).
      // The front end has dealt with Expect and the connection's own headers.
      if (/^(?:Content-Length|Content-Type|Transfer-Encoding|Connection|Keep-Alive|Expect|Upgrade)$/.test(header)) continue;
      host ||= header === 'Host';
      lines.push(`${header}: ${value}`);
    }
  }
  if (!host && vars.get('SERVER_NAME')) lines.push(`Host: ${vars.get('SERVER_NAME')}`);
  const contentType = vars.get('CONTENT_TYPE') || vars.get('HTTP_CONTENT_TYPE');
  if (contentType && !/[\0\r\n]/.test(contentType)) lines.push(`Content-Type: ${contentType}`);
  if (contentLength > 0) lines.push(`Content-Length: ${contentLength}`);
  const https = /^(on|1|true)$/i.test(vars.get('HTTPS') ?? '') || /^https$/i.test(vars.get('REQUEST_SCHEME') ?? vars.get('UWSGI_SCHEME') ?? '');
  const port = (text: string | undefined) => (text && /^\d{1,5}$/.test(text) ? Number(text) : undefined);
  return {
    head: Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'),
    contentLength,
    scheme: https ? 'https' : 'http',
    remoteAddress: vars.get('REMOTE_ADDR') || '127.0.0.1',
    remotePort: port(vars.get('REMOTE_PORT')),
    localAddress: vars.get('SERVER_ADDR') || vars.get('SERVER_NAME') || '127.0.0.1',
    localPort: port(vars.get('SERVER_PORT')),
  };
}

/**
 * The protocol's connection: where the response goes (`write` calls back
 * once the connection took it, `end` after the last byte), and the body's
 * source, paused while node:http has not read what came.
 */
export interface GatewaySink {
  resume(): void;
  write(chunk: Buffer, done: () => void): void;
  end(): void;
  /** node:http or the client side gave up on the request. */
  abort(): void;
}

export class GatewayStream extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number | undefined;
  readonly localAddress: string;
  readonly localPort: number | undefined;
  readonly [kScheme]: 'http' | 'https';
  private ended = false;

  constructor(request: GatewayRequest, private readonly sink: GatewaySink) {
    super({ allowHalfOpen: true });
    this.remoteAddress = request.remoteAddress;
    this.remotePort = request.remotePort;
    this.localAddress = request.localAddress;
    this.localPort = request.localPort;
    this[kScheme] = request.scheme;
    this.push(request.head);
  }

  /**
   * Body bytes from the front end; false: pause the source until the sink's
   * resume(). The stream is never ended: to node:http that would be a
   * client closing early.
   */
  body(chunk: Buffer): boolean {
    return this.push(chunk);
  }

  override _read(): void {
    this.sink.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.sink.write(chunk, () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.ended = true;
    this.sink.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.ended) this.sink.abort();
    // As the front does when an HTTP connection closes: the work under way for it stops.
    for (const x of inFlightOn(this as unknown as Socket).slice()) x.clientGone();
    done(err);
  }

  // What node:http and the front call on a socket.
  destroySoon(): void {
    this.end();
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
