/**
 * nginx's internal redirect, for an X-Accel-Redirect from an app or a back
 * end (src/http/accel-redirect.ts): the request is routed again, on the same
 * host, as if the client had asked for the URI it names (its query kept),
 * `internal` routes included, with GET (HEAD stays HEAD) and the client's
 * other headers (Range, If-None-Match...: a redirected file answers ranges
 * and conditional requests as any static file). The target's action answers
 * through node:http's objects (made now for a lean request), its head with
 * the redirecting head's kept headers over its own (but Cache-Control and
 * Expires where the target route sets its own, as nginx's `expires`
 * replaces them); the access log line is
 * the client's request line with the final status and bytes.
 *
 * As nginx: a value that is not a path (not starting with '/'; nginx's named
 * locations, `@name`, included) is refused with 500 and an error log line
 * naming it; an unsafe one (a `..` segment or a NUL) gets 404, and so does a
 * path no route takes; more than MAX_REDIRECTS redirects for one request
 * (a loop) end in 500.
 */
import { IncomingMessage, STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http2';
import type { AccelRedirect } from '../http/accel-redirect.js';
import type { ExchangeContext, Reroute, Rerouted, RequestInfo, RouteRequest } from '../http/handler.js';
import { isHeaderName } from '../http/header-name.js';
import { sendPlain } from '../http/plain-response.js';
import { parseTarget } from '../http/request-target.js';
import type { Router } from './router.js';

/** nginx's NGX_HTTP_MAX_URI_CHANGES: one more internal redirect for the same request is a loop (500). */
export const MAX_REDIRECTS = 10;

/** Request headers that describe the client's body: the redirected request has none. */
const BODY_HEADERS = new Set(['content-length', 'transfer-encoding', 'expect']);
/** Kept headers that describe the body of a 2xx answer only (not a 304's, nor an error's). */
const CONTENT_HEADERS = new Set(['content-type', 'content-disposition', 'accept-ranges']);

/** Kept headers a route that sets its own (Handler.setsCaching) answers without, as withoutNames() takes them. */
const CACHING_HEADERS: readonly string[] = ['cache-control', '', 'expires', ''];

/** What a redirected request carries from the ones before it. */
interface Redirected {
  /** The client's own request, which the access log shows. */
  client: RequestInfo;
  /** Internal redirects so far. */
  hops: number;
  /** The kept headers of every redirecting head so far, the later over the earlier. */
  kept: string[];
}

export class InternalRedirect {
  /** The requests this made, with what they carry. */
  private readonly redirected = new WeakMap<RequestInfo, Redirected>();

  constructor(
    private readonly router: Router,
    private readonly ctx: ExchangeContext,
  ) {}

  /** RouteRequest.reroute of every request the front routes. */
  readonly reroute: Reroute = (r, accel) => this.follow(r, accel);

  private follow(r: Rerouted, accel: AccelRedirect): void {
    const prior = this.redirected.get(r.req);
    const client = prior?.client ?? r.req;
    const hops = (prior?.hops ?? 0) + 1;
    const value = JSON.stringify(accel.target);
    const what = `${client.method} ${client.url}: X-Accel-Redirect ${value}`;
    if (hops > MAX_REDIRECTS) return this.refuse(r, 500, `${what}: more than ${MAX_REDIRECTS} internal redirects for one request (a loop?)`);
    if (!accel.target.startsWith('/')) {
      const named = accel.target.startsWith('@') ? ' (named locations are not supported)' : '';
      return this.refuse(r, 500, `${what} is not a path starting with '/'${named}`);
    }
    const target = parseTarget(accel.target);
    if (target === null) return this.refuse(r, 404, `${what} is unsafe (a ".." segment or a NUL)`);
    const match = this.router.match(r.host, target.path);
    if (match === null) return this.refuse(r, 404, null);
    // A request the front routed without lean parts came with node:http's objects (or HTTP/2's look-alikes).
    const res = r.lean === null ? (r.res as ServerResponse) : r.lean.toNode().res;
    const kept = prior === undefined ? accel.kept : [...withoutNames(prior.kept, accel.kept), ...accel.kept];
    keepHeaders(res, match.entry.handler.setsCaching === true ? withoutNames(kept, CACHING_HEADERS) : kept);
    const req = redirectedRequest(r.req, accel.target);
    this.redirected.set(req, { client, hops, kept });
    const accessLog = this.ctx.accessLog;
    const next: RouteRequest = {
      req,
      res,
      scheme: r.scheme,
      host: r.host,
      prefix: match.prefix,
      rest: target.path.slice(match.prefix.length),
      query: target.query,
      maxRequestBody: match.entry.maxRequestBody,
      log: accessLog === null ? () => {} : (status, bytes) => accessLog.write(client, status, bytes, res),
      reroute: this.reroute,
      lean: null,
    };
    const handler = match.entry.handler;
    if (handler.serveLean !== undefined) handler.serveLean({ ...next, body: null });
    else handler.serve(next);
  }

  /** The front's own answer to a redirect it cannot follow; `error`: its error log line. */
  private refuse(r: Rerouted, status: 404 | 500, error: string | null): void {
    if (error !== null) this.ctx.logger.error(`${error} (${status})`);
    r.log(status, sendPlain(r.res, status, STATUS_CODES[status]!, this.ctx.draining));
  }
}

/** `list` without the names `over` has (`[name, value, ...]` both). */
function withoutNames(list: readonly string[], over: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    let replaced = false;
    for (let j = 0; j < over.length && !replaced; j += 2) replaced = isHeaderName(list[i]!, over[j]!.toLowerCase());
    if (!replaced) out.push(list[i]!, list[i + 1]!);
  }
  return out;
}

/**
 * The request for `target` (the X-Accel-Redirect value, its query kept):
 * GET, or HEAD for a HEAD, with the headers of `from` but those of its body
 * (none follows). A node:http request, already complete, so that any
 * action can take it.
 */
function redirectedRequest(from: RequestInfo, target: string): IncomingMessage {
  const req = new IncomingMessage(from.socket);
  req.method = from.method === 'HEAD' ? 'HEAD' : 'GET';
  req.url = target;
  req.httpVersion = from.httpVersion;
  req.httpVersionMajor = from.httpVersionMajor;
  req.httpVersionMinor = from.httpVersion === '1.0' ? 0 : from.httpVersionMajor === 1 ? 1 : 0;
  const headers: IncomingHttpHeaders = {};
  for (const name in from.headers) if (!BODY_HEADERS.has(name)) headers[name] = from.headers[name];
  // HTTP/2's own fields say the request too.
  if (headers[':method'] !== undefined) headers[':method'] = req.method;
  if (headers[':path'] !== undefined) headers[':path'] = target;
  req.headers = headers;
  const raw: string[] = [];
  for (let i = 0; i + 1 < from.rawHeaders.length; i += 2) {
    const name = from.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (BODY_HEADERS.has(lower)) continue;
    raw.push(name, lower === ':method' ? req.method : lower === ':path' ? target : from.rawHeaders[i + 1]!);
  }
  req.rawHeaders = raw;
  req.complete = true;
  req.push(null);
  return req;
}

/**
 * The redirecting head's kept headers (`[name, value, ...]`) go out over
 * the target's own, as nginx copies them into the answer before the
 * redirect: all of them on a 2xx, only Set-Cookie, Cache-Control and
 * Expires on any other status (a 304, an error), whose body is not the
 * file's. A multipart/byteranges 206 keeps its own Content-Type.
 */
function keepHeaders(res: ServerResponse, kept: readonly string[]): void {
  if (kept.length === 0) return;
  const writeHead = res.writeHead as (this: ServerResponse, status: number, reason?: string) => ServerResponse;
  res.writeHead = function (this: ServerResponse, status: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]) {
    // The target's headers as writeHead() would set them over those set before, then the kept ones over them.
    const given = typeof a === 'string' ? b : a;
    if (Array.isArray(given)) for (const [name, values] of grouped(given as readonly string[])) this.setHeader(name, values);
    else if (given !== undefined) {
      const table = given as OutgoingHttpHeaders;
      for (const name in table) if (table[name] !== undefined) this.setHeader(name, table[name]!);
    }
    const ok = status >= 200 && status < 300;
    const multipart = String(this.getHeader('content-type') ?? '').startsWith('multipart/byteranges');
    for (const [name, values] of grouped(kept)) {
      const lower = name.toLowerCase();
      if (CONTENT_HEADERS.has(lower) && (!ok || (multipart && lower === 'content-type'))) continue;
      this.setHeader(name, values.length === 1 ? values[0]! : values);
    }
    return typeof a === 'string' ? writeHead.call(this, status, a) : writeHead.call(this, status);
  } as ServerResponse['writeHead'];
}

/** `[name, value, ...]` as each name (first spelling, any case) with its values. */
function grouped(flat: readonly string[]): Map<string, string[]> {
  const byLower = new Map<string, [string, string[]]>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const lower = flat[i]!.toLowerCase();
    const had = byLower.get(lower);
    if (had === undefined) byLower.set(lower, [flat[i]!, [flat[i + 1]!]]);
    else had[1].push(flat[i + 1]!);
  }
  return new Map([...byLower.values()]);
}
