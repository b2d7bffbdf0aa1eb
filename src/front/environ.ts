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
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

const cgiNames = new Map<string, string>();

/** `x-forwarded-for` → `HTTP_X_FORWARDED_FOR`; '' for headers that must not pass. */
function cgiName(raw: string): string {
  let name = cgiNames.get(raw);
  if (name === undefined) {
    const lower = raw.toLowerCase();
    if (raw.includes('_') || lower === 'transfer-encoding') name = '';
    else if (lower === 'content-type') name = 'CONTENT_TYPE';
    else if (lower === 'content-length') name = '';
    else name = 'HTTP_' + lower.toUpperCase().replace(/-/g, '_');
    if (cgiNames.size < 4096) cgiNames.set(raw, name);
  }
  return name;
}

const PERCENT = /%([0-9A-Fa-f]{2})/g;

/** Percent-decodes to a latin-1 string: each byte becomes one char, as PEP 3333 wants. */
export function decodePath(path: string): string {
  return path.includes('%') ? path.replace(PERCENT, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : path;
}

const kConnEnv = Symbol('gatehouse.connEnviron');
type EnvSocket = Socket & { [kConnEnv]?: string };

/** The connection's constant part, computed once per connection. */
function connectionEnviron(socket: EnvSocket, scheme: string): string {
  let env = socket[kConnEnv];
  if (env === undefined) {
    let remote = socket.remoteAddress ?? '';
    if (remote.startsWith('::ffff:')) remote = remote.slice(7);
    let local = socket.localAddress ?? '';
    if (local.startsWith('::ffff:')) local = local.slice(7);
    const tcp = socket.localPort !== undefined;
    env =
      `SERVER_NAME\0${tcp ? local : 'localhost'}\0SERVER_PORT\0${tcp ? socket.localPort : ''}` +
      `\0REMOTE_ADDR\0${tcp ? remote : '127.0.0.1'}\0REMOTE_PORT\0${tcp ? socket.remotePort ?? '' : ''}` +
      `\0wsgi.url_scheme\0${scheme}`;
    socket[kConnEnv] = env;
  }
  return env;
}

export interface EnvironExtras {
  scheme: string;
  /** Length of the buffered body, or -1 when the request has none. */
  bodyLength: number;
  /** Temp file holding the body, when it was too large to keep in memory. */
  bodyFile: string | null;
}

/** The environ block, or null when the path decodes to a NUL (refused with 400: NUL separates the wire's fields). */
export function buildEnviron(req: IncomingMessage, extras: EnvironExtras): string | null {
  const url = req.url ?? '/';
  let target = url;
  if (target.charCodeAt(0) !== 47 /* '/' */) {
    // absolute-form (a proxy-style request line): keep only the path
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    target = m ? target.slice(m[0].length) || '/' : target;
  }
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);

  const pathInfo = decodePath(path);
  if (pathInfo.includes('\0')) return null;
  let env =
    `REQUEST_METHOD\0${req.method}\0SCRIPT_NAME\0\0PATH_INFO\0${pathInfo}\0QUERY_STRING\0${query}` +
    `\0RAW_URI\0${url}\0REQUEST_URI\0${url}\0SERVER_PROTOCOL\0HTTP/${req.httpVersion}\0` +
    connectionEnviron(req.socket, extras.scheme);
  if (extras.bodyLength >= 0) env += `\0CONTENT_LENGTH\0${extras.bodyLength}`;
  if (extras.bodyFile !== null) env += `\0gatehouse.body_file\0${extras.bodyFile}`;

  const raw = req.rawHeaders;
  const seen = new Map<string, number>();
  const parts: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = cgiName(raw[i]!);
    if (name === '') continue;
    const value = raw[i + 1]!;
    const at = seen.get(name);
    if (at === undefined) {
      seen.set(name, parts.length);
      parts.push(name, value);
    } else {
      parts[at + 1] += (name === 'HTTP_COOKIE' ? '; ' : ', ') + value;
    }
  }
  if (parts.length > 0) env += '\0' + parts.join('\0');
  return env;
}
