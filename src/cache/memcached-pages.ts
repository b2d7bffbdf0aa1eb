/**
 * nginx's memcached_pass with a fallback: GET and HEAD look a key (a
 * template such as `$uri`) up in memcached and, when an app has put a
 * rendered page there, answer with its bytes as they are; a miss, or a
 * memcached that is down, falls through to the route's app. gatehouse never
 * writes these keys: the app does.
 */
import { STATUS_CODES } from 'node:http';
import type { Handler, LeanRouteRequest, RouteRequest } from '../http/handler.js';
import type { Logger } from '../log/logger.js';
import { cacheKey } from './cache-key.js';
import type { LeanHandler } from './cached-handler.js';
import { MemcachedConnection } from './memcached-connection.js';
import { watchedWait } from './watched-wait.js';

export interface MemcachedPagesSettings {
  /** HOST:PORT */
  server: string;
  /** The key template (cache-key.ts). */
  key: string;
  /** The Content-Type of the pages served. */
  contentType: string;
}

/** What memcached takes as a key: up to 250 bytes, no spaces or control characters. */
const KEY = /^[\x21-\x7e\x80-\uffff]{1,250}$/;

export class MemcachedPages implements Handler {
  /** Upgrades (WebSockets) are the inner handler's: nothing to cache or look up. */
  readonly upgrade: Handler['upgrade'];
  private readonly memcached: MemcachedConnection;

  constructor(
    private readonly inner: LeanHandler,
    private readonly settings: MemcachedPagesSettings,
    logger: Logger,
  ) {
    this.upgrade = inner.upgrade?.bind(inner);
    this.memcached = new MemcachedConnection(settings.server, logger, `memcached ${settings.server}`);
  }

  serve(r: RouteRequest): void {
    this.handle({ ...r, body: r.req });
  }

  serveLean(r: LeanRouteRequest): void {
    this.handle(r);
  }

  stop(): void {
    this.memcached.close();
  }

  private handle(r: LeanRouteRequest): void {
    const method = r.req.method;
    const key = cacheKey(this.settings.key, { scheme: r.scheme, host: r.host, url: r.req.url ?? '/', cookie: r.req.headers.cookie });
    if ((method !== 'GET' && method !== 'HEAD') || Buffer.byteLength(key) > 250 || !KEY.test(key)) return this.inner.serveLean(r);
    // A client that goes away during the lookup (a reset or a FIN) is logged 499, and no app runs for it.
    watchedWait<Buffer | null>(
      r,
      (then) => {
        let wanted = true;
        void this.memcached.run('get', async (client) => (await client.get(key)).value, null).then((page) => wanted && then(page));
        return () => (wanted = false);
      },
      (page) => {
        if (page === null) return this.inner.serveLean(r);
        const { res } = r;
        res.writeHead(200, STATUS_CODES[200]!, { 'Content-Type': this.settings.contentType, 'Content-Length': String(page.length) });
        res.end(method === 'HEAD' ? undefined : page);
        r.log(200, method === 'HEAD' ? 0 : page.length);
      },
    );
  }
}
