/**
 * The CGI/1.1 variables (RFC 3875) a FastCGI, SCGI or uwsgi back end gets,
 * with nginx's stock fastcgi_params / scgi_params / uwsgi_params as the
 * reference: REQUEST_METHOD, REQUEST_URI (raw), DOCUMENT_URI (decoded path),
 * QUERY_STRING, SCRIPT_NAME and PATH_INFO, SERVER_PROTOCOL, REQUEST_SCHEME,
 * HTTPS=on over TLS, GATEWAY_INTERFACE, SERVER_SOFTWARE, REMOTE_ADDR/PORT
 * (a trusted proxy's client: forwarded.ts), SERVER_ADDR/PORT/NAME,
 * CONTENT_TYPE and the HTTP_* headers (cgi-headers.ts); CONTENT_LENGTH is
 * each protocol's to place. The route's own `params` come last and replace
 * a variable of the same name.
 */
import { forwardedOf } from '../http/forwarded.js';
import { headerVariables } from '../http/cgi-headers.js';
import type { HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';

/** Where the request goes in the back end's terms. */
export interface CgiTarget {
  scriptName: string;
  pathInfo: string;
  /** File-based back ends (PHP): DOCUMENT_ROOT and SCRIPT_FILENAME. */
  documentRoot?: string;
  scriptFilename?: string;
}

export type Pairs = [string, string][];

const PROTOCOLS: Readonly<Record<string, string>> = { '1.1': 'HTTP/1.1', '1.0': 'HTTP/1.0', '2.0': 'HTTP/2.0' };

function unmapped(address: string | undefined): string {
  return address === undefined ? '' : address.startsWith('::ffff:') ? address.slice(7) : address;
}

export interface CgiRequest {
  pairs: Pairs;
  /** The request's Content-Length and Transfer-Encoding headers, if any. */
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

export function cgiParams(
  r: RouteRequest<RequestInfo, HttpResponse>,
  target: CgiTarget,
  software: string,
  extra: Readonly<Record<string, string>>,
): CgiRequest {
  const { req } = r;
  const fwd = forwardedOf(req);
  const socket = req.socket;
  const tcp = socket.localPort !== undefined;
  const serverAddr = tcp ? unmapped(socket.localAddress) : 'unix:';
  const pairs: Pairs = [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', software],
    ['REQUEST_METHOD', req.method ?? 'GET'],
    ['REQUEST_URI', req.url ?? '/'],
    ['DOCUMENT_URI', r.prefix + r.rest || '/'],
    ['QUERY_STRING', r.query],
    ['SCRIPT_NAME', target.scriptName],
    ['PATH_INFO', target.pathInfo],
    ['SERVER_PROTOCOL', PROTOCOLS[req.httpVersion] ?? `HTTP/${req.httpVersion}`],
    ['REQUEST_SCHEME', r.scheme],
    ['REMOTE_ADDR', fwd?.addr ?? (tcp ? unmapped(socket.remoteAddress) : '127.0.0.1')],
    ['REMOTE_PORT', fwd?.addr !== undefined ? (fwd.port ?? '') : tcp ? String(socket.remotePort ?? '') : ''],
    ['SERVER_ADDR', serverAddr],
    ['SERVER_PORT', tcp ? String(socket.localPort) : r.scheme === 'https' ? '443' : '80'],
    ['SERVER_NAME', r.host || serverAddr],
  ];
  if (r.scheme === 'https') pairs.push(['HTTPS', 'on']);
  if (target.documentRoot !== undefined) pairs.push(['DOCUMENT_ROOT', target.documentRoot]);
  if (target.scriptFilename !== undefined) pairs.push(['SCRIPT_FILENAME', target.scriptFilename]);
  // No header variable (HTTP_*, CONTENT_TYPE) has the name of one above: they are added without a search.
  const headers = headerVariables(req, fwd);
  for (let i = 0; i < headers.parts.length; i += 2) pairs.push([headers.parts[i]!, headers.parts[i + 1]!]);
  for (const name in extra) {
    const at = pairs.findIndex((pair) => pair[0] === name);
    if (at < 0) pairs.push([name, extra[name]!]);
    else pairs[at]![1] = extra[name]!;
  }
  return { pairs, contentLength: headers.contentLength, transferEncoding: headers.transferEncoding };
}

/**
 * A file-based back end's script (nginx's `root` with fastcgi_index and
 * fastcgi_split_path_info): the path is split by `split` (two groups: the
 * script, then PATH_INFO), a path ending in `/` gets the index file, and
 * SCRIPT_FILENAME is the root joined with the script's path.
 */
export function scriptTarget(path: string, root: string, index: string, split: RegExp | undefined): CgiTarget {
  let scriptName = path;
  let pathInfo = '';
  const m = split?.exec(path);
  if (m) [scriptName, pathInfo] = [m[1] ?? '', m[2] ?? ''];
  if (scriptName.endsWith('/')) scriptName += index;
  return { scriptName, pathInfo, documentRoot: root, scriptFilename: (root.endsWith('/') ? root.replace(/\/+$/, '') : root) + scriptName };
}
