/**
 * A request's headers as CGI variables (RFC 3875 4.1.18), the part a WSGI
 * environ and the FastCGI/SCGI/uwsgi params share: `HTTP_*` names,
 * CONTENT_TYPE without the prefix, repeated headers joined with ", "
 * (Cookie with "; ", what cookie parsers split on), and header names holding
 * "_" dropped so that `X_Forwarded_For` cannot pose as `X-Forwarded-For`
 * (nginx and gunicorn drop them too). Content-Length and Transfer-Encoding
 * are handed back apart: the front handles the body, the back end is told
 * its buffered length.
 */
import { PROXY_HEADER, type ForwardedRequest } from './forwarded.js';
import type { RequestInfo } from './handler.js';

/** Marks for the two headers that describe the body. */
const CONTENT_LENGTH = '\x01';
const TRANSFER_ENCODING = '\x02';
const cgiNames = new Map<string, string>();

/** `x-forwarded-for` → `HTTP_X_FORWARDED_FOR`. */
function httpName(raw: string): string {
  return 'HTTP_' + raw.toUpperCase().replace(/-/g, '_');
}

/** The variable of a header: `HTTP_...`, a mark for the body's two, or '' for headers that must not pass. */
function cgiName(raw: string): string {
  let name = cgiNames.get(raw);
  if (name === undefined) {
    const lower = raw.toLowerCase();
    // HTTP/2's pseudo-headers (:path, :method...) are in the request line's variables already.
    if (raw.includes('_') || raw.charCodeAt(0) === 58 /* ':' */ || PROXY_HEADER.test(raw)) name = '';
    else if (lower === 'content-length') name = CONTENT_LENGTH;
    else if (lower === 'transfer-encoding') name = TRANSFER_ENCODING;
    else if (lower === 'content-type') name = 'CONTENT_TYPE';
    else name = httpName(raw);
    if (cgiNames.size < 4096) cgiNames.set(raw, name);
  }
  return name;
}

/** The request's Content-Length and Transfer-Encoding headers, if any. */
export interface BodyHeaders {
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

export interface HeaderVariables extends BodyHeaders {
  /** Names and values, alternating. */
  parts: string[];
}

/** Where writeHeaderVariables() puts each name and each value, in turn (a REQ frame's BlockWriter). */
export interface FieldSink {
  /** A variable's name: one of few, which the sink may keep encoded. */
  name(s: string): void;
  field(s: string): void;
}

/** The variables as an array, for the back ends that build their params from one. */
export function headerVariables(req: RequestInfo, fwd: ForwardedRequest | undefined): HeaderVariables {
  const parts: string[] = [];
  const push = (s: string) => void parts.push(s);
  const { contentLength, transferEncoding } = writeHeaderVariables(req, fwd, { name: push, field: push });
  return { parts, contentLength, transferEncoding };
}

/** Each header's variable name ('' or a mark when it passes as none), by header; reused (past the head's count, stale entries are never read). */
const names: string[] = [];

/**
 * One pass over the raw headers, each variable written to `out` as name then
 * value, in the order of their first header; a repeated name's values are
 * joined there (a search among the few names of a head, no list of parts
 * built). From a trusted proxy (`fwd` given) the X-Forwarded-* headers pass
 * and its forwarded host is HTTP_HOST; from any other peer they are dropped,
 * so a back end reading them cannot be fooled.
 */
export function writeHeaderVariables(req: RequestInfo, fwd: ForwardedRequest | undefined, out: FieldSink): BodyHeaders {
  const raw = req.rawHeaders;
  const n = raw.length >> 1;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  for (let k = 0; k < n; k++) {
    const rawName = raw[2 * k]!;
    const value = raw[2 * k + 1]!;
    let name = cgiName(rawName);
    if (name.length <= 1) {
      if (name === CONTENT_LENGTH) contentLength = value;
      else if (name === TRANSFER_ENCODING) transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      if (fwd !== undefined && PROXY_HEADER.test(rawName)) name = httpName(rawName);
    }
    names[k] = name;
  }
  let host = false;
  for (let k = 0; k < n; k++) {
    const name = names[k]!;
    if (name.length <= 1 || names.indexOf(name) < k) continue;
    let value = raw[2 * k + 1]!;
    for (let j = k + 1; j < n; j++) if (names[j] === name) value += (name === 'HTTP_COOKIE' ? '; ' : ', ') + raw[2 * j + 1]!;
    if (name === 'HTTP_HOST' && fwd?.host !== undefined) {
      value = fwd.host;
      host = true;
    }
    out.name(name);
    out.field(value);
  }
  if (fwd?.host !== undefined && !host) {
    out.name('HTTP_HOST');
    out.field(fwd.host);
  }
  return { contentLength, transferEncoding };
}
