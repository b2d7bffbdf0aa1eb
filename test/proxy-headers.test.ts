/**
 * The proxy's header and path rules (src/upstream/proxy-headers.ts), table
 * by table: what goes up for a request, what comes down for a response,
 * the target sent up and Location rewriting. Pure functions over the
 * request records the front makes; the same rules run end to end in
 * proxy-requests.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import type { HttpResponse, RequestInfo, RouteRequest } from '../src/http/handler.js';
import { TrustedProxies } from '../src/http/forwarded.js';
import { clientResponseHeaders, headerTable, upstreamRequestHeaders, upstreamTarget, type HeaderRules } from '../src/upstream/proxy-headers.js';

type Routed = RouteRequest<RequestInfo, HttpResponse>;

function routed(rawHeaders: string[], opts: { url?: string; prefix?: string; rest?: string; query?: string; scheme?: string; peer?: string; trust?: string[]; h2?: boolean } = {}): Routed {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!.toLowerCase();
    headers[k] = headers[k] === undefined ? rawHeaders[i + 1]! : `${headers[k]}, ${rawHeaders[i + 1]}`;
  }
  const req: RequestInfo = {
    method: 'GET',
    url: opts.url ?? '/',
    httpVersion: opts.h2 ? '2.0' : '1.1',
    httpVersionMajor: opts.h2 ? 2 : 1,
    headers,
    rawHeaders,
    socket: { remoteAddress: opts.peer ?? '::ffff:192.0.2.7' } as Socket,
  };
  if (opts.trust) new TrustedProxies(opts.trust).resolve(req);
  return { req, res: null as unknown as HttpResponse, scheme: opts.scheme ?? 'http', host: '', prefix: opts.prefix ?? '', rest: opts.rest ?? '/', query: opts.query ?? '', maxRequestBody: 0, log: () => {}, reroute: () => {}, lean: null };
}

const RULES: HeaderRules = { host: undefined, requestHeaders: new Map(), responseHeaders: new Map(), passPath: undefined, rewriteLocation: true };

/** The headers as `name: value` lines (lower-case names), for readable tables. */
function lines(flat: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(`${flat[i]!.toLowerCase()}: ${flat[i + 1]}`);
  return out;
}

const REQUESTS: Array<{ name: string; raw: string[]; opts?: Parameters<typeof routed>[1]; rules?: Partial<HeaderRules>; body?: number | null; want: string[]; absent?: string[] }> = [
  {
    name: 'the client Host, and the forwarding headers from the peer address',
    raw: ['Host', 'site.example', 'Accept', '*/*'],
    want: ['accept: */*', 'host: site.example', 'x-forwarded-for: 192.0.2.7', 'x-forwarded-proto: http', 'x-forwarded-host: site.example', 'forwarded: for=192.0.2.7;proto=http;host=site.example'],
  },
  {
    name: 'an IPv6 peer is quoted in Forwarded; https is the proto',
    raw: ['Host', 'h'],
    opts: { peer: '2001:db8::1', scheme: 'https' },
    want: ['host: h', 'x-forwarded-for: 2001:db8::1', 'x-forwarded-proto: https', 'x-forwarded-host: h', 'forwarded: for="[2001:db8::1]";proto=https;host=h'],
  },
  {
    name: 'forwarding headers from an untrusted client are replaced',
    raw: ['Host', 'h', 'X-Forwarded-For', '6.6.6.6', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil', 'Forwarded', 'for=6.6.6.6'],
    want: ['host: h', 'x-forwarded-for: 192.0.2.7', 'x-forwarded-proto: http', 'x-forwarded-host: h', 'forwarded: for=192.0.2.7;proto=http;host=h'],
  },
  {
    name: 'from a trusted peer ours are appended',
    raw: ['Host', 'h', 'X-Forwarded-For', '203.0.113.9', 'X-Forwarded-Proto', 'https', 'Forwarded', 'for=203.0.113.9'],
    opts: { trust: ['192.0.2.0/24'] },
    want: ['host: h', 'x-forwarded-for: 203.0.113.9, 192.0.2.7', 'x-forwarded-proto: https, http', 'x-forwarded-host: h', 'forwarded: for=203.0.113.9, for=192.0.2.7;proto=http;host=h'],
  },
  {
    name: 'hop-by-hop headers, those Connection names, and Expect are dropped',
    raw: ['Host', 'h', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Keep-Alive', '300', 'TE', 'trailers', 'Trailer', 'X-T', 'Upgrade', 'h2c', 'Proxy-Connection', 'close', 'Expect', '100-continue', 'X-End', '2'],
    absent: ['connection', 'x-hop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'expect'],
    want: ['x-end: 2'],
  },
  {
    name: 'a buffered body: its length replaces Content-Length and Transfer-Encoding',
    raw: ['Host', 'h', 'Transfer-Encoding', 'chunked', 'Content-Length', '99'],
    body: 5,
    want: ['content-length: 5'],
    absent: ['transfer-encoding'],
  },
  {
    name: 'a configured Host; request_headers set and remove',
    raw: ['Host', 'h', 'X-Remove', 'x', 'X-Replace', 'old', 'X-Keep', 'k'],
    rules: { host: 'backend.internal', requestHeaders: headerTable({ 'X-Remove': '', 'x-replace': 'new', 'X-Real-IP': 'set' }) },
    want: ['host: backend.internal', 'x-keep: k', 'x-replace: new', 'x-real-ip: set', 'x-forwarded-host: h'],
    absent: ['x-remove'],
  },
  {
    name: 'HTTP/2: pseudo-headers dropped, :authority is the Host',
    raw: [':method', 'GET', ':path', '/', ':scheme', 'https', ':authority', 'h2.example', 'accept', '*/*'],
    opts: { h2: true, scheme: 'https' },
    want: ['accept: */*', 'host: h2.example', 'x-forwarded-host: h2.example'],
    absent: [':method', ':path', ':authority', ':scheme'],
  },
];

for (const c of REQUESTS) {
  test(`up: ${c.name}`, () => {
    const got = lines(upstreamRequestHeaders(routed(c.raw, c.opts), { ...RULES, ...c.rules }, c.body ?? null));
    for (const line of c.want) assert.ok(got.includes(line), `${line} in\n${got.join('\n')}`);
    for (const name of c.absent ?? []) assert.ok(!got.some((l) => l.startsWith(`${name}:`)), `${name} absent from\n${got.join('\n')}`);
    // Each forwarding header once.
    for (const name of ['host', 'x-forwarded-for', 'forwarded']) assert.ok(got.filter((l) => l.startsWith(`${name}:`)).length <= 1, name);
  });
}

const RESPONSES: Array<{ name: string; raw: string[]; opts?: Parameters<typeof routed>[1]; rules?: Partial<HeaderRules>; want: string[]; absent?: string[] }> = [
  {
    name: 'hop-by-hop headers and those Connection names are dropped',
    raw: ['Connection', 'close, X-Private', 'X-Private', 's', 'Keep-Alive', 'timeout=9', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Trailer', 'X-T', 'Content-Type', 'text/plain'],
    want: ['content-type: text/plain'],
    absent: ['connection', 'x-private', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer'],
  },
  {
    name: 'the usual Connection: close names close; a second Connection adds its names to it',
    raw: ['Connection', 'close', 'Close', 'x', 'Connection', 'X-Two', 'X-Two', '2', 'Content-Length', '0'],
    want: ['content-length: 0'],
    absent: ['connection', 'close', 'x-two'],
  },
  {
    name: 'Connection: close alone drops no other header (what an earlier head named stays its own)',
    raw: ['Connection', 'CLOSE', 'X-Two', '2', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5'],
    want: ['x-two: 2'],
    absent: ['connection', 'keep-alive'],
  },
  {
    name: 'response_headers set and remove',
    raw: ['Server', 'gunicorn', 'X-Powered-By', 'PHP', 'Cache-Control', 'no-cache'],
    rules: { responseHeaders: headerTable({ Server: '', 'X-Powered-By': '', 'Cache-Control': 'public', 'X-Frame-Options': 'DENY' }) },
    want: ['cache-control: public', 'x-frame-options: DENY'],
    absent: ['server', 'x-powered-by'],
  },
  {
    name: 'Location at the upstream, path passed as is: made relative',
    raw: ['Location', 'http://10.0.0.5:8000/app/login?next=/'],
    want: ['location: /app/login?next=/'],
  },
  {
    name: 'Location at the Host sent up, with pass_path "/" under prefix /api',
    raw: ['Location', 'https://site.example/login'],
    opts: { prefix: '/api' },
    rules: { passPath: '/' },
    want: ['location: /api/login'],
  },
  {
    name: 'Location with pass_path "/v1/" under prefix /api',
    raw: ['Location', 'http://10.0.0.5:8000/v1/items/3'],
    opts: { prefix: '/api' },
    rules: { passPath: '/v1/' },
    want: ['location: /api/items/3'],
  },
  {
    name: 'Location elsewhere, or not on a path boundary, is kept',
    raw: ['Location', 'https://other.example/x', 'Content-Location', 'http://10.0.0.5:8000/v1x/y'],
    rules: { passPath: '/v1' },
    want: ['location: https://other.example/x', 'content-location: http://10.0.0.5:8000/v1x/y'],
  },
  {
    name: 'Refresh url= is rewritten too',
    raw: ['Refresh', '5; url=http://10.0.0.5:8000/next'],
    want: ['refresh: 5; url=/next'],
  },
  {
    name: 'rewrite_location = false keeps it',
    raw: ['Location', 'http://10.0.0.5:8000/x'],
    rules: { rewriteLocation: false },
    want: ['location: http://10.0.0.5:8000/x'],
  },
];

for (const c of RESPONSES) {
  test(`down: ${c.name}`, () => {
    const raw = c.raw.map((s) => Buffer.from(s, 'latin1'));
    const got = lines(clientResponseHeaders(raw, { ...RULES, ...c.rules }, routed(['Host', 'site.example'], c.opts), ['10.0.0.5:8000', 'site.example']));
    for (const line of c.want) assert.ok(got.includes(line), `${line} in\n${got.join('\n')}`);
    for (const name of c.absent ?? []) assert.ok(!got.some((l) => l.startsWith(`${name}:`)), `${name} absent from\n${got.join('\n')}`);
  });
}

const TARGETS: Array<[url: string, prefix: string, rest: string, query: string, passPath: string | undefined, want: string]> = [
  ['/api/x/y?q=1', '/api', '/x/y', 'q=1', undefined, '/api/x/y?q=1'],
  ['/api/x/y?q=1', '/api', '/x/y', 'q=1', '/', '/x/y?q=1'],
  ['/api', '/api', '', '', '/', '/'],
  ['/api/', '/api', '/', '', '/v1', '/v1/'],
  ['/api', '/api', '', '', '/v1', '/v1'],
  ['/api/x', '/api', '/x', '', '/v1/', '/v1/x'],
  ['/api/a%20b', '/api', '/a b', '', '/', '/a%20b'],
  // A prefix the client percent-encoded: matched decoded, the rest re-encoded.
  ['/%61pi/a%20b', '/api', '/a b', '', '/', '/a%20b'],
  ['http://h.example/api/z?k', '/api', '/z', 'k', '/', '/z?k'],
  ['http://h.example/api/z?k', '/api', '/z', 'k', undefined, '/api/z?k'],
  ['*', '', '*', '', undefined, '*'],
];

test('the target sent up: as sent, or the prefix replaced by pass_path (nginx proxy_pass with a URI)', () => {
  for (const [url, prefix, rest, query, passPath, want] of TARGETS) {
    assert.equal(upstreamTarget(routed(['Host', 'h'], { url, prefix, rest, query }), passPath), want, `${url} with pass_path ${passPath}`);
  }
});
