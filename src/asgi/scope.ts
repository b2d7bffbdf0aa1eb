/**
 * Builds an ASGI HTTP scope's per-request fields as the wire's latin-1
 * NUL-separated block (python/gatehouse_asgi_http.py reads it): method,
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
import { forwardedOf, PROXY_HEADER } from '../http/forwarded.js';

/** Where the request goes: the app is mounted at `prefix`, `rest` is the path below it. */
export interface ScopeTarget {
  scheme: string;
  prefix: string;
  rest: string;
  query: string;
}

/** The scope block without its last field (the body file): see scopeBody(). */
export interface RequestScope {
  block: string;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

function bare(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** A unix-socket listener's path (ASGI's `server` is then [path, None]); '' when there is none. */
function unixPath(socket: Socket): string {
  const address = (socket as Socket & { server?: { address(): unknown } }).server?.address();
  return typeof address === 'string' ? address : '';
}

export function buildScope(req: RequestInfo, target: ScopeTarget): RequestScope {
  const raw = req.rawHeaders;
  const fwd = forwardedOf(req);
  const socket = req.socket;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let headers = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (name === 'content-length') contentLength = value;
    else if (name === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    else if (name === 'host' && fwd?.host !== undefined) continue;
    else if (fwd === undefined && PROXY_HEADER.test(name)) continue;
    headers += `\0${name}\0${value}`;
  }
  if (fwd?.host !== undefined) headers += `\0host\0${fwd.host}`;
  const tcp = socket.localPort !== undefined;
  const client = fwd?.addr !== undefined ? `${fwd.addr}\0${fwd.port ?? '0'}` : tcp ? `${bare(socket.remoteAddress)}\0${socket.remotePort ?? 0}` : '\0';
  const server = tcp ? `${bare(socket.localAddress)}\0${socket.localPort}` : `${unixPath(socket)}\0`;
  const block =
    `${req.method}\0${target.scheme}\0${req.httpVersion}\0${target.prefix}\0${target.rest}\0${q < 0 ? url : url.slice(0, q)}` +
    `\0${target.query}\0${client}\0${server}${headers}`;
  return { block, contentLength, transferEncoding };
}

/** The block's last field: the temp file holding a spilled body, '' when the body travels in the frame. */
export function scopeBody(_length: number, file: string | null): string {
  return `\0${file ?? ''}`;
}
