/**
 * The fast path's reader of an HTTP/1.1 request head (see fast-path.ts). It
 * accepts only heads it reads exactly as llhttp, node:http's parser, would,
 * so that no request can be read two ways: a method from a short list, an
 * origin-form target, HTTP/1.1, token header names, values without control
 * characters, no folded line, no repeated header, a Host, a body only as one
 * plain Content-Length, no Transfer-Encoding, Expect, Upgrade or
 * Proxy-Connection, Connection keep-alive or close. Anything else is null:
 * node:http reads it. test/request-head-fuzz.test.ts checks it against llhttp.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHead } from '../http/handler.js';

export interface ParsedHead extends RequestHead {
  method: string;
  url: string;
  /** Names as sent, then values, as node:http's rawHeaders. */
  rawHeaders: string[];
  /** The body's length: Content-Length, or 0. */
  bodyLength: number;
  /** Connection: close. */
  close: boolean;
}

const REQUEST_LINE = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
/** A header line: a token, a colon, and a value of visible ASCII, spaces, tabs and obs-text (no control character). */
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t\x20-\x7e\x80-\xff]*)$/;
/**
 * Headers that mean a chunked body, a protocol switch or an interim answer;
 * and Proxy-Connection, which llhttp reads as Connection (close, upgrade).
 */
const NOT_HERE = new Set(['transfer-encoding', 'expect', 'upgrade', 'http2-settings', 'proxy-connection']);
/** Content-Length as digits only (no sign, no list); more than 15 of them is no real body. */
const LENGTH = /^\d{1,15}$/;
/** More header lines than this: not an ordinary request. */
const MAX_FIELDS = 100;

/** The head (without its blank line) if the fast path may take it; null: node:http's. */
export function parseHead(text: string, scheme: 'http' | 'https'): ParsedHead | null {
  let eol = text.indexOf('\r\n');
  const m = REQUEST_LINE.exec(eol < 0 ? text : text.slice(0, eol));
  if (m === null) return null;
  // A plain object: a name such as `constructor` or `__proto__` then looks repeated, and goes to node:http.
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  for (let fields = 1; eol >= 0; fields++) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const f = FIELD.exec(eol < 0 ? text.slice(start) : text.slice(start, eol));
    if (f === null || fields > MAX_FIELDS) return null;
    const name = f[1]!;
    const key = name.toLowerCase();
    if (headers[key] !== undefined || NOT_HERE.has(key)) return null;
    // llhttp (9.3) allows only spaces after a Content-Length or a Connection
    // token: after a tab, the length is invalid (400), the token unknown
    // (`close\t` is not close).
    if ((key === 'content-length' || key === 'connection') && f[2]!.includes('\t')) return null;
    const value = trimSpaces(f[2]!);
    headers[key] = value;
    rawHeaders.push(name, value);
  }
  const connection = headers.connection?.toLowerCase();
  if (headers.host === undefined || (connection !== undefined && connection !== 'keep-alive' && connection !== 'close')) return null;
  const length = headers['content-length'];
  if (length !== undefined && !LENGTH.test(length)) return null;
  return { method: m[1]!, url: m[2]!, httpVersion: '1.1', headers, rawHeaders, bodyLength: length === undefined ? 0 : Number(length), close: connection === 'close', scheme };
}

/** Without the spaces and tabs around a field value (String#trim would take obs-text's NBSP too). */
function trimSpaces(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * A head that can never be read, known before its end (CRLFCRLF) arrives: a
 * first line that is no HTTP/1 request line (HTTP/0.9's `GET /`, say), a
 * bare LF line end or a bare CR. llhttp refuses these (or, for HTTP/0.9,
 * reads a request gatehouse refuses): the fast path answers 400 at once
 * rather than waiting for header_timeout.
 */
export function unreadableHead(pending: Buffer): boolean {
  // Empty lines before a request line are allowed (RFC 9112 §2.2; some clients send one after a body).
  let start = 0;
  while (pending[start] === 13 && pending[start + 1] === 10) start += 2;
  for (let cr = pending.indexOf(13, start); cr >= 0 && cr + 1 < pending.length; cr = pending.indexOf(13, cr + 1)) if (pending[cr + 1] !== 10) return true;
  let lf = pending.indexOf(10, start);
  if (lf < 0) return false;
  if (lf === start || pending[lf - 1] !== 13 || !REQUEST_LINE_SHAPE.test(pending.toString('latin1', start, lf - 1))) return true;
  while ((lf = pending.indexOf(10, lf + 1)) >= 0) if (pending[lf - 1] !== 13) return true;
  return false;
}

/** Method, target and an HTTP/1 version: what llhttp reads as a request line (the rest it refuses, or takes as HTTP/0.9). */
const REQUEST_LINE_SHAPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ ]+ HTTP\/1\.[0-9]$/;
