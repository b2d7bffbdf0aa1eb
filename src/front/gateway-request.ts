/**
 * A request that came in over uwsgi, FastCGI or SCGI, made from the front
 * end's CGI variables into the same lean record the fast path makes of an
 * HTTP/1.1 head (http/handler.ts RequestInfo): the routes, limits, logs and
 * actions take it as any other request, with no HTTP text made up and
 * parsed again in between.
 *
 * Its `socket` is a GatewayPeer: the client's and server's addresses the
 * front end sent, so the environ, the access log and forwarded-header trust
 * see the real client (one FastCGI connection carries many clients'
 * requests, one after another), and whether the client came over https.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestInfo } from '../http/handler.js';
import { TOKEN } from '../http/token.js';

const kScheme = Symbol('gatehouse.gatewayScheme');

/** The scheme a front end said its client used; undefined for an ordinary connection. */
export function gatewayScheme(socket: Socket): 'http' | 'https' | undefined {
  return (socket as { [kScheme]?: 'http' | 'https' })[kScheme];
}

/** What a gateway request's `socket` is: the ends of the client's connection to the front end. */
class GatewayPeer {
  readonly [kScheme]: 'http' | 'https';

  constructor(
    readonly remoteAddress: string,
    readonly remotePort: number | undefined,
    readonly localAddress: string,
    readonly localPort: number | undefined,
    scheme: 'http' | 'https',
  ) {
    this[kScheme] = scheme;
  }
}

/** Gives `target` (a stand-in socket) the client, server and scheme of a gateway request's `socket`. */
export function copyPeer(socket: Socket, target: object): void {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  Object.defineProperties(target, {
    remoteAddress: { value: remoteAddress },
    remotePort: { value: remotePort },
    localAddress: { value: localAddress },
    localPort: { value: localPort },
    [kScheme]: { value: gatewayScheme(socket) },
  });
}

export interface GatewayRequest {
  req: RequestInfo;
  /** CONTENT_LENGTH: the body's bytes that follow (uwsgi, SCGI) or come as STDIN (FastCGI). */
  contentLength: number;
}

/** The CGI variables the request is made from (besides the headers). */
const USED_NAMES = [
  'REQUEST_METHOD',
  'REQUEST_URI',
  'DOCUMENT_URI',
  'SCRIPT_NAME',
  'PATH_INFO',
  'QUERY_STRING',
  'CONTENT_LENGTH',
  'CONTENT_TYPE',
  'SERVER_PROTOCOL',
  'SERVER_NAME',
  'SERVER_ADDR',
  'SERVER_PORT',
  'REMOTE_ADDR',
  'REMOTE_PORT',
  'HTTPS',
  'REQUEST_SCHEME',
  'UWSGI_SCHEME',
] as const;
type UsedName = (typeof USED_NAMES)[number];
/** Each used variable's place in a request's values (a Map and an array: names are fresh strings, which as object keys would be interned one by one). */
const USED_AT = new Map<string, number>(USED_NAMES.map((n, i) => [n, i]));
const AT = Object.fromEntries(USED_NAMES.map((n, i) => [n, i])) as Record<UsedName, number>;

const HEADER_VARIABLE = /^HTTP_[A-Z0-9_]+$/;
/** The body's headers come from CONTENT_TYPE and CONTENT_LENGTH (nginx sends both forms); the front end has dealt with the connection's own. */
const NOT_PASSED = new Set(['content-length', 'content-type', 'transfer-encoding', 'connection', 'keep-alive', 'expect', 'upgrade']);
const UNSAFE_VALUE = /[\0\r\n]/;

/** A header variable's name as sent (`X-Forwarded-For`) and as a key (`x-forwarded-for`); null: not passed on. */
type HeaderNames = { header: string; key: string } | null;

/** Header names made from variables so far: the same few come with every request. */
const headerNames = new Map<string, HeaderNames>();

/** `HTTP_X_FORWARDED_FOR` → `X-Forwarded-For`; null for a name no header could have, or one not passed on. */
function headerNamesOf(variable: string): HeaderNames {
  let names = headerNames.get(variable);
  if (names !== undefined) return names;
  if (variable.length <= 5 || !HEADER_VARIABLE.test(variable)) return null;
  const header = variable
    .slice(5)
    .split('_')
    .map((w) => w.charAt(0) + w.slice(1).toLowerCase())
    .join('-');
  const key = header.toLowerCase();
  names = NOT_PASSED.has(key) ? null : { header, key };
  if (headerNames.size < 1000) headerNames.set(variable, names);
  return names;
}

/** Bytes no request line can hold: controls and space. Bytes past 0x7f can (nginx takes them raw, and passes them on raw). */
const NOT_IN_TARGET = /[\x00-\x20\x7f]/;

/**
 * Percent-encodes what cannot stand in a request line (a front end may pass
 * a decoded path). Bytes past 0x7f stay as they came (one latin-1 char
 * each): PEP 3333 wants them raw in QUERY_STRING and RAW_URI, and PATH_INFO
 * decoded from them as latin-1, as for a request read over HTTP.
 */
function requestTarget(text: string): string {
  // Tested first: a replace with a function goes through the runtime even when nothing matches.
  if (!NOT_IN_TARGET.test(text)) return text;
  return text.replace(/[\x00-\x20\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function portOf(text: string | undefined): number | undefined {
  return text && /^\d{1,5}$/.test(text) ? Number(text) : undefined;
}

/**
 * The request the front end's variables describe, or why they do not. The
 * target is REQUEST_URI when given, else DOCUMENT_URI or SCRIPT_NAME +
 * PATH_INFO with QUERY_STRING (nginx's stock params send no PATH_INFO for
 * FastCGI and SCGI): the routes and the app see the real path. A header
 * sent twice is joined as node:http joins it (`; ` for Cookie, else `, `).
 */
export function gatewayRequest(pairs: readonly (readonly [string, string])[]): GatewayRequest | string {
  const values: (string | undefined)[] = new Array(USED_NAMES.length);
  let httpContentType: string | undefined;
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  for (const [name, value] of pairs) {
    if (!name.startsWith('HTTP_')) {
      const at = USED_AT.get(name);
      if (at !== undefined) values[at] = value;
      continue;
    }
    if (name === 'HTTP_CONTENT_TYPE') httpContentType = value;
    // A value that would break a head is dropped; so are names no header could have.
    const names = headerNamesOf(name);
    if (names === null || UNSAFE_VALUE.test(value)) continue;
    const { header, key } = names;
    rawHeaders.push(header, value);
    const before = headers[key];
    headers[key] = before === undefined ? value : `${before}${key === 'cookie' ? '; ' : ', '}${value}`;
  }
  const method = values[AT.REQUEST_METHOD] ?? '';
  if (!TOKEN.test(method)) return `no valid REQUEST_METHOD (${JSON.stringify(method.slice(0, 20))})`;
  const query = values[AT.QUERY_STRING] ?? '';
  let target = values[AT.REQUEST_URI] || '';
  if (target === '') {
    const path = values[AT.DOCUMENT_URI] || (values[AT.SCRIPT_NAME] ?? '') + (values[AT.PATH_INFO] ?? '') || '/';
    target = query === '' ? path : `${path}?${query}`;
  }
  if (!target.startsWith('/')) return `a request target that is not a path (${JSON.stringify(target.slice(0, 40))})`;
  const contentLength = Number(values[AT.CONTENT_LENGTH] || '0');
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) return `an invalid CONTENT_LENGTH`;
  const serverName = values[AT.SERVER_NAME];
  if (headers.host === undefined && serverName && !UNSAFE_VALUE.test(serverName)) {
    headers.host = serverName;
    rawHeaders.push('Host', serverName);
  }
  const contentType = values[AT.CONTENT_TYPE] || httpContentType;
  if (contentType && !UNSAFE_VALUE.test(contentType)) {
    headers['content-type'] = contentType;
    rawHeaders.push('Content-Type', contentType);
  }
  if (contentLength > 0) {
    headers['content-length'] = String(contentLength);
    rawHeaders.push('Content-Length', String(contentLength));
  }
  const https = /^(on|1|true)$/i.test(values[AT.HTTPS] ?? '') || /^https$/i.test(values[AT.REQUEST_SCHEME] ?? values[AT.UWSGI_SCHEME] ?? '');
  const peer = new GatewayPeer(
    values[AT.REMOTE_ADDR] || '127.0.0.1',
    portOf(values[AT.REMOTE_PORT]),
    values[AT.SERVER_ADDR] || serverName || '127.0.0.1',
    portOf(values[AT.SERVER_PORT]),
    https ? 'https' : 'http',
  );
  const req: RequestInfo = {
    method,
    url: requestTarget(target),
    httpVersion: values[AT.SERVER_PROTOCOL] === 'HTTP/1.0' ? '1.0' : '1.1',
    httpVersionMajor: 1,
    headers,
    rawHeaders,
    socket: peer as unknown as Socket,
  };
  return { req, contentLength };
}
