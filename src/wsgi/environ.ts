/**
 * Writes the per-request part of a WSGI environ as the wire's latin-1
 * `KEY\0VALUE\0...` block (the worker adds the wsgi.* constants).
 *
 * PEP 3333 rules applied here: PATH_INFO is percent-decoded and kept as
 * latin-1 ("bytes in a str"), QUERY_STRING stays raw; the headers become
 * variables as cgi-headers.ts says.
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
import { forwardedOf, type ForwardedRequest } from '../http/forwarded.js';
import { writeHeaderVariables, type BodyHeaders } from '../http/cgi-headers.js';
import type { BlockWriter } from '../wire/block-writer.js';

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
  const vars = tcp ? ['SERVER_NAME', local, 'SERVER_PORT', String(socket.localPort)] : [];
  vars.push('REMOTE_ADDR', remoteAddr, 'REMOTE_PORT', remotePort, 'wsgi.url_scheme', scheme);
  if (scheme === 'https') vars.push('HTTPS', 'on');
  // join() makes one flat string; `+` would keep a rope of a dozen pieces on every idle connection.
  return vars.join('\0');
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


/** The environ's names and separators around the request's values, encoded once (BlockWriter.bytes). */
const REQUEST_METHOD = Buffer.from('REQUEST_METHOD\0', 'latin1');
const SCRIPT_NAME = Buffer.from('\0SCRIPT_NAME\0', 'latin1');
const PATH_INFO = Buffer.from('\0PATH_INFO\0', 'latin1');
const QUERY_STRING = Buffer.from('\0QUERY_STRING\0', 'latin1');
const RAW_URI = Buffer.from('\0RAW_URI\0', 'latin1');
const REQUEST_URI = Buffer.from('\0REQUEST_URI\0', 'latin1');
const SERVER_PROTOCOL = Buffer.from('\0SERVER_PROTOCOL\0', 'latin1');
const HTTP_1_1 = Buffer.from('\0SERVER_PROTOCOL\0HTTP/1.1', 'latin1');

/** Where the request goes: its app is mounted at `prefix` (SCRIPT_NAME), `rest` is PATH_INFO. */
export interface EnvironTarget {
  scheme: string;
  prefix: string;
  rest: string;
  query: string;
}

/**
 * Writes the environ block into `w` (from its start), from the request line
 * and one pass over the raw headers.
 * A request from a trusted proxy (forwarded.ts) gets the client, scheme and
 * host it forwarded, and keeps its X-Forwarded-* headers; from any other peer
 * they are dropped, so an app reading them directly cannot be fooled either.
 */
export function buildEnviron(req: RequestInfo, target: EnvironTarget, w: BlockWriter): BodyHeaders {
  const fwd = forwardedOf(req);
  const url = req.url ?? '/';
  w.reset();
  w.bytes(REQUEST_METHOD);
  w.text(req.method ?? '');
  w.bytes(SCRIPT_NAME);
  w.text(target.prefix);
  w.bytes(PATH_INFO);
  w.text(target.rest);
  w.bytes(QUERY_STRING);
  w.text(target.query);
  w.bytes(RAW_URI);
  w.text(url);
  w.bytes(REQUEST_URI);
  w.text(url);
  if (req.httpVersion === '1.1') w.bytes(HTTP_1_1);
  else {
    w.bytes(SERVER_PROTOCOL);
    w.text(`HTTP/${req.httpVersion}`);
  }
  w.field(fwd === undefined ? connectionEnviron(req.socket, target.scheme) : describeConnection(req.socket, target.scheme, fwd));
  if (req.socket.localPort === undefined) w.text(serverFromHost(fwd?.host ?? req.headers.host, target.scheme));
  return writeHeaderVariables(req, fwd, w);
}

/** The body's keys: its length and, when it was spilled, the temp file holding it. */
export function bodyEnviron(length: number, file: string | null): string {
  return file === null ? `\0CONTENT_LENGTH\0${length}` : `\0CONTENT_LENGTH\0${length}\0gatehouse.body_file\0${file}`;
}
