/**
 * Builds an ASGI HTTP scope's per-request fields as the wire's latin-1
 * NUL-separated block (python/gatehouse_asgi_response.py reads it): method,
 * scheme, HTTP version, root_path (the route's mount) and the path below it
 * (both percent-decoded bytes, which the worker decodes as UTF-8), raw path,
 * query string, client host and port, server host and port (a unix
 * listener: its path and an empty port), then the
 * headers as name (lower case) and value, then the spilled body's temp file.
 *
 * Headers pass as the client sent them (repeats stay separate, as ASGI
 * wants), except HTTP/2's pseudo-headers and, from peers that are not
 * trusted proxies, the X-Forwarded-* family (as for WSGI: see forwarded.ts).
 * A trusted proxy's client address and host replace the peer's.
 */
import type { Socket } from 'node:net';
import type { RequestInfo } from '../http/handler.js';
import { forwardedOf, PROXY_HEADER, type ForwardedRequest } from '../http/forwarded.js';
import { isHeaderName } from '../http/header-name.js';
import type { BodyHeaders } from '../http/cgi-headers.js';
import type { BlockWriter } from '../wire/block-writer.js';

/** Where the request goes: the app is mounted at `prefix`, `rest` is the path below it. */
export interface ScopeTarget {
  scheme: string;
  prefix: string;
  rest: string;
  query: string;
}

const kConnScope = Symbol('gatehouse.connScope');
type ScopeSocket = Socket & { [kConnScope]?: string };

function bare(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** A unix-socket listener's path (ASGI's `server` is then [path, None]); '' when there is none. */
function unixPath(socket: Socket): string {
  const address = (socket as Socket & { server?: { address(): unknown } }).server?.address();
  return typeof address === 'string' ? address : '';
}

/** The peer's client and server fields, made once per connection. */
function connectionFields(socket: ScopeSocket): string {
  return (socket[kConnScope] ??= describeConnection(socket));
}

/** A connection that carries no more requests (an open WebSocket): its fields are not kept on it. */
export function forgetConnection(socket: Socket): void {
  (socket as ScopeSocket)[kConnScope] = undefined;
}

function describeConnection(socket: Socket): string {
  const tcp = socket.localPort !== undefined;
  const client = tcp ? `${bare(socket.remoteAddress)}\0${socket.remotePort ?? 0}` : '\0';
  const server = tcp ? `${bare(socket.localAddress)}\0${socket.localPort}` : `${unixPath(socket)}\0`;
  // join() makes one flat string: a rope of pieces kept on every idle connection would cost more.
  return [client, server].join('\0');
}

/** Writes the request's scope block into `w` (from its start), all but its last field (scopeBody()). */
export function buildScope(req: RequestInfo, target: ScopeTarget, w: BlockWriter): BodyHeaders {
  const raw = req.rawHeaders;
  const fwd = forwardedOf(req);
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  w.reset();
  w.text(req.method ?? '');
  w.field(target.scheme);
  w.field(req.httpVersion);
  w.field(target.prefix);
  w.field(target.rest);
  w.field('');
  w.text(url, 0, q < 0 ? url.length : q);
  w.field(target.query);
  w.field(fwd === undefined ? connectionFields(req.socket) : forwardedFields(req.socket, fwd));
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (isHeaderName(name, 'content-length')) contentLength = value;
    else if (isHeaderName(name, 'transfer-encoding')) transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    else if (fwd?.host !== undefined && isHeaderName(name, 'host')) continue;
    else if (fwd === undefined && PROXY_HEADER.test(name)) continue;
    w.lowerField(name);
    w.field(value);
  }
  if (fwd?.host !== undefined) {
    w.field('host');
    w.field(fwd.host);
  }
  return { contentLength, transferEncoding };
}

/** A trusted proxy's client (the peer's when it gave none) and the server. */
function forwardedFields(socket: Socket, fwd: ForwardedRequest): string {
  if (fwd.addr === undefined) return connectionFields(socket);
  const own = connectionFields(socket);
  // The server's fields follow the client's two.
  const server = own.slice(own.indexOf('\0', own.indexOf('\0') + 1) + 1);
  return `${fwd.addr}\0${fwd.port ?? '0'}\0${server}`;
}

/** The block's last field: the temp file holding a spilled body, '' when the body travels in the frame. */
export function scopeBody(_length: number, file: string | null): string {
  return `\0${file ?? ''}`;
}
