/**
 * Builds the per-request part of a WSGI environ as the wire's latin-1
 * `KEY\0VALUE\0...` block (the worker adds the wsgi.* constants).
 *
 * PEP 3333 rules applied here: PATH_INFO is percent-decoded and kept as
 * latin-1 ("bytes in a str"), QUERY_STRING stays raw, CONTENT_TYPE and
 * CONTENT_LENGTH have no HTTP_ prefix, repeated headers are joined with ", "
 * (Cookie with "; ", what cookie parsers split on), and header names holding
 * "_" are dropped so that `X_Forwarded_For` cannot pose as `X-Forwarded-For`
 * (nginx and gunicorn drop them too).
 *
 * SERVER_NAME and SERVER_PORT as gunicorn sets them: on a TCP listener, the
 * address and port the connection came in on (the Host header is the app's
 * to read, in HTTP_HOST); on a unix socket, which has neither, the Host's
 * name and port (the scheme's, 80 or 443, when it names none), per request
 * since Host can change on a keep-alive connection; a trusted proxy's
 * forwarded host and scheme count as the Host and scheme there.
 */
import type { RequestInfo } from '../http/handler.js';
import type { Socket } from 'node:net';
import { forwardedOf, PROXY_HEADER, type ForwardedRequest } from '../http/forwarded.js';

/** Marks for the two headers that describe the body: the front handles them, the app never sees them. */
const CONTENT_LENGTH = '\x01';
const TRANSFER_ENCODING = '\x02';
const cgiNames = new Map<string, string>();

/** `x-forwarded-for` → `HTTP_X_FORWARDED_FOR`. */
function httpName(raw: string): string {
  return 'HTTP_' + raw.toUpperCase().replace(/-/g, '_');
}

/** The environ key of a header: `HTTP_...`, a mark for the body's two, or '' for headers that must not pass. */
function cgiName(raw: string): string {
  let name = cgiNames.get(raw);
  if (name === undefined) {
    const lower = raw.toLowerCase();
    // HTTP/2's pseudo-headers (:path, :method...) are in the request line's keys already.
    if (raw.includes('_') || raw.charCodeAt(0) === 58 /* ':' */ || PROXY_HEADER.test(raw)) name = '';
    else if (lower === 'content-length') name = CONTENT_LENGTH;
    else if (lower === 'transfer-encoding') name = TRANSFER_ENCODING;
    else if (lower === 'content-type') name = 'CONTENT_TYPE';
    else name = httpName(raw);
    if (cgiNames.size < 4096) cgiNames.set(raw, name);
  }
  return name;
}

const kConnEnv = Symbol('gatehouse.connEnviron');
type EnvSocket = Socket & { [kConnEnv]?: string };

/** The connection's constant part, computed once per connection. */
function connectionEnviron(socket: EnvSocket, scheme: string): string {
  return (socket[kConnEnv] ??= describeConnection(socket, scheme));
}

/**
 * Server (TCP only: see serverFromHost) and client addresses and the scheme;
 * a trusted proxy's forwarded client replaces the peer's.
 */
function describeConnection(socket: Socket, scheme: string, fwd?: ForwardedRequest): string {
  let remote = socket.remoteAddress ?? '';
  if (remote.startsWith('::ffff:')) remote = remote.slice(7);
  let local = socket.localAddress ?? '';
  if (local.startsWith('::ffff:')) local = local.slice(7);
  const tcp = socket.localPort !== undefined;
  let remoteAddr = tcp ? remote : '127.0.0.1';
  let remotePort = tcp ? String(socket.remotePort ?? '') : '';
  if (fwd?.addr !== undefined) [remoteAddr, remotePort] = [fwd.addr, fwd.port ?? ''];
  return (
    (tcp ? `SERVER_NAME\0${local}\0SERVER_PORT\0${socket.localPort}\0` : '') +
    `REMOTE_ADDR\0${remoteAddr}\0REMOTE_PORT\0${remotePort}` +
    `\0wsgi.url_scheme\0${scheme}` +
    (scheme === 'https' ? '\0HTTPS\0on' : '')
  );
}

/**
 * A unix socket's SERVER_NAME and SERVER_PORT, from the Host: `name[:port]`
 * or `[v6]:port` (the name without its brackets, as the TCP listener's own
 * IPv6 address is given); without a Host, localhost and no port.
 */
function serverFromHost(host: string | undefined, scheme: string): string {
  if (!host) return '\0SERVER_NAME\0localhost\0SERVER_PORT\0';
  let name = host;
  let port = '';
  const colon = host.charCodeAt(0) === 91 /* '[' */ ? host.indexOf(']:') + 1 : host.indexOf(':');
  if (colon > 0) [name, port] = [host.slice(0, colon), host.slice(colon + 1)];
  if (name.charCodeAt(0) === 91 && name.charCodeAt(name.length - 1) === 93 /* ']' */) name = name.slice(1, -1);
  return `\0SERVER_NAME\0${name}\0SERVER_PORT\0${port || (scheme === 'https' ? '443' : '80')}`;
}


/** Where the request goes: its app is mounted at `prefix` (SCRIPT_NAME), `rest` is PATH_INFO. */
export interface EnvironTarget {
  scheme: string;
  prefix: string;
  rest: string;
  query: string;
}

/** A request's environ block, before the body's keys are added. */
export interface RequestEnviron {
  block: string;
  /** The request's Content-Length and Transfer-Encoding headers, if any. */
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

/**
 * Builds the environ from the request line and one pass over the raw headers.
 * A request from a trusted proxy (forwarded.ts) gets the client, scheme and
 * host it forwarded, and keeps its X-Forwarded-* headers; from any other peer
 * they are dropped, so an app reading them directly cannot be fooled either.
 */
export function buildEnviron(req: RequestInfo, target: EnvironTarget): RequestEnviron {
  const raw = req.rawHeaders;
  const fwd = forwardedOf(req);
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  // Names and values; a repeated name is joined to its first (a linear search: heads have a few headers).
  const parts: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    let name = cgiName(raw[i]!);
    const value = raw[i + 1]!;
    if (name.length <= 1) {
      if (name === CONTENT_LENGTH) contentLength = value;
      else if (name === TRANSFER_ENCODING) transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      if (fwd === undefined || !PROXY_HEADER.test(raw[i]!)) continue;
      name = httpName(raw[i]!);
    }
    const at = indexOfName(parts, name);
    if (at < 0) parts.push(name, value);
    else parts[at + 1] += (name === 'HTTP_COOKIE' ? '; ' : ', ') + value;
  }
  if (fwd?.host !== undefined) {
    const at = indexOfName(parts, 'HTTP_HOST');
    if (at < 0) parts.push('HTTP_HOST', fwd.host);
    else parts[at + 1] = fwd.host;
  }
  const url = req.url ?? '/';
  let block =
    `REQUEST_METHOD\0${req.method}\0SCRIPT_NAME\0${target.prefix}\0PATH_INFO\0${target.rest}\0QUERY_STRING\0${target.query}` +
    `\0RAW_URI\0${url}\0REQUEST_URI\0${url}\0SERVER_PROTOCOL\0HTTP/${req.httpVersion}\0` +
    (fwd === undefined ? connectionEnviron(req.socket, target.scheme) : describeConnection(req.socket, target.scheme, fwd));
  if (req.socket.localPort === undefined) block += serverFromHost(fwd?.host ?? req.headers.host, target.scheme);
  if (parts.length > 0) block += '\0' + parts.join('\0');
  return { block, contentLength, transferEncoding };
}

function indexOfName(parts: readonly string[], name: string): number {
  for (let i = 0; i < parts.length; i += 2) if (parts[i] === name) return i;
  return -1;
}

/** The body's keys: its length and, when it was spilled, the temp file holding it. */
export function bodyEnviron(length: number, file: string | null): string {
  return file === null ? `\0CONTENT_LENGTH\0${length}` : `\0CONTENT_LENGTH\0${length}\0gatehouse.body_file\0${file}`;
}
