/**
 * A running gatehouse: the HTTP front, one worker pool per app, the logs.
 * Life cycle: `start()` binds first (a port in use fails before any Python
 * starts), then boots the pools; `stop()` is safe after a half-done start.
 */
import { readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_DEFAULTS, type AppSettings, type MemcachedSettings, type RouteSettings } from './config/schema.js';
import type { Site } from './config/site.js';
import { Compression } from './http/compression.js';
import { HttpFront } from './front/http-front.js';
import { Router, type RouteEntry } from './front/router.js';
import type { ExchangeContext, Handler, RequestInfo } from './http/handler.js';
import { Redirect } from './handlers/redirect.js';
import { Respond } from './handlers/respond.js';
import type { FileCache } from './handlers/file-cache.js';
import type { StaticFiles } from './handlers/static-files.js';
import { WsgiApp } from './wsgi/wsgi-app.js';
import type { HttpProxy } from './upstream/http-proxy.js';
import type { CacheTier } from './cache/cache-tier.js';
import type { MemcachedPages } from './cache/memcached-pages.js';
import { cacheSettings, routeCacheRules } from './config/cache-schema.js';
import type { UpstreamAction } from './upstream/upstream-action.js';
import { AccessLog } from './log/access-log.js';
import { clientAddress } from './http/forwarded.js';
import { resolveUser } from './config/users.js';
import { watchForReload } from './pool/reload-watch.js';
import { Logger } from './log/logger.js';
import { LogFile } from './log/log-file.js';
import { WorkerPool } from './pool/worker-pool.js';
import { WebSocketFront } from './asgi/websocket-front.js';

export const VERSION: string = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8'),
).version;

/** A route action with a life cycle: start() resolves its back ends' names, stop() closes its connections. */
interface Upstream {
  start(): Promise<void>;
  stop(): void | Promise<void>;
}

/** SERVER_SOFTWARE, for the apps and the back ends of the fastcgi, scgi and uwsgi actions. */
const SOFTWARE = `gatehouse/${VERSION}`;

/** The classes of the route actions that not every site uses: see importActions. */
interface OptionalActions {
  StaticFiles?: typeof StaticFiles;
  FileCache?: typeof FileCache;
  HttpProxy?: typeof HttpProxy;
  UpstreamAction?: typeof UpstreamAction;
  CacheTier?: typeof CacheTier;
  MemcachedPages?: typeof MemcachedPages;
}

/**
 * Imports the static, proxy, fastcgi/scgi/uwsgi, cache and memcached actions
 * only when some route uses them: a server without such routes never reads their
 * modules, nor the libraries under them, and is that much smaller in memory.
 */
async function importActions(site: Site): Promise<OptionalActions> {
  const uses = (action: keyof RouteSettings) => site.routes.some((route) => route[action] !== undefined);
  const cached = site.routes.some((route) => route.app !== undefined && routeCacheRules(site.settings, route.cache) !== null);
  const [files, fileCache, proxy, upstream, cache, memcached] = await Promise.all([
    uses('static') ? import('./handlers/static-files.js') : undefined,
    uses('static') ? import('./handlers/file-cache.js') : undefined,
    uses('proxy') ? import('./upstream/http-proxy.js') : undefined,
    uses('fastcgi') || uses('scgi') || uses('uwsgi') ? import('./upstream/upstream-action.js') : undefined,
    cached ? import('./cache/cache-tier.js') : undefined,
    uses('memcached') ? import('./cache/memcached-pages.js') : undefined,
  ]);
  return {
    StaticFiles: files?.StaticFiles,
    FileCache: fileCache?.FileCache,
    HttpProxy: proxy?.HttpProxy,
    UpstreamAction: upstream?.UpstreamAction,
    CacheTier: cache?.CacheTier,
    MemcachedPages: memcached?.MemcachedPages,
  };
}

/** An app's worker pool, with what it needs to spawn its Python processes. */
function createPool(app: AppSettings, gracefulTimeout: number, logger: Logger): { pool: WorkerPool; owner: { uid?: number; gid?: number } } {
  const env: NodeJS.ProcessEnv = { ...process.env, ...app.env, PYTHONUNBUFFERED: '1' };
  let python = app.python;
  if (app.venv !== undefined) {
    python = join(app.venv, 'bin', 'python');
    env.VIRTUAL_ENV = app.venv;
    env.PATH = join(app.venv, 'bin') + delimiter + (env.PATH ?? '');
    delete env.PYTHONHOME;
  }
  const owner = resolveUser(app.user, app.group, app.name === 'main' ? '--' : `apps.${app.name}.`);
  const pool = new WorkerPool(
    {
      spawn: {
        python,
        cwd: app.chdir,
        env,
        settings: {
          app: app.app,
          pythonpath: app.pythonpath,
          threads: app.threads,
          worker_scheduling: app.worker_scheduling,
          server_software: SOFTWARE,
          interface: app.interface,
          lifespan: app.lifespan,
          asgi_path: app.asgi_path,
          timeout: app.timeout,
          graceful_timeout: gracefulTimeout,
        },
        ...owner,
      },
      workers: app.workers,
      threads: app.threads,
      interface: app.interface,
      maxConcurrency: app.max_concurrency,
      maxConcurrencyGiven: app.max_concurrency !== APP_DEFAULTS.max_concurrency,
      gracefulTimeout,
      timeout: app.timeout,
      queueSize: app.queue_size,
      queueTimeout: app.queue_timeout,
      maxRequests: app.max_requests,
      maxRequestsJitter: app.max_requests_jitter,
      maxRss: app.max_rss * 2 ** 20,
      preload: app.preload,
      sticky: app.sticky,
    },
    logger,
  );
  return { pool, owner };
}

export class Gatehouse {
  readonly logger: Logger;
  private readonly errorLog: LogFile;
  /** The pools by app name. */
  readonly pools = new Map<string, WorkerPool>();
  readonly front: HttpFront;
  private readonly accessLog: AccessLog<RequestInfo> | null;
  private stopWatching: (() => void)[] = [];
  /** The back ends of proxy, fastcgi, scgi and uwsgi routes: started (names resolved) before listening. */
  private readonly upstreams: Upstream[] = [];
  /** The HTTP cache, when some route is cached. */
  private cache: CacheTier | undefined;
  /** The ASGI apps' WebSockets (their keepalive pings). */
  private readonly websockets: WebSocketFront;

  /** A server for `site`, with the route actions it uses loaded (importActions). */
  static async create(site: Site): Promise<Gatehouse> {
    return new Gatehouse(site, await importActions(site));
  }

  private constructor(
    readonly site: Site,
    private readonly actions: OptionalActions,
  ) {
    const settings = site.settings;
    // Its own write errors can only go to stderr.
    this.errorLog = new LogFile(settings.error_log, '--error-log', process.stderr, (err) => process.stderr.write(`gatehouse: error log ${settings.error_log}: ${err.message}\n`), true);
    this.logger = new Logger(settings.log_level, this.errorLog);
    this.accessLog = settings.access_log
      ? new AccessLog(settings.access_log, settings.access_log_format, (err) => this.logger.error(`access log: ${err.message}`), clientAddress)
      : null;
    const compression = settings.compress.length > 0 ? new Compression(settings.compress, settings.compress_min_size) : null;
    let fileCache: FileCache | undefined;
    const ctx: ExchangeContext = { logger: this.logger, accessLog: this.accessLog, draining: false, compression };
    const apps = new Map<string, WsgiApp>();
    this.websockets = new WebSocketFront({
      maxSize: settings.ws_max_size,
      pingInterval: settings.ws_ping_interval,
      pingTimeout: settings.ws_ping_timeout,
      perMessageDeflate: settings.ws_per_message_deflate,
    });
    for (const app of site.apps) {
      const { pool, owner } = createPool(app, settings.graceful_timeout, site.apps.length > 1 ? this.logger.named(app.name) : this.logger);
      this.pools.set(app.name, pool);
      apps.set(app.name, new WsgiApp(pool, ctx, owner, settings.body_timeout, app.max_temp_file_size, this.websockets));
    }
    // site.routes: the --static and --proxy routes first, then the file's.
    const shorthands = settings.static.length + settings.proxy.length;
    const keyPath = (i: number, action: string) => (i < shorthands ? `--${action}` : `routes[${i - shorthands}].${action}`);
    const entries: RouteEntry[] = site.routes.map((route, i) => {
      let handler: Handler;
      const cacheRules = routeCacheRules(settings, route.cache);
      if (route.app !== undefined) {
        const app = route.memcached === undefined ? apps.get(route.app)! : this.memcachedPages(apps.get(route.app)!, route.memcached);
        handler = cacheRules === null ? app : (this.cache ??= new actions.CacheTier!(cacheSettings(settings), this.logger)).wrap(app, cacheRules);
      } else if (route.static !== undefined) {
        fileCache ??= new actions.FileCache!(settings.static_cache);
        handler = new actions.StaticFiles!(route.static, compression, fileCache);
      }
      else if (route.proxy !== undefined) handler = this.upstream(new actions.HttpProxy!(route.proxy, this.logger, settings.body_timeout, keyPath(i, 'proxy'), compression));
      else if (route.redirect !== undefined) handler = new Redirect(route.redirect.status, route.redirect.location);
      else if (route.fastcgi !== undefined) handler = this.upstream(actions.UpstreamAction!.fastcgi(route.fastcgi, ctx, SOFTWARE, settings.body_timeout, keyPath(i, 'fastcgi')));
      else if (route.scgi !== undefined) handler = this.upstream(actions.UpstreamAction!.scgi(route.scgi, ctx, SOFTWARE, settings.body_timeout, keyPath(i, 'scgi')));
      else if (route.uwsgi !== undefined) handler = this.upstream(actions.UpstreamAction!.uwsgi(route.uwsgi, ctx, SOFTWARE, settings.body_timeout, keyPath(i, 'uwsgi')));
      else handler = new Respond(route.return!.status, route.return!.body, route.return!.content_type);
      return { hosts: route.host ?? [], path: route.path, maxRequestBody: route.max_request_body ?? settings.max_request_body, handler, internal: route.internal === true };
    });
    this.front = new HttpFront(new Router(entries), ctx, settings);
  }

  /** The memcached lookup before an app (a route's `memcached`). */
  private memcachedPages(app: WsgiApp, m: MemcachedSettings): MemcachedPages {
    const pages = new this.actions.MemcachedPages!(app, { server: m.server, key: m.key, contentType: m.content_type }, this.logger);
    this.stopWatching.push(() => pages.stop());
    return pages;
  }

  private upstream<T extends Upstream>(action: T): T {
    this.upstreams.push(action);
    return action;
  }

  /** Binds and boots; returns the addresses actually bound (port 0 resolved), as URLs. */
  async start(): Promise<string[]> {
    this.logger.info(`Starting gatehouse ${VERSION}`);
    if (this.site.file) this.logger.info(`Configuration: ${this.site.file}`);
    await Promise.all(this.upstreams.map((upstream) => upstream.start()));
    const bound = await this.front.listen(this.site.listeners, this.site.apps.reduce((n, app) => n + app.workers, 0));
    for (const address of bound) this.logger.info(`Listening at: ${address} (${process.pid})`);
    await Promise.all([...this.pools.values()].map((pool) => pool.start()));
    for (const app of this.site.apps) {
      const pool = this.pools.get(app.name)!;
      const sourceDirs = app.reload ? [app.chdir, ...app.pythonpath] : [];
      this.stopWatching.push(watchForReload({ touchFile: app.reload_on_touch, sourceDirs }, (reason) => pool.reload(reason), this.logger));
    }
    return bound;
  }

  /** Imports each app in one worker, resolves the upstreams' host names, and stops: `--check-config`. */
  static async check(site: Site): Promise<void> {
    const one = { ...site, apps: site.apps.map((a) => ({ ...a, workers: 1 })) };
    const server = await Gatehouse.create(one);
    try {
      for (const upstream of server.upstreams) await upstream.start();
      for (const pool of server.pools.values()) await pool.start();
    } finally {
      await Promise.all(server.upstreams.map((upstream) => upstream.stop()));
      await Promise.all([...server.pools.values()].map((pool) => pool.stop(0)));
      await server.cache?.stop();
    }
  }

  /** SIGHUP: a graceful reload of every app, and of the TLS listeners' certificates (as nginx's reload). */
  reload(reason: string): void {
    this.reloadCertificates(reason);
    for (const pool of this.pools.values()) pool.reload(reason);
  }

  /** Listener by listener: one whose files cannot all be used keeps serving its old certificates. */
  private reloadCertificates(reason: string): void {
    for (const { tlsContext } of this.front.servers) {
      if (tlsContext === undefined) continue;
      const listener = `listener ${tlsContext.listener.bind}`;
      try {
        tlsContext.reload();
        this.logger.info(`Reloaded the certificates of ${listener} (${reason})`);
      } catch (err) {
        this.logger.error(`Certificates of ${listener} not reloaded, the old ones keep serving: ${(err as Error).message}`);
      }
    }
  }

  /** SIGTTIN / SIGTTOU: one worker more or less in every app. */
  resize(delta: 1 | -1): void {
    for (const pool of this.pools.values()) pool.resize(delta);
  }

  /** SIGUSR1: reopen the log files (after logrotate moved them). */
  reopenLogs(): void {
    this.errorLog.reopen();
    this.accessLog?.reopen();
    this.logger.info('Reopened log files');
  }

  /**
   * Graceful: stop accepting, let requests under way finish within
   * `graceSeconds` (bodies still arriving, responses still flowing to slow
   * clients), then stop the workers and cut what is left.
   */
  async stop(graceSeconds: number): Promise<void> {
    for (const stop of this.stopWatching) stop();
    const deadline = performance.now() + graceSeconds * 1000;
    await this.front.drain(deadline);
    await Promise.all([...this.pools.values()].map((pool) => pool.stop(Math.max(0, deadline - performance.now()))));
    this.front.closeAll();
    this.websockets.stop();
    await Promise.all(this.upstreams.map((upstream) => upstream.stop()));
    await this.cache?.stop();
    await this.accessLog?.close();
  }
}
