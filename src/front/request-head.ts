/**
 * The fast path's reader of an HTTP/1.1 or 1.0 request head (see
 * fast-path.ts). It accepts only heads it reads exactly as llhttp,
 * node:http's parser, would, so that no request can be read two ways: a
 * method from a short list or one llhttp does not know (below), an
 * origin-form target, HTTP/1.1 or 1.0, token header names, values without
 * control characters, no folded line, a Host (HTTP/1.1) and no repeated Host,
 * framing or Connection field (others are joined as node:http joins them),
 * a body as one plain Content-Length or (HTTP/1.1) `Transfer-Encoding:
 * chunked` (de-chunked by llhttp itself, chunked-body.ts), `Expect:
 * 100-continue` (HTTP/1.1), no Upgrade or Proxy-Connection, Connection
 * keep-alive or close. Anything else is null: node:http reads it.
 * test/request-head-fuzz.test.ts checks it against llhttp.
 *
 * Two things llhttp refuses (400) are requests all the same, and nginx passes
 * them to the app: a method outside llhttp's table (RFC 9110 makes any token
 * a method; gatehouse takes nginx's upper-case letters, `_` and `-`: a WSGI
 * app answers 405 itself), and raw bytes of 0x80 and above in the target
 * (UTF-8 sent unencoded; the app sees them as PEP 3333's latin-1, as if
 * percent-encoded). The reader here takes both; a head it leaves to node:http
 * is given to llhttp with a stand-in line (stand-in-line.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHead } from '../http/handler.js';
import { LLHTTP_METHODS } from './stand-in-line.js';
import { TCHAR_CLASS } from '../http/token.js';
import { targetTooLong } from './uri-too-long.js';

/** A body follows the head (a Content-Length over 0, or chunked). */
export function hasBody(head: ParsedHead): boolean {
  return head.bodyLength > 0 || head.chunked;
}

export interface ParsedHead extends RequestHead {
  method: string;
  url: string;
  /** Names as sent, then values, as node:http's rawHeaders. */
  rawHeaders: string[];
  /** The body's length: Content-Length, or 0 (chunked: see `chunked`). */
  bodyLength: number;
  /** The body is chunked (Transfer-Encoding: chunked). */
  chunked: boolean;
  /** Expect: 100-continue. */
  expectsContinue: boolean;
  /** The connection ends after it: Connection: close, or HTTP/1.0 without Connection: keep-alive. */
  close: boolean;
  /** Its size in bytes, with the blank line that ends it. */
  size: number;
  /** The version read (an HTTP/1.0 client gets no chunked answer, http1-response.ts). */
  httpVersion: '1.1' | '1.0';
}

/**
 * The patterns are sticky and only tested (the positions come from
 * lastIndex): exec() would make a match array and a string per group for
 * every line of every request.
 */
const REQUEST_LINE = /(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) \/[\x21-\x7e\x80-\xff]* HTTP\/1\.[01](?:\r\n|$)/y;
/** The same with any method nginx takes (upper-case letters, `_` and `-`). */
const OTHER_LINE = /[A-Z_-]+ \/[\x21-\x7e\x80-\xff]* HTTP\/1\.[01](?:\r\n|$)/y;
/** A header line: a token, a colon, and a value of visible ASCII, spaces, tabs and obs-text (no control character), to its CRLF or the head's end. */
const FIELD_NAME = new RegExp(`[${TCHAR_CLASS}]+:`, 'y');
const FIELD_VALUE = /[\t\x20-\x7e\x80-\xff]*(?:\r\n|$)/y;
/** Headers that mean a protocol switch; and Proxy-Connection, which llhttp reads as Connection (close, upgrade). */
const NOT_HERE = new Set(['upgrade', 'http2-settings', 'proxy-connection']);
/**
 * Headers taken only without a tab in their value: llhttp allows only spaces
 * around a Content-Length, a Connection or a Transfer-Encoding token (after a
 * tab, the length is invalid, the token unknown); Expect likewise, to be
 * safe. The last two only in HTTP/1.1 (HTTP/1.0 with a Transfer-Encoding is
 * a framing fault; node:http ignores Expect there).
 */
const STRICT = new Set(['content-length', 'connection', 'transfer-encoding', 'expect']);
/** Fields node:http keeps the first of when they are repeated (IncomingMessage's matchKnownFields). */
const FIRST_WINS = new Set([
  'content-type', 'user-agent', 'referer', 'authorization', 'proxy-authorization', 'if-modified-since', 'if-unmodified-since',
  'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires',
]);
/** Content-Length as digits only (no sign, no list); more than 15 of them is no real body. */
const LENGTH = /^\d{1,15}$/;
/** More header lines than this: not an ordinary request. */
const MAX_FIELDS = 100;
/** The head's names and values as read, copied out at its end: an array grown by push would make room for 17 of them. */
const read: string[] = [];

const END_OF_HEAD = Buffer.from('\r\n\r\n');

/**
 * What the fast path does with the head at the start of a connection's
 * unread bytes (line ends before it skipped: afterLineEnds): reads it, waits
 * for the rest of it ('waiting'), refuses it at once ('refused': it can never
 * be read; 'too-long': its target alone reaches max_header_size, 414,
 * uri-too-long.ts), or leaves it to node:http ('llhttp': over
 * max_header_size, or not one parseHead takes).
 */
export function readHead(pending: Buffer, maxHeaderSize: number, scheme: 'http' | 'https'): ParsedHead | 'waiting' | 'refused' | 'too-long' | 'llhttp' {
  const end = pending.indexOf(END_OF_HEAD);
  if (end < 0 && pending.length <= maxHeaderSize) return unreadableHead(pending) ? 'refused' : 'waiting';
  if (end < 0 || end + 4 > maxHeaderSize) {
    // The request line comes first, as llhttp and nginx read it; then, whatever its size, the head is
    // refused as it would be if its first line came alone.
    if (targetTooLong(pending, maxHeaderSize)) return 'too-long';
    return unreadableHead(end < 0 ? pending : pending.subarray(0, end + 4)) ? 'refused' : 'llhttp';
  }
  return parseHead(pending.toString('latin1', 0, end), scheme) ?? 'llhttp';
}

/** `bytes` after the CRs and LFs it starts with, which llhttp skips before a request (RFC 9112 §2.2); null if that is all. */
export function afterLineEnds(bytes: Buffer): Buffer | null {
  let i = 0;
  while (bytes[i] === 13 || bytes[i] === 10) i++;
  return i === 0 ? bytes : i === bytes.length ? null : bytes.subarray(i);
}

/** The head (without its blank line) if the fast path may take it; null: node:http's. */
export function parseHead(text: string, scheme: 'http' | 'https'): ParsedHead | null {
  const space = text.indexOf(' ');
  let method: string | null;
  let lineEnd: number;
  REQUEST_LINE.lastIndex = 0;
  if (REQUEST_LINE.test(text)) {
    method = methodOf(text, space);
    lineEnd = REQUEST_LINE.lastIndex;
  } else {
    OTHER_LINE.lastIndex = 0;
    if (!OTHER_LINE.test(text)) return null;
    method = otherMethod(text.slice(0, space));
    if (method === null) return null;
    lineEnd = OTHER_LINE.lastIndex;
  }
  const urlEnd = text.indexOf(' ', space + 1);
  const url = text.slice(space + 1, urlEnd);
  // The version's last digit, after " HTTP/1.".
  const http10 = text.charCodeAt(urlEnd + 8) === 48;
  // A plain object, as node:http's: a name such as `constructor` or `__proto__` then looks repeated, and goes to node:http.
  const headers: IncomingHttpHeaders = {};
  let count = 0;
  for (let start = lineEnd, fields = 1; start < text.length; fields++) {
    FIELD_NAME.lastIndex = start;
    if (fields > MAX_FIELDS || !FIELD_NAME.test(text)) return null;
    const colon = FIELD_NAME.lastIndex - 1;
    FIELD_VALUE.lastIndex = colon + 1;
    if (!FIELD_VALUE.test(text)) return null;
    const next = FIELD_VALUE.lastIndex;
    // The line ends at its CRLF, or at the head's end (a value holds no LF).
    const eol = text.charCodeAt(next - 1) === 10 ? next - 2 : next;
    const known = knownName(text, start, colon);
    const name = known >= 0 ? knownNames[known]! : text.slice(start, colon);
    const key = known >= 0 ? knownNames[known + 1]! : learnName(name);
    if (NOT_HERE.has(key) || (STRICT.has(key) && hasTab(text, colon + 1, eol))) return null;
    const value = trimSpaces(text, colon + 1, eol);
    const before = headers[key];
    if (before === undefined) headers[key] = key === 'set-cookie' ? [value] : value;
    else if (!addRepeated(headers, key, before, value)) return null;
    read[count++] = name;
    read[count++] = value;
    // A line ending the head's text is the last (the head's text does not end with CRLF).
    start = eol === next ? text.length : next;
  }
  const connection = headers.connection?.toLowerCase();
  // node:http requires a Host of HTTP/1.1 only.
  if ((headers.host === undefined && !http10) || (connection !== undefined && connection !== 'keep-alive' && connection !== 'close')) return null;
  const length = headers['content-length'];
  if (length !== undefined && !LENGTH.test(length)) return null;
  const te = headers['transfer-encoding'];
  const expect = headers.expect;
  // Transfer-Coding names are case-insensitive (RFC 9112 §7): `Chunked` is chunked, as llhttp reads it.
  if (te !== undefined && (te.toLowerCase() !== 'chunked' || length !== undefined || http10)) return null;
  if (expect !== undefined && (expect.toLowerCase() !== '100-continue' || http10)) return null;
  const rawHeaders = read.slice(0, count);
  for (let i = 0; i < count; i++) read[i] = '';
  const close = http10 ? connection !== 'keep-alive' : connection === 'close';
  return { method, url, size: text.length + 4, httpVersion: http10 ? '1.0' : '1.1', headers, rawHeaders, bodyLength: length === undefined ? 0 : Number(length), chunked: te !== undefined, expectsContinue: expect !== undefined, close, scheme };
}

/**
 * A repeated header into `headers` as node:http's IncomingMessage puts it:
 * Set-Cookie a list, Cookie joined with "; ", the fields of FIRST_WINS kept
 * as first sent, any other joined with ", ". False when the request is
 * node:http's instead: a repeated Host, framing or Connection field, or a
 * name the object already has from its prototype (`constructor`).
 */
function addRepeated(headers: IncomingHttpHeaders, key: string, before: string | string[], value: string): boolean {
  if (!Object.hasOwn(headers, key) || STRICT.has(key) || key === 'host') return false;
  if (typeof before !== 'string') before.push(value);
  else if (!FIRST_WINS.has(key)) headers[key] = before + (key === 'cookie' ? '; ' : ', ') + value;
  return true;
}

/** The method of a request line REQUEST_LINE took, as a constant string (not a new one per request). */
function methodOf(text: string, length: number): string {
  switch (text.charCodeAt(0)) {
    case 71: return 'GET';
    case 72: return 'HEAD';
    case 68: return 'DELETE';
    case 79: return 'OPTIONS';
    default: return length === 3 ? 'PUT' : length === 4 ? 'POST' : 'PATCH';
  }
}

/** Methods llhttp does not know, as read before (a copy each, not a slice of a head), up to this many. */
const MAX_OTHER = 64;
const otherMethods = new Map<string, string>();

/**
 * A method OTHER_LINE took, as one string for each (not a slice of a head);
 * null for one of llhttp's (CONNECT, PROPFIND, PURGE...), which node:http
 * reads as it always has.
 */
function otherMethod(method: string): string | null {
  if (LLHTTP_METHODS.has(method)) return null;
  const known = otherMethods.get(method);
  if (known !== undefined) return known;
  const own = Buffer.from(method, 'latin1').toString('latin1');
  if (otherMethods.size < MAX_OTHER) otherMethods.set(own, own);
  return own;
}

/**
 * Header names read before, found in the head's text in place: no slice of
 * it and no hashing of one (a Map lookup per header line was a third of
 * reading a browser's head). Indexed by length and first character; each
 * slot holds a few names as sent and their lower case, in pairs, in
 * knownNames, up to MAX_NAMES names in all. Any other name is lower-cased
 * each time it comes.
 */
const SHAPE_MAX_LENGTH = 64;
const SHAPE_NAMES = 4;
const MAX_NAMES = 4096;
const shapes: Array<number[] | undefined> = new Array(SHAPE_MAX_LENGTH * 128).fill(undefined);
const knownNames: string[] = [];

function shapeOf(length: number, first: number): number {
  return length < SHAPE_MAX_LENGTH && first < 128 ? length * 128 + first : -1;
}

/** Where the name text[start, end) is in knownNames (its lower case follows it), or -1. */
function knownName(text: string, start: number, end: number): number {
  const shape = shapeOf(end - start, text.charCodeAt(start));
  const slot = shape < 0 ? undefined : shapes[shape];
  if (slot !== undefined) for (let i = 0; i < slot.length; i++) if (text.startsWith(knownNames[slot[i]!]!, start)) return slot[i]!;
  return -1;
}

/** The lower case of a name not found in place, which is kept for the next time if there is room. */
function learnName(name: string): string {
  const lower = name.toLowerCase();
  const shape = shapeOf(name.length, name.charCodeAt(0));
  const slot = shape < 0 || knownNames.length >= 2 * MAX_NAMES ? undefined : (shapes[shape] ??= []);
  if (slot === undefined || slot.length >= SHAPE_NAMES) return lower;
  // Copies of their own: a slice of the head would keep the whole head's text alive.
  const own = Buffer.from(name, 'latin1').toString('latin1');
  slot.push(knownNames.length);
  knownNames.push(own, lower === name ? own : lower);
  return lower;
}

function hasTab(text: string, from: number, to: number): boolean {
  const tab = text.indexOf('\t', from);
  return tab >= 0 && tab < to;
}

/** `text` from `a` to `b` without the spaces and tabs around it (String#trim would take obs-text's NBSP too). */
function trimSpaces(text: string, a: number, b: number): string {
  while (a < b && (text.charCodeAt(a) === 32 || text.charCodeAt(a) === 9)) a++;
  while (b > a && (text.charCodeAt(b - 1) === 32 || text.charCodeAt(b - 1) === 9)) b--;
  return text.slice(a, b);
}

/**
 * A head that can never be read, known before its end (CRLFCRLF) arrives: a
 * first line that is no HTTP/1 request line (HTTP/0.9's `GET /`, say), a
 * bare LF line end or a bare CR. llhttp refuses these (or, for HTTP/0.9,
 * reads a request gatehouse refuses): the fast path answers 400 at once
 * rather than waiting for header_timeout.
 */
function unreadableHead(pending: Buffer): boolean {
  // `pending` starts with the request line: the line ends before it are skipped (afterLineEnds).
  for (let cr = pending.indexOf(13); cr >= 0 && cr + 1 < pending.length; cr = pending.indexOf(13, cr + 1)) if (pending[cr + 1] !== 10) return true;
  let lf = pending.indexOf(10);
  if (lf < 0) return false;
  if (pending[lf - 1] !== 13 || !REQUEST_LINE_SHAPE.test(pending.toString('latin1', 0, lf - 1))) return true;
  while ((lf = pending.indexOf(10, lf + 1)) >= 0) if (pending[lf - 1] !== 13) return true;
  return false;
}

/**
 * Method, target and a version: what llhttp reads as a request line (the
 * rest it refuses, or takes as HTTP/0.9 when the version is missing). llhttp
 * takes more than one space between the parts (not a tab, not a trailing
 * one), and the versions 0.9, 1.0, 1.1 and 2.0 (the front refuses 0.9 and
 * 2.0 once it has the head, as framing faults).
 */
const REQUEST_LINE_SHAPE = new RegExp(`^[${TCHAR_CLASS}]+ +[^ ]+ +HTTP/(?:0\\.9|1\\.[01]|2\\.0)$`);
