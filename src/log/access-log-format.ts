/**
 * `access_log_format`: what one access log line holds.
 *
 * - `combined` (default): the Combined Log Format nginx and Apache write,
 *   `host - user [time] "request line" status bytes "referer" "user-agent"`,
 *   the user being the HTTP Basic one, as gunicorn's default format has it.
 * - `json`: one JSON object per line with these keys, always all of them:
 *   `time` (ISO-8601, UTC), `remote_addr`, `method`, `path` (the request
 *   target as sent, query included), `protocol`, `status`, `bytes` (body
 *   bytes sent), `duration_ms`, `referer`, `user_agent`, `host` (the last
 *   three null when the request had none). What the client sent is written
 *   as its UTF-8 text, or with bytes past 0x7e as `\xHH` when it is not UTF-8.
 * - a format of gunicorn's atoms, each written `%(NAME)s`, `%%` for a %:
 *   h remote address · l `-` · u Basic auth user · t `[time]` · r request line ·
 *   m method · U path (as sent, no query) · q query · H protocol · s status ·
 *   B body bytes · b body bytes or `-` · f referer · a user agent ·
 *   T whole seconds · D microseconds · M milliseconds · L seconds with
 *   decimals · p `<pid>` · {Name}i request header · {Name}o response header.
 *   A missing value is `-`. In values a client sends, `"` and `\` get a
 *   backslash and control bytes and bytes past 0x7e become `\xHH` (as
 *   nginx), so no client can forge a line or break the quoting. gunicorn's
 *   {NAME}e (the WSGI environ) is not known to the front and is refused, as
 *   is any unknown atom.
 *
 * The remote address is the forwarded client's when a trusted proxy sent the
 * request (see forwarded.ts), as with nginx's real_ip.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';

/** One finished request, as the access log sees it. */
/** What the log reads of a request (node:http's IncomingMessage is one). */
export interface LoggedRequest {
  method?: string | undefined;
  url?: string | undefined;
  httpVersion: string;
  headers: IncomingHttpHeaders;
}

export interface AccessEntry {
  req: LoggedRequest;
  /** The client's address (a trusted proxy's forwarded one), '-' when unknown. */
  client: string;
  /** Absent for answers written without a response object. */
  res: LoggedResponse | undefined;
  status: number;
  bytes: number;
  /** How long the request took, in milliseconds (0 when its start is unknown). */
  durationMs: number;
  /** When the line is written (Date.now()). */
  now: number;
}

/** What the log reads of a response: node:http's, or the fast path's stand-in. */
export interface LoggedResponse {
  getHeader(name: string): number | string | string[] | undefined;
}

type Render = (e: AccessEntry) => string;

export const COMBINED = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let cachedSecond = 0;
let cachedStamp = '';

/** `21/Nov/2026:10:49:00 +0000`, recomputed at most once a second. */
function clfTime(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    const d = new Date(now);
    const off = -d.getTimezoneOffset();
    const abs = Math.abs(off);
    const p = (n: number) => String(n).padStart(2, '0');
    cachedStamp =
      `${p(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ` +
      `${off >= 0 ? '+' : '-'}${p(Math.floor(abs / 60))}${p(abs % 60)}`;
  }
  return cachedStamp;
}

/**
 * A value as it may appear in a line: `-` when missing, quotes and
 * backslashes escaped, control bytes and bytes past 0x7e as `\xHH` (as
 * nginx: values are bytes, one latin-1 char each, which written as UTF-8
 * would come out as other characters).
 */
function safe(value: string | undefined): string {
  if (!value) return '-';
  return value.replace(/["\\]/g, (c) => '\\' + c).replace(/[\x00-\x1f\x7f-\xff]/g, hexByte);
}

const hexByte = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/**
 * A value the client sent, for a JSON line, which must be UTF-8 text: its
 * bytes read as UTF-8 when they are, else those past 0x7e as `\xHH` as in
 * the other formats (JSON.stringify escapes the control bytes itself).
 */
function jsonText(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (!/[\x80-\xff]/.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : value.replace(/[\x7f-\xff]/g, hexByte);
}

/** The user name of an `Authorization: Basic` header (what Apache's and gunicorn's %u show). */
function basicUser(header: string | undefined): string | undefined {
  const m = /^Basic\s+(\S+)/i.exec(header ?? '');
  if (!m) return undefined;
  // Its bytes, one char each, as the header's own value is (safe() writes those past 0x7e as \xHH).
  const decoded = Buffer.from(m[1]!, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(0, colon);
}

function requestHeader(req: LoggedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * A response header. Node only keeps the headers given by setHeader();
 * those passed to writeHead() as a list (the WSGI responses) are read back
 * from the head it wrote.
 */
function responseHeader(res: LoggedResponse | undefined, name: string, inHead: RegExp): string | undefined {
  if (res === undefined) return undefined;
  const v = res.getHeader(name);
  if (v !== undefined) return Array.isArray(v) ? v.join(', ') : String(v);
  const head = (res as unknown as { _header?: unknown })._header;
  if (typeof head !== 'string') return undefined;
  const values = [...head.matchAll(inHead)].map((m) => m[1]!);
  return values.length > 0 ? values.join(', ') : undefined;
}

function target(req: LoggedRequest): { path: string; query: string } {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

const ATOMS: Record<string, Render> = {
  h: (e) => safe(e.client),
  l: () => '-',
  u: (e) => safe(basicUser(e.req.headers.authorization)),
  t: (e) => `[${clfTime(e.now)}]`,
  // A request Node's parser refused has no method: its line is "-", as nginx logs it.
  r: (e) => (e.req.method ? safe(`${e.req.method} ${e.req.url} HTTP/${e.req.httpVersion}`) : '-'),
  m: (e) => safe(e.req.method ?? undefined),
  U: (e) => safe(target(e.req).path),
  q: (e) => safe(target(e.req).query),
  H: (e) => (e.req.httpVersion ? `HTTP/${e.req.httpVersion}` : '-'),
  s: (e) => String(e.status),
  B: (e) => String(e.bytes),
  b: (e) => (e.bytes > 0 ? String(e.bytes) : '-'),
  f: (e) => safe(e.req.headers.referer),
  a: (e) => safe(e.req.headers['user-agent']),
  T: (e) => String(Math.floor(e.durationMs / 1000)),
  D: (e) => String(Math.round(e.durationMs * 1000)),
  M: (e) => String(Math.floor(e.durationMs)),
  L: (e) => (e.durationMs / 1000).toFixed(6),
  p: () => `<${process.pid}>`,
};

/** The request headers the atoms above read. */
const ATOM_HEADERS: Record<string, string> = { u: 'authorization', f: 'referer', a: 'user-agent' };

const ATOM = /%\(([^)]*)\)(.?)|%(.?)/g;

/** A compiled format: its line renderer and the request headers (lower case) it reads; `problem` when it is not valid. */
export interface CompiledFormat {
  render?: Render;
  headers?: readonly string[];
  problem?: string;
}

/** Compiles a format of gunicorn's atoms; `problem` names what is wrong with it. */
export function compileFormat(format: string): CompiledFormat {
  const parts: Array<string | Render> = [];
  const reads = new Set<string>();
  let last = 0;
  for (const m of format.matchAll(ATOM)) {
    parts.push(format.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[3] === '%') {
      parts.push('%');
      continue;
    }
    if (m[1] === undefined) return { problem: `a lone % at ${JSON.stringify(format.slice(m.index, m.index + 8))}: write atoms as %(NAME)s and %% for a %` };
    const name = m[1];
    if (m[2] !== 's') return { problem: `%(${name}) must end with s: %(${name})s` };
    const header = /^\{([A-Za-z0-9!#$%&'*+.^_`|~-]+)\}([io])$/.exec(name);
    if (header) {
      const lower = header[1]!.toLowerCase();
      if (header[2] === 'i') {
        reads.add(lower);
        parts.push((e) => safe(requestHeader(e.req, lower)));
      } else {
        const inHead = new RegExp(`\\r\\n${lower.replace(/[.*+^$|]/g, '\\$&')}:[ \\t]*([^\\r]*)`, 'gi');
        parts.push((e) => safe(responseHeader(e.res, lower, inHead)));
      }
      continue;
    }
    const atom = ATOMS[name];
    if (atom === undefined) {
      const why = /^\{.*\}e$/.test(name) ? ' (environ variables are not known to the front)' : '';
      return { problem: `unknown atom %(${name})s${why}; known: ${Object.keys(ATOMS).join(' ')} {Header}i {Header}o` };
    }
    parts.push(atom);
    const read = ATOM_HEADERS[name];
    if (read !== undefined) reads.add(read);
  }
  parts.push(format.slice(last));
  const pieces = parts.filter((p) => p !== '');
  return { render: (e) => pieces.map((p) => (typeof p === 'string' ? p : p(e))).join(''), headers: [...reads] };
}

function json(e: AccessEntry): string {
  return JSON.stringify({
    time: new Date(e.now).toISOString(),
    remote_addr: e.client,
    method: e.req.method ?? null,
    path: e.req.method ? jsonText(e.req.url) : null,
    protocol: e.req.httpVersion ? `HTTP/${e.req.httpVersion}` : null,
    status: e.status,
    bytes: e.bytes,
    duration_ms: Math.round(e.durationMs * 1000) / 1000,
    referer: jsonText(e.req.headers.referer),
    user_agent: jsonText(e.req.headers['user-agent']),
    host: jsonText(e.req.headers.host),
  });
}

/** The line renderer for an access_log_format value (combined, json or atoms); `problem` when it is not valid. */
export function accessLogFormat(format: string): CompiledFormat {
  if (format === 'json') return { render: json, headers: ['referer', 'user-agent', 'host'] };
  return compileFormat(format === 'combined' ? COMBINED : format);
}
