/**
 * fast-check arbitraries for HTTP/1 request heads: mostly ordinary ones (so
 * the front's fast path is exercised), the rest almost valid or hostile —
 * bare LF and bare CR line ends, obs-fold, duplicate and conflicting
 * Content-Length, Transfer-Encoding variants, Connection and
 * Proxy-Connection variants, control bytes and NUL, a space before the
 * colon, absolute-form, authority and asterisk targets, raw UTF-8 and a
 * #fragment in the target, heads and targets just under and over 16k,
 * HTTP/0.9, 1.0, 2.0 and other versions, unusual methods, two Hosts,
 * Expect, Upgrade, chunk extensions, pipelined requests and trailing bytes;
 * sometimes sent in pieces, so that heads and bodies arrive split.
 *
 * A case is a structure (so fast-check shrinks it to a small failing
 * request) serialized to bytes by caseBytes.
 */
import fc from 'fast-check';

export interface Header {
  name: string;
  /** Between the name and the value: ': ' normally. */
  sep: string;
  value: string;
}

/** How the body is framed: none, a Content-Length (off by `delta`), chunked (with a chunk-size line style), or both. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; delta: number; value?: string }
  | { kind: 'chunked'; te: string; sizeStyle: string; trailer: string }
  | { kind: 'both'; te: string };

export interface Request {
  method: string;
  target: string;
  /** '' for an HTTP/0.9 request line (method and target only). */
  version: string;
  /** Spaces between the request line's parts. */
  space: string;
  headers: Header[];
  /** Where the framing headers go among the others. */
  framingAt: number;
  framing: Framing;
  body: string;
  /** Pad the head (an X-Pad header) to 16k + this many bytes; null: no padding. */
  padTo: number | null;
  /** Pad the target to 16k + this many bytes (a target of 16k is a 414); null: as generated. */
  padTarget: number | null;
}

export interface GenCase {
  requests: Request[];
  /** Line ends: CRLF, LF everywhere, LF on one line (`at`), CR on one line. */
  eol: { kind: 'crlf' } | { kind: 'lf' } | { kind: 'bare-lf-at'; at: number } | { kind: 'bare-cr-at'; at: number };
  /** An obs-fold (a line starting with a space or tab) after header line `at` of the first request. */
  fold: { at: number; text: string } | null;
  /** One byte of the serialized requests replaced (at `at` modulo their length). */
  flip: { at: number; byte: string } | null;
  /** Bytes after the requests. */
  trailing: string;
  /** Where the bytes are cut into pieces sent a few milliseconds apart (each modulo their length); none: one write. */
  splits: number[];
}

const MAX_HEADER_SIZE = 16 * 1024;

const FAST_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const OTHER_METHODS = ['CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'REPORT', 'PURGE', 'LINK', 'UNLINK', 'QUERY', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'MKCALENDAR', 'SOURCE', 'PRI', 'DESCRIBE', 'ACL', 'BIND'];
/** Methods llhttp does not know that nginx (and gatehouse) take: upper-case letters, `_` and `-`. */
const NGINX_METHODS = ['BREW', 'X-SYNC', 'X_SYNC-ALL', 'GETS', 'PURGEALL', 'A'];
const ODD_METHODS = ['FOO', 'get', 'Get', 'GETS', 'GE', 'POSTX', 'G\x00T', 'GET\t', 'BREW', 'X-METHOD', '\x80GET'];

const method = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...FAST_METHODS) },
  { weight: 2, arbitrary: fc.constantFrom(...OTHER_METHODS) },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_METHODS) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z][A-Z-]{0,9}$/) },
);

const PATH_PIECES = [
  'a', 'b', 'static', 'x.txt', 'index.html', '%20', '%2F', '%2e', '%2E%2E', '%00', '%zz', '%', '..', '.', '', ';p=1',
  '~user', '!$&\'()*+,=:@', '"', '<', '>', '\\', '^', '`', '{', '|', '}', '#frag', '?', '??', '[', ']',
];
const RAW_PIECES = ['caf\xc3\xa9', '\xe2\x82\xac', '\x80', '\xff', '\x7f', '\x00', '\t', ' ', '\x01', '\x0b', '\r', '\n'];
const segment = fc.oneof(
  { weight: 10, arbitrary: fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 3 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.constantFrom(...RAW_PIECES) },
);
const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: fc.array(fc.constantFrom('a=1', 'b=%20', 'c', 'd=x/y', '&', '=', '?', 'e=\xc3\xa9', '#f', 'g="h"', '%00'), { minLength: 1, maxLength: 4 }).map((q) => '?' + q.join('&')) },
);
const target = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), query).map(([s, q]) => '/' + s.join('/') + q) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '*', 'http://example.com/p?q=1', 'http://example.com', 'https://a.example/', 'HTTP://X/Y', 'ftp://x/y', 'http://u@x/', 'example.com:443',
      '//x/y', '/a#frag', '/a?b#c', '/#', '/?#', '', 'a/b', '/a/../b', '/..', '/static/..%2f', '/caf\xc3\xa9', '/\xc3\xa9?\xc3\xa9',
    ),
  },
);
const version = fc.oneof(
  { weight: 20, arbitrary: fc.constant('HTTP/1.1') },
  { weight: 3, arbitrary: fc.constant('HTTP/1.0') },
  { weight: 2, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/0.9', '') },
  { weight: 1, arbitrary: fc.constantFrom('HTTP/1.2', 'HTTP/3.0', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11', 'HTTP/1.', 'HTTP/1.1x', 'RTSP/1.0', 'ICE/1.0', 'HTTP /1.1', 'HTTP/01.1', 'HTTP/1.01') },
);
const space = fc.oneof({ weight: 30, arbitrary: fc.constant(' ') }, { weight: 1, arbitrary: fc.constantFrom('  ', '\t', ' \t') });

const sep = fc.oneof(
  { weight: 20, arbitrary: fc.constant(': ') },
  { weight: 2, arbitrary: fc.constantFrom(':', ':  ', ':\t', ': \t') },
  { weight: 1, arbitrary: fc.constantFrom(' : ', ' :', '\t: ', ';', '') },
);

/** Values around a header's meaning: what parsers are known to read differently. */
const CONNECTION_VALUES = [
  'close', 'keep-alive', 'Close', 'CLOSE', 'Keep-Alive', 'close ', ' close', 'close\t', '\tclose', 'keep-alive\t', 'close,', 'close, ', ', close',
  'keep-alive, close', 'close, keep-alive', 'upgrade', 'Upgrade', 'Upgrade, HTTP2-Settings', 'TE', 'close, TE', 'closed', 'close;', '', 'x-close', 'close \t',
];
const CONTENT_LENGTH_VALUES = ['0', '3', '+3', '-1', '3, 3', '03', '003', ' 3', '3 ', '3\t', '\t3', '3 \t', '0x3', '1e3', '3.0', '', '99999999999999999999', '999999999999999', '18446744073709551616', '3 3', '３'];
const TE_VALUES = [
  'chunked', 'Chunked', 'CHUNKED', ' chunked', 'chunked ', 'chunked\t', '\tchunked', 'gzip', 'gzip, chunked', 'chunked, gzip', 'chunked,', 'chunked, chunked',
  'identity', 'x-chunked', 'chunked;q=1', 'chunked , identity', 'gzip,chunked', 'deflate, chunked', 'chunk', '', 'chunked\x00', 'identity, chunked',
];
const EXPECT_VALUES = ['100-continue', '100-Continue', '100-continue ', 'foo', '', '100-continue, foo'];
const HOST_VALUES = ['example.com', 'a:80', '[::1]:8080', '', 'x y', 'ex\xe9mple', 'EXAMPLE.COM.', 'a@b', 'a/b', 'localhost:99999'];

const plainValue = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('x', 'text/html', '*/*', 'gzip, deflate, br', 'Mozilla/5.0 (X11)', 'a=1', 'no-cache', '1.2.3.4', 'a"b', '', ' ') },
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...'abc XYZ019-_.,;:=/"()\t'.split('')), maxLength: 20 }) },
  { weight: 2, arbitrary: fc.constantFrom('caf\xe9', '\xa0v\xa0', '\xc3\xa9', '\xff\xfe', ' v ', '\tv\t', 'v\t ', ' \t') },
  { weight: 2, arbitrary: fc.constantFrom('a\x00b', 'a\x01b', 'a\x7fb', 'a\rb', 'a\x0bb', 'a\x0cb', 'a\x1bb', '\x00', 'a\nb', 'a\r\nb') },
);

const NAMES = ['Accept', 'User-Agent', 'Cookie', 'Set-Cookie', 'Content-Type', 'X-Custom', 'Accept-Encoding', 'Keep-Alive', 'TE', 'Trailer', 'X_Under', 'X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Referer', 'Authorization', 'constructor', '__proto__', 'hasOwnProperty', 'toString'];
const ODD_NAMES = ['Host ', ' Host', 'X:A', 'X A', 'X\x00', 'X\x80', '\tX', 'X\t', 'X"Y', 'X(Y)', 'X/Y', 'X@', 'X{', 'Contents-Length', 'Content-Length-X', 'Transfer-Encodings', 'Connection-X'];
const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);

const header: fc.Arbitrary<Header> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ name: fc.constantFrom(...NAMES), sep, value: plainValue }) },
  { weight: 3, arbitrary: fc.record({ name: fc.mixedCase(fc.constant('host')), sep, value: fc.constantFrom(...HOST_VALUES) }) },
  { weight: 3, arbitrary: fc.record({ name: fc.mixedCase(fc.constantFrom('connection', 'proxy-connection')), sep, value: fc.constantFrom(...CONNECTION_VALUES) }) },
  { weight: 2, arbitrary: fc.record({ name: fc.mixedCase(fc.constant('content-length')), sep, value: fc.constantFrom(...CONTENT_LENGTH_VALUES) }) },
  { weight: 2, arbitrary: fc.record({ name: fc.mixedCase(fc.constant('transfer-encoding')), sep, value: fc.constantFrom(...TE_VALUES) }) },
  { weight: 1, arbitrary: fc.record({ name: fc.mixedCase(fc.constant('expect')), sep, value: fc.constantFrom(...EXPECT_VALUES) }) },
  { weight: 1, arbitrary: fc.record({ name: fc.constantFrom('Upgrade', 'HTTP2-Settings', 'upgrade'), sep, value: fc.constantFrom('websocket', 'h2c', 'AAMAAABkAAQAAP__', '') }) },
  { weight: 2, arbitrary: fc.record({ name: token, sep, value: plainValue }) },
  { weight: 1, arbitrary: fc.record({ name: fc.constantFrom(...ODD_NAMES), sep, value: plainValue }) },
);

const CHUNK_SIZE_STYLES = ['plain', 'plain', 'plain', 'ext', 'ext-quoted', 'ext-space', 'ext-bws', 'ext-bws-quoted', 'space-before-crlf', 'upper-hex', 'leading-zeros', '0x', 'bare-lf', 'tab-ext'];

const framing: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Framing>({ kind: 'none' }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('length' as const), delta: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('chunked' as const),
      te: fc.oneof({ weight: 6, arbitrary: fc.constant('chunked') }, { weight: 1, arbitrary: fc.constantFrom(...TE_VALUES) }),
      sizeStyle: fc.constantFrom(...CHUNK_SIZE_STYLES),
      trailer: fc.constantFrom('', '', 'X-T: 1\r\n', 'X-T : 1\r\n', 'Content-Length: 5\r\n'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('both' as const), te: fc.constantFrom('chunked', 'Chunked', 'gzip, chunked', 'identity') }) },
);

const body = fc.oneof({ weight: 3, arbitrary: fc.constant('') }, { weight: 4, arbitrary: fc.constantFrom('abc', 'a=1&b=2', '{"k":"v"}', 'x'.repeat(40), 'caf\xe9\x00\r\n', 'GET / HTTP/1.1\r\nHost: s\r\n\r\n') });

/** Any request, hostile ones included. */
const hostileRequest: fc.Arbitrary<Request> = fc.record({
  method,
  target,
  version,
  space,
  headers: fc.oneof(
    // Mostly a Host first, as clients send.
    { weight: 8, arbitrary: fc.tuple(fc.constantFrom('example.com', 'a:80', 'x'), fc.array(header, { maxLength: 5 })).map(([h, rest]): Header[] => [{ name: 'Host', sep: ': ', value: h }, ...rest]) },
    { weight: 2, arbitrary: fc.array(header, { maxLength: 6 }) },
  ),
  framingAt: fc.nat({ max: 6 }),
  framing,
  body,
  padTo: fc.oneof({ weight: 20, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -8, max: 8 }), fc.constantFrom(-2000, 200, 20000)) }),
  padTarget: fc.oneof({ weight: 30, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -8, max: 8 }), fc.constantFrom(-20, 200, 20000)) }),
});

/**
 * Requests the fast path may take, and their near neighbours: its methods,
 * HTTP/1.1 and 1.0, an origin-form target of any visible ASCII, token names, values
 * of visible ASCII, spaces, tabs and obs-text, and the values of Connection,
 * Proxy-Connection and Content-Length that parsers are known to disagree on.
 */
const VISIBLE = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i));
const okValue = fc.string({ unit: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...VISIBLE) }, { weight: 3, arbitrary: fc.constantFrom(' ', '\t') }, { weight: 1, arbitrary: fc.constantFrom('\x80', '\xa0', '\xe9', '\xff') }), maxLength: 16 });
const okSep = fc.oneof({ weight: 10, arbitrary: fc.constant(': ') }, { weight: 3, arbitrary: fc.constantFrom(':', ':  ', ':\t', ': \t', ':\t ') });
const okHeader: fc.Arbitrary<Header> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ name: fc.constantFrom(...NAMES), sep: okSep, value: okValue }) },
  { weight: 3, arbitrary: fc.record({ name: token, sep: okSep, value: okValue }) },
  { weight: 2, arbitrary: fc.record({ name: fc.mixedCase(fc.constantFrom('connection', 'proxy-connection', 'keep-alive')), sep: okSep, value: fc.constantFrom(...CONNECTION_VALUES) }) },
  { weight: 1, arbitrary: fc.record({ name: fc.mixedCase(fc.constant('content-length')), sep: okSep, value: fc.constantFrom(...CONTENT_LENGTH_VALUES) }) },
  { weight: 1, arbitrary: fc.record({ name: fc.mixedCase(fc.constant('host')), sep: okSep, value: fc.constantFrom(...HOST_VALUES) }) },
);
/** (A body only with a Content-Length: stray bytes after a head come from the hostile requests.) */
const ordinaryRequest: fc.Arbitrary<Request> = fc.record({
  method: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...FAST_METHODS) }, { weight: 1, arbitrary: fc.constantFrom(...NGINX_METHODS) }),
  target: fc.oneof(
    { weight: 3, arbitrary: target },
    { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...VISIBLE), maxLength: 24 }).map((t) => '/' + t) },
    { weight: 1, arbitrary: fc.string({ unit: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...VISIBLE) }, { weight: 1, arbitrary: fc.constantFrom('\xc3\xa9', '\x80', '\xff', '\xe2\x82\xac') }), maxLength: 16 }).map((t) => '/' + t) },
  ),
  version: fc.oneof({ weight: 5, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constant('HTTP/1.0') }),
  space: fc.constant(' '),
  // HTTP/1.0 needs no Host (node:http asks one of HTTP/1.1 only): sometimes there is none.
  headers: fc.tuple(fc.constantFrom('example.com', 'a:80', 'x', null), fc.array(okHeader, { maxLength: 4 })).map(([h, rest]): Header[] => (h === null ? rest : [{ name: 'Host', sep: ': ', value: h }, ...rest])),
  framingAt: fc.nat({ max: 6 }),
  framing: fc.oneof(
    { weight: 3, arbitrary: fc.constant<Framing>({ kind: 'none' }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('length' as const), delta: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }) }) },
  ),
  body,
  padTo: fc.oneof({ weight: 30, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
  padTarget: fc.oneof({ weight: 40, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
}).map((r) => (r.framing.kind === 'none' ? { ...r, body: '' } : r));

const request = fc.oneof({ weight: 3, arbitrary: ordinaryRequest }, { weight: 1, arbitrary: hostileRequest });

export const requestCase: fc.Arbitrary<GenCase> = fc.record({
  requests: fc.oneof({ weight: 6, arbitrary: fc.array(request, { minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: fc.array(request, { minLength: 2, maxLength: 3 }) }),
  eol: fc.oneof(
    { weight: 60, arbitrary: fc.constant<GenCase['eol']>({ kind: 'crlf' }) },
    { weight: 1, arbitrary: fc.constant<GenCase['eol']>({ kind: 'lf' }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('bare-lf-at' as const), at: fc.nat({ max: 8 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bare-cr-at' as const), at: fc.nat({ max: 8 }) }) },
  ),
  fold: fc.oneof({ weight: 20, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ at: fc.nat({ max: 4 }), text: fc.constantFrom(' folded', '\tfolded', ' ', ' Host: evil') }) }),
  flip: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ at: fc.nat(), byte: fc.constantFrom('\x00', '\t', ' ', '\r', '\n', '\x7f', '\x80', '\xff', ':', ',', ';', '#', '?', '%', '"', 'A') }) }),
  trailing: fc.oneof({ weight: 20, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('\r\n', 'x', 'GET / HTTP/1.1\r\nHost: s\r\n\r\n', 'GET /half HTTP/1.1\r\n', '0\r\n\r\n') }),
  splits: fc.oneof({ weight: 8, arbitrary: fc.constant<number[]>([]) }, { weight: 1, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }) }),
});

/** A chunked body, its size lines in the given style. */
function chunked(body: string, style: string, trailer: string): string {
  const parts = body.length === 0 ? [] : body.length > 3 ? [body.slice(0, 3), body.slice(3)] : [body];
  const size = (n: number): string => {
    const hex = n.toString(16);
    switch (style) {
      case 'ext': return `${hex};a=b`;
      case 'ext-quoted': return `${hex};a="b c"`;
      case 'ext-space': return `${hex} ;a=b`;
      case 'ext-bws': return `${hex}; a=b`;
      case 'ext-bws-quoted': return `${hex};a = "b c" ;d`;
      case 'tab-ext': return `${hex}\t;a=b`;
      case 'space-before-crlf': return `${hex} `;
      case 'upper-hex': return hex.toUpperCase();
      case 'leading-zeros': return `000${hex}`;
      case '0x': return `0x${hex}`;
      default: return hex;
    }
  };
  const eol = style === 'bare-lf' ? '\n' : '\r\n';
  return parts.map((p) => `${size(p.length)}${eol}${p}\r\n`).join('') + `${size(0)}${eol}${trailer}\r\n`;
}

/** The head's lines (request line first, no line ends) and the body that follows it. */
function requestLines(r: Request): { lines: string[]; body: string } {
  const target = r.padTarget === null ? r.target : r.target + 't'.repeat(Math.max(0, MAX_HEADER_SIZE + r.padTarget - Buffer.byteLength(r.target, 'latin1')));
  const line = r.version === '' ? `${r.method}${r.space}${target}` : `${r.method}${r.space}${target}${r.space}${r.version}`;
  const headers = r.headers.map((h) => `${h.name}${h.sep}${h.value}`);
  let framingHeaders: string[] = [];
  let body = '';
  const f = r.framing;
  if (f.kind === 'length') {
    framingHeaders = [`Content-Length: ${Math.max(0, r.body.length + f.delta)}`];
    body = r.body;
  } else if (f.kind === 'chunked') {
    framingHeaders = [`Transfer-Encoding: ${f.te}`];
    body = chunked(r.body, f.sizeStyle, f.trailer);
  } else if (f.kind === 'both') {
    framingHeaders = [`Content-Length: ${r.body.length}`, `Transfer-Encoding: ${f.te}`];
    body = chunked(r.body, 'plain', '');
  } else {
    body = r.body;
  }
  const at = Math.min(r.framingAt, headers.length);
  const lines = [line, ...headers.slice(0, at), ...framingHeaders, ...headers.slice(at)];
  if (r.padTo !== null) {
    // Request line and headers with their CRLFs, the blank line, and the pad's own `X-Pad: ` and CRLF.
    const size = lines.reduce((n, l) => n + l.length + 2, 0) + 2 + 8 + 2;
    lines.push(`X-Pad: ${'p'.repeat(Math.max(0, MAX_HEADER_SIZE + r.padTo - size))}`);
  }
  return { lines, body };
}

/** The bytes of a case cut where its splits say: the pieces to write one after the other. */
export function caseChunks(c: GenCase): Buffer[] {
  const bytes = caseBytes(c);
  if (bytes.length < 2) return [bytes];
  const cuts = [...new Set(c.splits.map((n) => 1 + (n % (bytes.length - 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(from, cut));
    from = cut;
  }
  return out;
}

/** The bytes of a case, as latin-1. */
export function caseBytes(c: GenCase): Buffer {
  let out = '';
  let lineNo = 0;
  c.requests.forEach((r, i) => {
    const { lines, body } = requestLines(r);
    if (i === 0 && c.fold !== null) lines.splice(Math.min(c.fold.at + 1, lines.length), 0, c.fold.text);
    for (const l of [...lines, '']) {
      let eol = '\r\n';
      if (c.eol.kind === 'lf') eol = '\n';
      else if (c.eol.kind === 'bare-lf-at' && c.eol.at === lineNo) eol = '\n';
      else if (c.eol.kind === 'bare-cr-at' && c.eol.at === lineNo) eol = '\r';
      out += l + eol;
      lineNo++;
    }
    out += body;
  });
  if (c.flip !== null && out.length > 0) {
    const at = c.flip.at % out.length;
    out = out.slice(0, at) + c.flip.byte + out.slice(at + 1);
  }
  return Buffer.from(out + c.trailing, 'latin1');
}
