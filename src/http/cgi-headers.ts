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

export interface HeaderVariables {
  /** Names and values, alternating. */
  parts: string[];
  /** The request's Content-Length and Transfer-Encoding headers, if any. */
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

/**
 * One pass over the raw headers. From a trusted proxy (`fwd` given) the
 * X-Forwarded-* headers pass and its forwarded host is HTTP_HOST; from any
 * other peer they are dropped, so a back end reading them cannot be fooled.
 */
export function headerVariables(req: RequestInfo, fwd: ForwardedRequest | undefined): HeaderVariables {
  const raw = req.rawHeaders;
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
  return { parts, contentLength, transferEncoding };
}

function indexOfName(parts: readonly string[], name: string): number {
  for (let i = 0; i < parts.length; i += 2) if (parts[i] === name) return i;
  return -1;
}
