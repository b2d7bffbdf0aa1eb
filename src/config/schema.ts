/**
 * The configuration schema: the single source of truth for what gatehouse
 * accepts, in the config file's words (snake_case keys). CLI flags are the
 * short form of the same keys (`--max-requests` is `max_requests`), generated
 * from `OPTIONS` (src/config/options.ts); site.ts turns a validated config
 * into the listeners, apps and routes that run.
 *
 * Each field's comment is its user documentation; the README's config file
 * section follows it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { LOG_LEVELS } from '../log/logger.js';
import { accessLogFormat } from '../log/access-log-format.js';
import { bindAddress, count, directory, file, hostPattern, path, seconds, size, trustedPeer, urlPath } from './setting-types.js';
import { proxySchema, proxyShorthand } from './proxy.js';
import { cacheSchema, cacheStoreSchema, routeCacheSchema } from './cache-schema.js';
import { memcachedSchema } from './memcached-schema.js';
import { fastcgiSchema, scgiSchema, uwsgiSchema } from './upstream-actions.js';



export const COMPRESSIONS = ['br', 'gzip'] as const;

/** What an app without `app` is told (also by site.ts, for an [apps.NAME] table without it). */
export const APP_MISSING = 'must name the application (WSGI or ASGI), e.g. myproject.wsgi:application';

/** What a list of addresses must be: a config file may give one as a string. */
const ADDRESSES = 'must be an address such as 127.0.0.1:8000, or a list of them';

/** The settings of one application: its own pool of Python workers. */
export function appSchema(base: string) {
  return z.object({
    /** The WSGI or ASGI application: module:callable, module:factory(), or a path to a .py file. */
    app: z.string().min(1, APP_MISSING),
    /**
     * wsgi, asgi, or auto: a coroutine function, or an object whose __call__
     * is one (FastAPI, Starlette, Django's get_asgi_application()), is ASGI,
     * another callable WSGI.
     */
    interface: z.enum(['auto', 'wsgi', 'asgi'], { error: 'must be auto, wsgi or asgi' }),
    /** ASGI: requests each worker runs at once on its event loop (a WSGI app: threads; max_concurrency is then ignored, with a warning). */
    max_concurrency: count(1).max(1_000_000, 'must be at most 1000000'),
    /** ASGI lifespan: auto (used when the app supports it), on (required), off. */
    lifespan: z.enum(['auto', 'on', 'off'], { error: 'must be auto, on or off' }),
    /**
     * ASGI, an app mounted under a route's path: scope["path"] with the mount
     * (full, the ASGI spec) or below it (below-mount, what Starlette before
     * 0.33 routes on); auto picks below-mount for such a Starlette.
     */
    asgi_path: z.enum(['auto', 'full', 'below-mount'], { error: 'must be auto, full or below-mount' }),
    /** Number of Python worker processes. */
    workers: count(1),
    /** Requests each worker of a WSGI app runs at once, in threads (an ASGI app: max_concurrency; threads is then ignored, with a warning). */
    threads: count(1).max(1024, 'must be at most 1024'),
    /**
     * How Linux schedules the workers: batch (SCHED_BATCH: a worker woken by
     * a request does not preempt the process running, often the front, which
     * goes on reading and answering clients; and each worker in a session of
     * its own, so that where the kernel shares CPU out by session (autogroup)
     * the workers do not take the front's share) or normal (the policy and
     * session gatehouse itself was started with, as any child process).
     */
    worker_scheduling: z.enum(['batch', 'normal'], { error: 'must be batch or normal' }),
    /** The interpreter: a command on PATH or a path. */
    python: z.string().min(1).transform((p) => (p.includes('/') ? resolve(base, p) : p)),
    /** A virtualenv whose interpreter and site-packages the workers use. */
    venv: directory(base)
      .superRefine((dir, ctx) => {
        if (existsSync(dir) && !existsSync(`${dir}/bin/python`)) ctx.addIssue({ code: 'custom', message: `not a virtualenv: ${dir}/bin/python does not exist` });
      })
      .optional(),
    /** The directory the workers run in and load the app from (on sys.path). Default: the config file's directory, or the current one. */
    chdir: directory(base).optional(),
    /** Directories added to the front of sys.path. */
    pythonpath: z.array(path(base), { error: 'must be directories (a list, or one string of them separated by commas)' }),
    /** Environment variables for the workers (gunicorn's --env). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), z.string()),
    /** Run the workers as this user / group (needs root). */
    user: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    /** A request running longer gets 504 and its worker is replaced; a worker still loading the app after this long is killed (a boot failure); 0 disables. */
    timeout: seconds,
    /** Requests that may wait for a free worker; past it, 503. */
    queue_size: count(0),
    /** A request waiting this long for a worker gets 503; 0 waits forever. */
    queue_timeout: seconds,
    /** Replace a worker after this many requests (plus 0..max_requests_jitter); 0 disables. */
    max_requests: count(0),
    max_requests_jitter: count(0),
    /** Replace a worker whose resident memory exceeds this many megabytes; 0 disables. */
    max_rss: z.number().min(0, 'must be 0 or more megabytes'),
    /**
     * Bytes of a response the temp file holds at most for a slow client (nginx's
     * uwsgi_max_temp_file_size), past the 1 MiB kept in memory; past them the app waits for
     * the client: an ASGI app's sends for that response, a WSGI worker as a whole. 0: none.
     */
    max_temp_file_size: size,
    /** Send each client's requests (by its address) to the same worker while it serves, as nginx's ip_hash. */
    sticky: z.boolean(),
    /** Import the app once and fork the workers from it. */
    preload: z.boolean(),
    /** Development: reload the workers when a .py file changes. */
    reload: z.boolean(),
    /** Reload the workers gracefully when this file is touched. */
    reload_on_touch: file(base).optional(),
  }).partial().strict();
}

/** What an app gets for the settings neither it nor the top level gives. */
export const APP_DEFAULTS = {
  workers: availableParallelism(),
  threads: 1,
  worker_scheduling: 'batch' as 'batch' | 'normal',
  interface: 'auto' as 'auto' | 'wsgi' | 'asgi',
  max_concurrency: 1000,
  lifespan: 'auto' as 'auto' | 'on' | 'off',
  asgi_path: 'auto' as 'auto' | 'full' | 'below-mount',
  python: 'python3',
  pythonpath: [] as string[],
  env: {} as Record<string, string>,
  timeout: 30,
  queue_size: 1024,
  queue_timeout: 30,
  max_requests: 0,
  max_requests_jitter: 0,
  max_rss: 0,
  max_temp_file_size: 1024 ** 3,
  preload: false,
  sticky: false,
  reload: false,
};

/** Why a certificate and key (PEM files that exist) cannot serve TLS, if they cannot: not PEM, or a key of another certificate. */
export function keyPairProblem(certfile: string, keyfile: string): string | undefined {
  if (!existsSync(certfile) || !existsSync(keyfile)) return undefined; // reported as missing already
  try {
    createSecureContext({ cert: readFileSync(certfile), key: readFileSync(keyfile) });
    return undefined;
  } catch (err) {
    return `cannot use this certificate and key: ${(err as Error).message}`;
  }
}

/**
 * One certificate and its key. `hosts`: the names (SNI) it is served for,
 * `*.example.com` wildcards one label deep, `*` to make it the default;
 * by default the DNS names in its subjectAltName (else its CN).
 */
function certificateSchema(base: string) {
  return z
    .object({
      certfile: file(base),
      keyfile: file(base),
      hosts: z.array(hostPattern).optional(),
    })
    .strict()
    .superRefine((c, ctx) => {
      const problem = keyPairProblem(c.certfile, c.keyfile);
      if (problem) ctx.addIssue({ code: 'custom', path: ['certfile'], message: problem });
    });
}

export const TLS_VERSIONS = ['1.2', '1.3'] as const;

export const LISTENER_PROTOCOLS = ['http', 'uwsgi', 'fastcgi', 'scgi'] as const;
const socketMode = z.string().regex(/^0?[0-7]{3}$/, 'must be an octal mode such as 660 or 666');

function listenerSchema(base: string) {
  return z
    .object({
      /** HOST:PORT, [::1]:PORT or unix:PATH. */
      bind: bindAddress,
      /**
       * TLS: the certificate (PEM, leaf first, then its chain) and key for
       * this listener. Apps see wsgi.url_scheme https and HTTPS=on.
       */
      certfile: file(base).optional(),
      keyfile: file(base).optional(),
      /**
       * TLS with several certificates, picked by the name the client asks for
       * (SNI): an exact name, then a wildcard; the first (after certfile, when
       * given too) is the default, for unknown names and clients without SNI.
       */
      certificates: z.array(certificateSchema(base)).optional(),
      /** The oldest TLS version accepted: "1.2" (default) or "1.3". */
      tls_min_version: z.enum(TLS_VERSIONS, { error: 'must be "1.2" or "1.3"' }).default('1.2'),
      /**
       * On a TLS listener, offer HTTP/2 by ALPN (HTTP/1.1 clients still get
       * HTTP/1.1 on the same port); false: HTTPS with HTTP/1.1 only.
       */
      http2: z.boolean().default(true),
      /**
       * What the listener speaks: "http", or a front end's back-end protocol,
       * "uwsgi", "fastcgi" or "scgi" (nginx's uwsgi_pass, fastcgi_pass,
       * scgi_pass); the requests go through the same routes.
       */
      protocol: z.enum(LISTENER_PROTOCOLS, { error: 'must be "http", "uwsgi", "fastcgi" or "scgi"' }).default('http'),
      /** A unix socket's mode, octal as chmod takes it (e.g. "660"). */
      chmod: socketMode.optional(),
      /** A plain listener answers every request with a redirect to https on this port (true: 443): 301 for GET/HEAD, 308 otherwise. */
      redirect_https: z.union([z.boolean(), z.number().int().min(1).max(65535)]).default(false),
    })
    .strict()
    .superRefine((l, ctx) => {
      if ((l.certfile === undefined) !== (l.keyfile === undefined)) {
        ctx.addIssue({ code: 'custom', path: [l.certfile === undefined ? 'certfile' : 'keyfile'], message: 'certfile and keyfile go together' });
      } else if (l.certfile !== undefined && l.keyfile !== undefined) {
        const problem = keyPairProblem(l.certfile, l.keyfile);
        if (problem) ctx.addIssue({ code: 'custom', path: ['certfile'], message: problem });
      }
      if (l.protocol !== 'http' && (l.certfile !== undefined || l.certificates !== undefined || l.redirect_https !== false)) {
        ctx.addIssue({ code: 'custom', path: ['protocol'], message: `a ${l.protocol} listener takes no TLS or redirect_https (the front end in front of it does)` });
      }
      if (l.redirect_https !== false && (l.certfile !== undefined || l.certificates !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['redirect_https'], message: 'only a plain (non-TLS) listener redirects to https' });
      }
    });
}

function staticSchema(base: string) {
  return z
    .object({
      /** The directory served. */
      root: directory(base),
      /** Files tried for a directory URL. */
      index: z.array(z.string().min(1)).default(['index.html']),
      /** Cache-Control sent with every file, e.g. "public, max-age=86400". */
      cache_control: z.string().min(1).optional(),
      /** Seconds until the files expire: sets Expires and Cache-Control max-age (nginx's `expires`). */
      expires: seconds.optional(),
      /** Serve FILE.br / FILE.gz instead of FILE when the client accepts it and the sibling exists. */
      precompressed: z.boolean().default(true),
      /** Follow symlinks that point outside the root. */
      allow_outside_symlinks: z.boolean().default(false),
    })
    .strict();
}

/** `--static URL=DIR`: a route with a static action, DIR checked as `root` is and the action's defaults. */
function staticShorthand(base: string) {
  const action = staticSchema(base);
  return z.string().transform((text, ctx) => {
    const eq = text.indexOf('=');
    const path = text.slice(0, eq).replace(/\/+$/, '') || '/';
    const dir = text.slice(eq + 1);
    const problem =
      eq < 0 ? 'expected URL=DIR, e.g. /static=./static'
      : !path.startsWith('/') ? 'the URL part must start with /'
      : dir === '' ? 'the DIR part is empty (it would serve the current directory)'
      : undefined;
    const parsed = problem === undefined ? action.safeParse({ root: dir }) : undefined;
    if (parsed?.success) return { path, static: parsed.data };
    ctx.addIssue({ code: 'custom', message: problem ?? parsed!.error!.issues[0]!.message });
    return z.NEVER;
  });
}

const redirectSchema = z
  .object({
    status: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], { error: 'must be 301, 302, 303, 307 or 308' }).default(301),
    /** Target URL; $scheme, $host, $request_uri (path and query) and $path (below the route's prefix) are replaced. */
    location: z.string().min(1),
  })
  .strict();

const returnSchema = z
  .object({
    status: z.number({ error: 'must be an HTTP status from 100 to 599' }).int('must be an HTTP status from 100 to 599').min(100, 'must be an HTTP status from 100 to 599').max(599, 'must be an HTTP status from 100 to 599'),
    body: z.string().default(''),
    content_type: z.string().min(1).default('text/plain; charset=utf-8'),
  })
  .strict();

function routeSchema(base: string) {
  return z
    .object({
      /** Host names this route answers for; absent: any host (the default server). */
      host: z.union([hostPattern.transform((h) => [h]), z.array(hostPattern).min(1)]).optional(),
      /** URL prefix; the longest matching prefix wins. */
      path: urlPath.transform((p) => p.replace(/\/+$/, '') || '/').default('/'),
      /** Largest request body on this route (413 past it). */
      max_request_body: size.optional(),
      /** Reached only by an app's or back end's X-Accel-Redirect (false): a client asking for it gets 404, as nginx's `internal`. */
      internal: z.boolean({ error: 'must be true or false' }).optional(),
      /** Actions: exactly one. */
      app: z.string().min(1).optional(),
      static: staticSchema(base).optional(),
      redirect: redirectSchema.optional(),
      return: returnSchema.optional(),
      /** Reverse proxy to HTTP upstreams (README: "Reverse proxy"). */
      proxy: proxySchema(base).optional(),
      /** A FastCGI, SCGI or uwsgi back end (README: "Back ends"). */
      fastcgi: fastcgiSchema(base).optional(),
      scgi: scgiSchema(base).optional(),
      uwsgi: uwsgiSchema(base).optional(),
      /** Cache this route's responses (app routes): false, true or a table of rules (src/config/cache-schema.ts). */
      cache: routeCacheSchema().optional(),
      /** Serve pages the app put in memcached, falling through to the app on a miss (src/config/memcached-schema.ts). */
      memcached: memcachedSchema.optional(),
    })
    .strict()
    .superRefine((r, ctx) => {
      if (r.cache !== undefined && r.cache !== false && r.app === undefined) ctx.addIssue({ code: 'custom', path: ['cache'], message: 'only app routes are cached' });
      if (r.memcached !== undefined && r.app === undefined) ctx.addIssue({ code: 'custom', path: ['memcached'], message: 'needs the app a miss falls through to' });
      const actions = (['app', 'static', 'redirect', 'return', 'proxy', 'fastcgi', 'scgi', 'uwsgi'] as const).filter((a) => r[a] !== undefined);
      if (actions.length !== 1) {
        ctx.addIssue({ code: 'custom', message: actions.length === 0 ? 'needs an action: app, static, redirect, return, proxy, fastcgi, scgi or uwsgi' : `has ${actions.join(' and ')}: give one action per route` });
      }
    });
}

/**
 * The whole configuration. The top level holds the flat keys (what the CLI
 * flags set): server-wide settings, the shorthand for one listener list
 * (`bind`, `certfile`, `keyfile`), `static` URL=DIR routes, and app settings
 * that describe the app named `main` when `app` is given and are the
 * defaults of every `[apps.NAME]` otherwise.
 */
export function configSchema(base: string) {
  return appSchema(base)
    .extend({
      bind: z.array(bindAddress, { error: ADDRESSES }).optional(),
      /** Listeners for the uwsgi, FastCGI and SCGI protocols (uWSGI's flags), beside `bind`; unix sockets get `chmod_socket`. */
      uwsgi_socket: z.array(bindAddress, { error: ADDRESSES }).default([]),
      fastcgi_socket: z.array(bindAddress, { error: ADDRESSES }).default([]),
      scgi_socket: z.array(bindAddress, { error: ADDRESSES }).default([]),
      chmod_socket: socketMode.optional(),
      certfile: file(base).optional(),
      keyfile: file(base).optional(),
      /** URL=DIR: serve DIR's files at URL. */
      static: z.array(staticShorthand(base), { error: 'must be URL=DIR, or a list of them' }).default([]),
      /** URL=UPSTREAM: pass requests at URL to UPSTREAM (see the proxy action). */
      proxy: z.array(proxyShorthand(base), { error: 'must be URL=UPSTREAM, or a list of them' }).default([]),
      log_level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
      /** File for the access log, or '-' for stdout. */
      access_log: z.string().min(1).transform((f) => (f === '-' ? f : resolve(base, f))).optional(),
      /** File for the error log (gunicorn's --error-logfile), or '-' for stderr. */
      error_log: z.string().min(1).transform((f) => (f === '-' ? f : resolve(base, f))).default('-'),
      /** combined, json, or a format with gunicorn's atoms (%(h)s %(r)s ...); see src/log/access-log-format.ts. */
      access_log_format: z
        .string()
        .min(1)
        .superRefine((format, ctx) => {
          const problem = accessLogFormat(format).problem;
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .default('combined'),
      graceful_timeout: seconds.default(30),
      /** ASGI WebSockets: the largest message taken from a client; past it the socket is closed with 1009. */
      ws_max_size: size.default(16 * 1024 ** 2),
      /** ASGI WebSockets: seconds between pings to each client; 0: none. */
      ws_ping_interval: seconds.default(20),
      /** ASGI WebSockets: a pong not back within this many seconds ends the socket. */
      ws_ping_timeout: seconds.default(20),
      /** ASGI WebSockets: permessage-deflate when the client offers it (true, or "on" / "off"). */
      ws_per_message_deflate: z.union([z.boolean(), z.enum(['on', 'off']).transform((v) => v === 'on')], { error: 'must be true, false, on or off' }).default(true),
      max_request_body: size.default(100 * 1024 ** 2),
      /** Peers whose X-Forwarded-* / Forwarded headers are believed; none by default, as the edge server (see src/http/forwarded.ts). */
      forwarded_allow_ips: z.array(trustedPeer, { error: 'must be addresses (a list, or one string of them separated by commas)' }).default([]),
      /** Time a client has to send the request headers (slowloris); 408 and close. */
      header_timeout: seconds.default(60),
      /** Time a request body may go without data arriving; 408 and close. */
      body_timeout: seconds.default(60),
      /** How long an idle keep-alive connection is kept. */
      keepalive_timeout: seconds.default(5),
      /** Largest request head (request line and headers); 431 past it, 414 when the target alone reaches it (src/front/uri-too-long.ts). */
      max_header_size: size.default(16 * 1024),
      /** Open client connections at most, over all listeners; past it new connections are closed at once. 0: no limit. */
      max_connections: count(0).default(10_000),
      /** Response compressions offered, in order of preference. */
      compress: z.array(z.enum(COMPRESSIONS, { error: "must be br or gzip, or 'off' alone for none" })).default(['br', 'gzip']),
      /** Responses smaller than this are sent as they are. */
      compress_min_size: size.default(1024),
      /** Memory for small static files (up to 64k each), kept and rechecked every second; 0 disables. */
      static_cache: size.default(64 * 1024 ** 2),
      /** The HTTP cache for every app route: a size (--cache 256m) or a table (src/config/cache-schema.ts). */
      cache: cacheSchema().optional(),
      /** A store shared by several gatehouse instances, memcached://HOST:PORT or redis://HOST:PORT[/DB]; caches every app route. */
      cache_store: cacheStoreSchema.optional(),
      check_config: z.boolean().default(false),
      listeners: z.array(listenerSchema(base)).optional(),
      apps: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'app names are letters, digits, _ . -'), appSchema(base)).optional(),
      routes: z.array(routeSchema(base)).optional(),
    })
    .strict();
}

export type RawConfig = z.input<ReturnType<typeof configSchema>>;
export type Config = z.output<ReturnType<typeof configSchema>>;
type AppFields = z.output<ReturnType<typeof appSchema>>;
/** An app's settings once its own, the top level's and the defaults are merged. */
export type AppSettings = AppFields & typeof APP_DEFAULTS & { name: string; app: string; chdir: string };
export type ListenerSettings = z.output<ReturnType<typeof listenerSchema>>;
export type RouteSettings = z.output<ReturnType<typeof routeSchema>>;
export type StaticSettings = z.output<ReturnType<typeof staticSchema>>;
export type MemcachedSettings = z.output<typeof memcachedSchema>;
