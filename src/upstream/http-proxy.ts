/**
 * The `proxy` route action: requests go to HTTP/1.1 upstreams (nginx's
 * `proxy_pass` to an `upstream` block), through undici's Pool, one per
 * upstream (kept-alive connections, at most max_connections). HTTP/2
 * clients reach HTTP/1.1 upstreams the same way; upgrades (WebSocket) go
 * through proxy-tunnel.ts.
 *
 * The request body is read whole first by default (request-body.ts, as for
 * the app action: a slow client holds no upstream connection, and a retry
 * can send it again); with request_buffering off it is streamed, and not
 * retried. Picking (balancer.ts), the tries and the response
 * (proxy-exchange.ts), headers and paths (proxy-headers.ts).
 *
 * Life cycle: constructed from validated settings; start() begins the
 * active health checks; stop() ends them and closes the connections (safe
 * before start).
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { isIP } from 'node:net';
import { GatehouseError } from '../errors.js';
import type { ProxySettings } from '../config/proxy.js';
import type { Handler, HttpResponse, LeanRouteRequest, RequestInfo, RouteRequest, UpgradeRequest } from '../http/handler.js';
import { clientAddress } from '../http/forwarded.js';
import type { Logger } from '../log/logger.js';
import { capBody, hasUnsizedH2Body, readRouteBody } from '../http/request-body.js';
import type { Compression } from '../http/compression.js';
import { Balancer } from './balancer.js';
import { DnsCache } from './dns-cache.js';
import { HealthChecks } from './health-check.js';
import { headerTable } from './proxy-headers.js';
import { ProxyExchange, type ProxyPeer, type ProxyRoute, type UpstreamBody } from './proxy-exchange.js';
import { parseProxyTarget, type ProxyTarget } from './proxy-target.js';
import { upstreamPool } from './proxy-pool.js';
import { tunnel } from './proxy-tunnel.js';

export class HttpProxy implements Handler {
  private readonly route: ProxyRoute;
  private readonly checks: HealthChecks | null;
  private readonly dns: DnsCache;

  constructor(
    settings: ProxySettings,
    logger: Logger,
    /** body_timeout in seconds: a request body that stops arriving this long gets 408. */
    private readonly bodyTimeout: number,
    /** Where the settings came from, for errors: `routes[2].proxy`, or `--proxy`. */
    private readonly where: string,
    /** The front's response compression, applied to what the upstream did not compress. */
    compression: Compression | null,
  ) {
    const ca = settings.tls_ca === undefined ? undefined : readFileSync(settings.tls_ca);
    const dns = (this.dns = new DnsCache(settings.resolve_ttl * 1000));
    const peers: ProxyPeer[] = settings.upstreams.map((u) => {
      const target = parseProxyTarget(u.address) as ProxyTarget;
      const pool = upstreamPool(u.address, target, {
        connections: settings.max_connections || null,
        keepAliveMs: settings.keepalive_timeout * 1000,
        connect: { timeout: settings.connect_timeout * 1000, rejectUnauthorized: settings.tls_verify, lookup: dns.lookup, ...(ca === undefined ? {} : { ca }) },
      });
      return { name: u.address, weight: u.weight, maxFails: u.max_fails, failTimeout: u.fail_timeout * 1000, active: 0, current: 0, fails: 0, firstFailAt: -Infinity, downUntil: 0, healthy: true, backup: u.backup, pool, target };
    });
    this.route = {
      balancer: new Balancer(peers, settings.balance, logger),
      rules: {
        host: settings.host,
        requestHeaders: headerTable(settings.request_headers),
        responseHeaders: headerTable(settings.response_headers),
        passPath: settings.pass_path,
        rewriteLocation: settings.rewrite_location,
      },
      settings,
      logger,
      compression,
    };
    this.checks = settings.health_check === undefined ? null : new HealthChecks(peers, settings.health_check, logger);
  }

  /** Rejects with GH_ERR_CONFIG when an upstream's host name does not resolve (later connections resolve it again once per resolve_ttl). */
  async start(): Promise<void> {
    await Promise.all(
      this.route.balancer.peers.map(async (peer, i) => {
        const host = peer.target.authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
        if (peer.target.socketPath !== undefined || isIP(host) !== 0) return;
        try {
          await this.dns.resolve(host);
        } catch (err) {
          const key = this.where.startsWith('--') ? this.where : `${this.where}.upstreams[${i}]`;
          throw new GatehouseError('GH_ERR_CONFIG', `${key}: cannot resolve ${host} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
      }),
    );
    this.checks?.start();
  }

  async stop(): Promise<void> {
    this.checks?.stop();
    await Promise.all(this.route.balancer.peers.map((p) => p.pool.destroy().catch(() => {})));
  }

  serve(r: RouteRequest): void {
    this.answer(r, r.req);
  }

  serveLean(r: LeanRouteRequest): void {
    this.answer(r, r.body);
  }

  upgrade(u: UpgradeRequest): void {
    tunnel(this.route, u, this.hashKey(u.req));
  }

  private answer(r: RouteRequest<RequestInfo, HttpResponse>, body: Readable | null): void {
    const req = r.req;
    const go = (b: UpstreamBody) => new ProxyExchange(this.route, r, b, this.hashKey(req)).start();
    const sized = req.headers['content-length'] !== undefined;
    if (!sized && req.headers['transfer-encoding'] === undefined && !hasUnsizedH2Body(req)) return go(null);
    // The front's own reader gives no stream for a declared empty body.
    if (body === null) return go(Buffer.alloc(0));
    if (!this.route.settings.request_buffering) {
      if (sized) return go(body); // the front refused a declared length over the limit
      let exchange: ProxyExchange | null = null;
      const capped = capBody(body, r.maxRequestBody, (status) => exchange?.bodyRefused(status));
      exchange = new ProxyExchange(this.route, r, capped, this.hashKey(req));
      return exchange.start();
    }
    readRouteBody(r, body, {}, this.bodyTimeout * 1000, this.route.logger, (read) =>
      go(read.file === null ? (read.data ?? Buffer.alloc(0)) : { file: read.file, length: read.length }),
    );
  }

  /** What `hash` balances on; '' for other methods. */
  private hashKey(req: RequestInfo): string {
    const key = this.route.settings.hash_key;
    if (this.route.settings.balance !== 'hash') return '';
    if (key === 'client') return clientAddress(req);
    if (key.startsWith('header:')) return String(req.headers[key.slice(7).toLowerCase()] ?? '');
    const name = key.slice(7);
    for (const pair of String(req.headers.cookie ?? '').split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
    return '';
  }
}
