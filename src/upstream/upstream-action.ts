/**
 * The `fastcgi`, `scgi` and `uwsgi` route actions: the request's CGI
 * variables are worked out, its body read completely by the front (a slow
 * client costs a buffer, never a back-end connection), then it goes to the
 * back end in the protocol's framing (UpstreamExchange).
 */
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { GatehouseError } from '../errors.js';
import type { ExchangeContext, Handler, HttpResponse, LeanRouteRequest, RequestInfo, RouteRequest } from '../http/handler.js';
import { refuse } from '../http/plain-response.js';
import { hasUnsizedH2Body, readRouteBody } from '../http/request-body.js';
import type { FastcgiSettings, UpstreamCommon, UwsgiSettings } from '../config/upstream-actions.js';
import { cgiParams, scriptTarget, type CgiTarget, type Pairs } from './cgi-params.js';
import { fastcgiWire, stderrLogger } from './fastcgi-protocol.js';
import { encodeScgiHead } from './netstring.js';
import { ConnectionLimit } from './connection-limit.js';
import { DnsCache } from './dns-cache.js';
import { SocketPool } from './socket-pool.js';
import { parseUpstream, type UpstreamAddress } from './upstream-address.js';
import { untilClose, UpstreamExchange, type BufferedBody, type ExchangeWire, type UpstreamTarget } from './upstream-exchange.js';
import { encodeUwsgiPacket } from './uwsgi-packet.js';

/** How long a kept-alive connection may stay idle (nginx's upstream keepalive_timeout). */
const IDLE_MS = 60_000;

/** What differs between the three: where the request points, and its bytes (null: too large for the protocol, 431). */
interface Protocol {
  target(r: RouteRequest<RequestInfo, HttpResponse>): CgiTarget;
  wire(pairs: Pairs, body: BufferedBody | null): ExchangeWire | null;
}

/** SCGI and uwsgi: the head, the body's bytes as they are, the response until the connection closes. */
const rawBodyWire = (head: Buffer, body: BufferedBody | null): ExchangeWire => ({
  head: body?.data ? [head, body.data] : [head],
  frame: (c) => [c],
  tail: [],
  decoder: untilClose,
});

/** An app mounted at the route's path: SCRIPT_NAME is the prefix, PATH_INFO the rest (as for the `app` action). */
const mounted = (r: RouteRequest<RequestInfo, HttpResponse>): CgiTarget => ({ scriptName: r.prefix, pathInfo: r.rest });

export class UpstreamAction implements Handler {
  private readonly target: UpstreamTarget;
  private readonly dns: DnsCache;

  private constructor(
    private readonly settings: UpstreamCommon,
    private readonly ctx: ExchangeContext,
    /** SERVER_SOFTWARE. */
    private readonly software: string,
    /** body_timeout in seconds: a body that stops arriving this long gets 408. */
    private readonly bodyTimeout: number,
    private readonly protocol: Protocol,
    /** Where the settings came from, for errors: `routes[2].fastcgi`. */
    private readonly keyPath: string,
    /** Kept-alive connections (FastCGI), closed with the action. */
    private readonly pool?: SocketPool,
  ) {
    this.dns = new DnsCache(settings.resolve_ttl * 1000);
    this.target = {
      address: parseUpstream(settings.pass) as UpstreamAddress,
      lookup: this.dns.lookup,
      limit: new ConnectionLimit(settings.max_connections),
      label: settings.pass,
      connectMs: settings.connect_timeout * 1000,
      sendMs: settings.send_timeout * 1000,
      readMs: settings.read_timeout * 1000,
      buffering: settings.buffering,
    };
  }

  static fastcgi(s: FastcgiSettings, ctx: ExchangeContext, software: string, bodyTimeout: number, keyPath: string): UpstreamAction {
    const stderr = stderrLogger(ctx.logger, s.pass);
    const pool = s.keepalive > 0 ? new SocketPool(s.keepalive, IDLE_MS) : undefined;
    const protocol: Protocol = {
      target: (r) => (s.root === undefined ? mounted(r) : scriptTarget(r.prefix + r.rest || '/', s.root, s.index, s.split_path_info)),
      wire: (pairs, body) => fastcgiWire(pairs, body, pool, stderr),
    };
    return new UpstreamAction(s, ctx, software, bodyTimeout, protocol, keyPath, pool);
  }

  static scgi(s: UpstreamCommon, ctx: ExchangeContext, software: string, bodyTimeout: number, keyPath: string): UpstreamAction {
    return new UpstreamAction(s, ctx, software, bodyTimeout, {
      target: mounted,
      wire: (pairs, body) => rawBodyWire(encodeScgiHead(body?.length ?? 0, pairs), body),
    }, keyPath);
  }

  static uwsgi(s: UwsgiSettings, ctx: ExchangeContext, software: string, bodyTimeout: number, keyPath: string): UpstreamAction {
    return new UpstreamAction(s, ctx, software, bodyTimeout, {
      target: mounted,
      wire: (pairs, body) => {
        const packet = encodeUwsgiPacket(body === null ? pairs : [...pairs, ['CONTENT_LENGTH', String(body.length)]], s.modifier1, s.modifier2);
        return packet && rawBodyWire(packet, body);
      },
    }, keyPath);
  }

  serve(r: RouteRequest): void {
    this.answer(r, r.req);
  }

  serveLean(r: LeanRouteRequest): void {
    this.answer(r, r.body);
  }

  /**
   * A host name that does not resolve at start is a configuration error;
   * afterwards it is resolved again once per resolve_ttl (a changed DNS
   * record is followed).
   */
  async start(): Promise<void> {
    const address = this.target.address;
    if (address.kind !== 'tcp' || isIP(address.host) !== 0) return;
    try {
      await this.dns.resolve(address.host);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new GatehouseError('GH_ERR_CONFIG', `${this.keyPath}.pass: cannot resolve ${address.host}: ${why} (got ${JSON.stringify(this.settings.pass)})`);
    }
  }

  /** Closes the idle kept-alive connections. */
  stop(): void {
    this.pool?.close();
  }

  private answer(r: RouteRequest<RequestInfo, HttpResponse>, body: Readable | null): void {
    const req = r.req;
    const cgi = cgiParams(r, this.protocol.target(r), this.software, this.settings.params);
    const te = cgi.transferEncoding;
    const go = (buffered: BufferedBody | null) => {
      const wire = this.protocol.wire(cgi.pairs, buffered);
      if (wire === null) {
        this.ctx.logger.warning(`${req.method} ${req.url}: its variables do not fit a uwsgi packet (64 KiB); 431`);
        return refuse(r, 431);
      }
      new UpstreamExchange(r, this.ctx, this.target, wire, buffered).start();
    };
    if (cgi.contentLength === undefined && te === undefined && !hasUnsizedH2Body(req)) return go(null);
    if (body === null) return go({ length: 0, data: null, file: null });
    // llhttp de-chunks; any other coding would reach the back end still encoded (nginx: 501 too).
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return refuse(r, 501);
    readRouteBody(r, body, {}, this.bodyTimeout * 1000, this.ctx.logger, go);
  }
}
