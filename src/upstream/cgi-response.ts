/**
 * The head of a back end's response, CGI style (RFC 3875 section 6) as
 * nginx reads FastCGI, SCGI and uwsgi answers: header lines up to an empty
 * line (CRLF or LF), the status from `Status:` ("404" or "404 Not Found"),
 * else 302 when there is a `Location:`, else 200. An HTTP status line first
 * (`HTTP/1.1 200 OK`, what a uWSGI app sends on --socket, or an NPH script)
 * gives the status instead. Hop-by-hop headers are dropped: the front frames
 * the body for its own client.
 */
import { STATUS_CODES } from 'node:http';
import { TOKEN } from '../http/token.js';
import { isAccelName } from '../http/accel-headers.js';

export interface CgiHead {
  status: number;
  reason: string;
  /** Names and values, alternating. */
  headers: string[];
  /** The body's length when the back end declared it. */
  contentLength: number | undefined;
  /** The head has X-Accel-* headers (src/http/accel-headers.ts): the relay reads them and takes them off. */
  accel: boolean;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'status']);
/** uWSGI writes the request's SERVER_PROTOCOL there: `HTTP/2.0 200 OK` for an HTTP/2 client. */
const STATUS_LINE = /^HTTP\/\d(?:\.\d)? (\d{3})(?: (.*))?$/;

/**
 * Collects bytes until the head is complete. `push` returns null while it is
 * not, the head and the body bytes that came with it once it is, or an
 * error message (a malformed head, or one past `limit` bytes).
 */
export class CgiHeadReader {
  /** Bytes of a head not complete yet. */
  private pending: Buffer | null = null;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): { head: CgiHead; rest: Buffer } | string | null {
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    const end = headEnd(data);
    if (end === null) {
      this.pending = data;
      return data.length > this.limit ? `a response head over ${this.limit} bytes` : null;
    }
    this.pending = null;
    const head = parseHead(data.toString('latin1', 0, end.at));
    return typeof head === 'string' ? head : { head, rest: data.subarray(end.at + end.size) };
  }
}

/** Where the empty line is: `\r\n\r\n`, `\n\n` or `\n\r\n`; or an empty head. */
function headEnd(data: Buffer): { at: number; size: number } | null {
  if (data[0] === 0x0a) return { at: 0, size: 1 };
  if (data[0] === 0x0d && data[1] === 0x0a) return { at: 0, size: 2 };
  for (let i = data.indexOf(0x0a); i >= 0 && i + 1 < data.length; i = data.indexOf(0x0a, i + 1)) {
    if (data[i + 1] === 0x0a) return { at: i, size: 2 };
    if (data[i + 1] === 0x0d && data[i + 2] === 0x0a) return { at: i, size: 3 };
  }
  return null;
}

/** Valid header names seen, and their lower case (a back end sends the same few names again and again). */
const names = new Map<string, string>();

/** `name` in lower case; null when it is not a token. */
function lowerName(name: string): string | null {
  let lower = names.get(name);
  if (lower === undefined) {
    if (!TOKEN.test(name)) return null;
    lower = name.toLowerCase();
    if (names.size < 1024) names.set(name, lower);
  }
  return lower;
}

/** A NUL, or a CR that does not end a line: only then are the values looked at one by one. */
const SUSPECT = /\0|\r(?!\n|$)/;

/** Where the line from `from` ends: its LF, or the end of the text. */
function lineEnd(text: string, from: number): number {
  const nl = text.indexOf('\n', from);
  return nl < 0 ? text.length : nl;
}

/** The line from `from` to `nl`, without its CR. */
const lineAt = (text: string, from: number, nl: number): string => text.slice(from, nl > from && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);

export function parseHead(text: string): CgiHead | string {
  let status: number | undefined;
  let reason = '';
  let at = 0;
  if (text.startsWith('HTTP/')) {
    const nl = lineEnd(text, 0);
    const first = STATUS_LINE.exec(lineAt(text, 0, nl));
    if (first !== null) {
      status = Number(first[1]);
      reason = first[2] ?? '';
      at = nl + 1;
    }
  }
  const suspect = SUSPECT.test(text);
  const headers: string[] = [];
  let statusHeader: string | undefined;
  let location = false;
  let contentLength: number | undefined;
  let accel = false;
  while (at < text.length) {
    const nl = lineEnd(text, at);
    const line = lineAt(text, at, nl);
    at = nl + 1;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    const lower = lowerName(name);
    if (lower === null) return `an invalid header line ${JSON.stringify(line.slice(0, 80))}`;
    const value = line.slice(colon + 1).trim();
    if (suspect && /[\0\r\n]/.test(value)) return `an invalid value in the ${name} header`;
    if (lower === 'status') statusHeader = value;
    else if (lower === 'location') location = true;
    else if (lower === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value))) return `an invalid Content-Length ${JSON.stringify(value)}`;
      contentLength = Number(value);
    } else if (isAccelName(lower)) accel = true;
    if (!HOP_BY_HOP.has(lower)) headers.push(name, value);
  }
  if (status === undefined && statusHeader !== undefined) {
    const m = /^(\d{3})(?:\s+(.*))?$/.exec(statusHeader);
    if (m === null) return `an invalid status ${JSON.stringify(statusHeader)}`;
    status = Number(m[1]);
    reason = m[2] ?? '';
  }
  status ??= location ? 302 : 200;
  if (status < 200 || status > 599) return `an invalid status ${status}`;
  return { status, reason: reason || STATUS_CODES[status] || '', headers, contentLength, accel };
}
