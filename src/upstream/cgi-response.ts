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

export interface CgiHead {
  status: number;
  reason: string;
  /** Names and values, alternating. */
  headers: string[];
  /** The body's length when the back end declared it. */
  contentLength: number | undefined;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'status']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** uWSGI writes the request's SERVER_PROTOCOL there: `HTTP/2.0 200 OK` for an HTTP/2 client. */
const STATUS_LINE = /^HTTP\/\d(?:\.\d)? (\d{3})(?: (.*))?$/;

/**
 * Collects bytes until the head is complete. `push` returns null while it is
 * not, the head and the body bytes that came with it once it is, or an
 * error message (a malformed head, or one past `limit` bytes).
 */
export class CgiHeadReader {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): { head: CgiHead; rest: Buffer } | string | null {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const data = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.length);
    this.chunks = [data];
    const end = headEnd(data);
    if (end === null) return this.length > this.limit ? `a response head over ${this.limit} bytes` : null;
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

export function parseHead(text: string): CgiHead | string {
  const lines = text === '' ? [] : text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let status: number | undefined;
  let reason = '';
  const first = lines[0] !== undefined ? STATUS_LINE.exec(lines[0]) : null;
  if (first !== null) {
    lines.shift();
    status = Number(first[1]);
    reason = first[2] ?? '';
  }
  const headers: string[] = [];
  let statusHeader: string | undefined;
  let location = false;
  let contentLength: number | undefined;
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) return `an invalid header line ${JSON.stringify(line.slice(0, 80))}`;
    const value = line.slice(colon + 1).trim();
    if (/[\0\r\n]/.test(value)) return `an invalid value in the ${name} header`;
    const lower = name.toLowerCase();
    if (lower === 'status') statusHeader = value;
    else if (lower === 'location') location = true;
    else if (lower === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value))) return `an invalid Content-Length ${JSON.stringify(value)}`;
      contentLength = Number(value);
    }
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
  return { status, reason: reason || STATUS_CODES[status] || '', headers, contentLength };
}
