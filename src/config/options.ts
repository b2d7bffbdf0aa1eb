/**
 * The CLI flags: the short form of the config file's top-level keys. Each
 * flag is the key with `-` for `_` (`--max-requests` sets `max_requests`);
 * `doc` is the user documentation shown by `gatehouse --help`.
 */
import { LOG_LEVELS } from '../log/logger.js';

/**
 * How a flag's text becomes the key's value: `path` and `paths` are made
 * absolute against the current directory (a config file's paths are against
 * its own directory), `list` and `paths` repeat, `pairs` is KEY=VALUE repeated.
 */
type Kind = 'string' | 'path' | 'list' | 'paths' | 'pairs' | 'int' | 'number' | 'seconds' | 'size' | 'flag';

export interface OptionSpec {
  /** The config key, snake_case. */
  key: string;
  short?: string;
  /** Another long name for the flag (uWSGI's or gunicorn's spelling). */
  alias?: string;
  kind: Kind;
  /** Placeholder in --help ('' for a flag that takes no value). */
  arg: string;
  doc: string;
  /**
   * An environment variable that gives the key's value when neither a flag
   * nor the config file does, as it does for gunicorn and uvicorn (PaaS and
   * container images set them); `env.value` makes the flag's text of it.
   */
  env?: { name: string; value?: (text: string) => string };
}

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'config', short: 'c', kind: 'path', arg: 'FILE',
    doc: 'Read settings, listeners, apps and routes from a TOML file; flags given too override its top-level keys.' },
  { key: 'bind', short: 'b', kind: 'list', arg: 'ADDRESS',
    doc: 'Address to listen on: HOST:PORT, :PORT (every interface), [::1]:PORT or unix:PATH. Repeat for several. Default 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set.',
    env: { name: 'PORT', value: (port) => `0.0.0.0:${port}` } },
  { key: 'uwsgi_socket', short: 's', alias: 'socket', kind: 'list', arg: 'ADDRESS',
    doc: "Also listen for the uwsgi protocol (nginx's uwsgi_pass) at ADDRESS, as for --bind. Repeatable. Alone, no HTTP listener is added." },
  { key: 'fastcgi_socket', kind: 'list', arg: 'ADDRESS', doc: "Also listen for FastCGI (nginx's fastcgi_pass) at ADDRESS. Repeatable." },
  { key: 'scgi_socket', kind: 'list', arg: 'ADDRESS', doc: "Also listen for SCGI (nginx's scgi_pass) at ADDRESS. Repeatable." },
  { key: 'chmod_socket', kind: 'string', arg: 'MODE',
    doc: 'Octal mode for the unix sockets of --uwsgi-socket, --fastcgi-socket and --scgi-socket (e.g. 660), so a front end running as another user can connect.' },
  { key: 'certfile', kind: 'path', arg: 'FILE',
    doc: 'Serve TLS on every --bind address with this certificate (PEM, its chain after it), HTTP/2 and HTTP/1.1 on the same port. ' +
      'Needs --keyfile. Several certificates by SNI, tls_min_version, http2 = false: [[listeners]] in --config.' },
  { key: 'keyfile', kind: 'path', arg: 'FILE', doc: "The private key (PEM) of --certfile's certificate." },
  { key: 'workers', short: 'w', kind: 'int', arg: 'N', doc: 'Number of Python worker processes. Default: $WEB_CONCURRENCY, else the number of CPUs.',
    env: { name: 'WEB_CONCURRENCY' } },
  { key: 'threads', kind: 'int', arg: 'N',
    doc: 'Requests each worker of a WSGI app runs at once, in threads (wsgi.multithread is then True); an ASGI app has --max-concurrency instead. Default 1.' },
  { key: 'interface', kind: 'string', arg: 'auto|wsgi|asgi',
    doc: 'The application is WSGI or ASGI 3; auto (default) tells by the callable (a coroutine function, or an object whose __call__ is one, is ASGI).' },
  { key: 'worker_scheduling', kind: 'string', arg: 'batch|normal',
    doc: "How Linux schedules the workers: batch (default; SCHED_BATCH, a worker woken by a request does not preempt the front, and each worker in a session of its own, so that it does not share the front's CPU weight) or normal (the front's own policy and session, as any child process)." },
  { key: 'max_concurrency', kind: 'int', arg: 'N', doc: 'ASGI: requests each worker runs at once on its event loop (a WSGI app has --threads instead). Default 1000.' },
  { key: 'sticky', kind: 'flag', arg: '',
    doc: "Send each client's requests to the same worker (by its address, a trusted proxy's forwarded one), as nginx's ip_hash: for apps that keep a client's session in one worker's memory, such as Socket.IO's long-polling, with several workers." },
  { key: 'lifespan', kind: 'string', arg: 'auto|on|off',
    doc: 'ASGI lifespan events: auto (default: used when the app supports them), on (required), off.' },
  { key: 'asgi_path', kind: 'string', arg: 'auto|full|below-mount',
    doc: 'ASGI app on a route under a path prefix: scope["path"] with the prefix (full, as the ASGI spec says) or below it (below-mount, as Starlette before 0.33 routes); auto (default): below-mount for such a Starlette.' },
  { key: 'ws_max_size', kind: 'size', arg: 'SIZE',
    doc: 'ASGI WebSockets: largest message taken from a client; past it the socket is closed with 1009. Default 16m.' },
  { key: 'ws_ping_interval', kind: 'seconds', arg: 'SECONDS', doc: 'ASGI WebSockets: seconds between pings to each client; 0: none. Default 20.' },
  { key: 'ws_ping_timeout', kind: 'seconds', arg: 'SECONDS', doc: 'ASGI WebSockets: a pong not back within this many seconds ends the socket. Default 20.' },
  { key: 'ws_per_message_deflate', kind: 'string', arg: 'on|off', doc: 'ASGI WebSockets: permessage-deflate when the client offers it. Default on.' },
  { key: 'python', kind: 'string', arg: 'PATH', doc: 'Python interpreter that runs the workers. Default: python3 on PATH.' },
  { key: 'venv', kind: 'path', arg: 'DIR', doc: "Run the workers with this virtualenv's interpreter and site-packages." },
  { key: 'chdir', kind: 'path', arg: 'DIR', doc: 'Change to this directory before loading the app. Default: the current directory.' },
  { key: 'pythonpath', kind: 'paths', arg: 'DIR',
    doc: 'Add a directory to the front of sys.path. Repeatable; a comma-separated list also works.' },
  { key: 'env', short: 'e', kind: 'pairs', arg: 'KEY=VALUE', doc: 'Set an environment variable for the workers. Repeatable.' },
  { key: 'static', kind: 'list', arg: 'URL=DIR',
    doc: 'Serve the files under DIR at URL from the front, without Python (e.g. /static=./static). Repeatable.' },
  { key: 'proxy', kind: 'list', arg: 'URL=UPSTREAM',
    doc: 'Pass requests at URL to an HTTP upstream: host:port, unix:PATH, http:// or https:// (e.g. /api=http://127.0.0.1:9000/; a path after the address replaces URL). Repeatable.' },
  { key: 'timeout', short: 't', kind: 'seconds', arg: 'SECONDS',
    doc: 'A request running longer than this gets 504 and its worker is killed and replaced (a threaded worker once its other requests are answered); a worker still loading the app after this long is killed too (a boot failure). 0 disables. Default 30.' },
  { key: 'graceful_timeout', kind: 'seconds', arg: 'SECONDS',
    doc: 'On SIGTERM, how long in-flight requests may take to finish before workers are killed. Default 30.' },
  { key: 'queue_size', kind: 'int', arg: 'N', doc: 'Requests that may wait for a free worker; past it new requests get 503. Default 1024.' },
  { key: 'queue_timeout', kind: 'seconds', arg: 'SECONDS',
    doc: 'A request waiting this long for a free worker gets 503. 0 waits forever. Default 30.' },
  { key: 'max_request_body', kind: 'size', arg: 'SIZE',
    doc: 'Largest request body accepted on any route (413 past it): bytes or 64k, 10m, 1g. Default 100m.' },
  { key: 'header_timeout', kind: 'seconds', arg: 'SECONDS',
    doc: 'Time a client has to send its request line and headers; then 408 and the connection is closed. 0: no limit. Default 60.' },
  { key: 'body_timeout', kind: 'seconds', arg: 'SECONDS',
    doc: 'Time a request body may go without any data arriving; then 408 and close. 0: no limit. Default 60.' },
  { key: 'keepalive_timeout', alias: 'keep-alive', kind: 'seconds', arg: 'SECONDS',
    doc: 'How long an idle keep-alive connection stays open (announced as Keep-Alive: timeout=N; closed a second later). 0: no keep-alive. Default 5.' },
  { key: 'max_header_size', kind: 'size', arg: 'SIZE', doc: 'Largest request line plus headers; 431 past it (414 when the target alone reaches it). Default 16k.' },
  { key: 'max_connections', kind: 'int', arg: 'N',
    doc: 'Client connections open at once, over all listeners; past it new ones are closed at once. 0: no limit. Default 10000.' },
  { key: 'forwarded_allow_ips', kind: 'list', arg: 'IPS',
    doc: 'Peers (IPs, CIDRs, unix, *) whose X-Forwarded-For/-Proto/-Host and Forwarded headers set the client address, scheme and host. Comma-separated. Default: $FORWARDED_ALLOW_IPS, else none (gatehouse is the edge; from other peers these headers are dropped).',
    env: { name: 'FORWARDED_ALLOW_IPS' } },
  { key: 'compress', kind: 'list', arg: 'CODINGS',
    doc: "Compress responses with these codings, preferred first: br,gzip (default), gzip, or 'off'." },
  { key: 'compress_min_size', kind: 'size', arg: 'SIZE', doc: 'Responses smaller than this are not compressed. Default 1k.' },
  { key: 'static_cache', kind: 'size', arg: 'SIZE',
    doc: 'Memory for small static files (up to 64k each) served from memory, rechecked on disk every second. 0 disables. Default 64m.' },
  { key: 'cache', kind: 'size', arg: 'SIZE',
    doc: 'Cache the responses of every app route in this much memory (e.g. 256m), as a shared cache (RFC 9111). Rules per route: [cache] and a route\'s cache in --config.' },
  { key: 'cache_store', kind: 'string', arg: 'URL',
    doc: 'Keep the cache in memcached (memcached://HOST:PORT) or Redis (redis://HOST:PORT[/DB]), shared by every gatehouse using it, instead of memory; caches every app route.' },
  { key: 'access_log', alias: 'access-logfile', kind: 'path', arg: 'FILE', doc: "Write an access log to FILE, or '-' for stdout. Default: none." },
  { key: 'error_log', alias: 'error-logfile', kind: 'path', arg: 'FILE',
    doc: "Write the error log (gatehouse's own lines and the workers' output) to FILE, or '-' for stderr; SIGUSR1 reopens it. Default: stderr." },
  { key: 'access_log_format', kind: 'string', arg: 'FORMAT',
    doc: "combined (default), json, or a format of gunicorn's atoms, e.g. '%(h)s \"%(r)s\" %(s)s %(D)s'." },
  { key: 'log_level', kind: 'string', arg: 'LEVEL', doc: `Error log level: ${LOG_LEVELS.join(', ')}. Default info.` },
  { key: 'reload', kind: 'flag', arg: '', doc: 'Development: reload the workers when a .py file changes under --chdir or --pythonpath.' },
  { key: 'reload_on_touch', kind: 'path', arg: 'FILE',
    doc: 'Reload the workers gracefully when FILE is touched (its modification time changes).' },
  { key: 'max_requests', kind: 'int', arg: 'N',
    doc: 'Replace a worker after it has served N requests (with no request lost). 0 disables. Default 0.' },
  { key: 'max_requests_jitter', kind: 'int', arg: 'N',
    doc: "Add a random 0..N to each worker's --max-requests, so workers do not all restart at once. Default 0." },
  { key: 'max_temp_file_size', kind: 'size', arg: 'SIZE',
    doc: "A response's bytes kept in a temp file for a slow client at most (nginx's uwsgi_max_temp_file_size), past 1 MiB in memory; then the app waits for the client. 0: no temp file. Default 1g." },
  { key: 'max_rss', kind: 'number', arg: 'MB',
    doc: 'Replace a worker, after its current request, when its resident memory exceeds MB megabytes. 0 disables.' },
  { key: 'user', short: 'u', kind: 'string', arg: 'USER',
    doc: 'Run the workers as this user (name or uid) when started as root; the front keeps the sockets.' },
  { key: 'group', short: 'g', kind: 'string', arg: 'GROUP', doc: "Run the workers with this group (name or gid). Default: --user's primary group." },
  { key: 'preload', kind: 'flag', arg: '',
    doc: 'Import the app once and fork the workers from that process, so they share memory; SIGHUP still loads new code.' },
  { key: 'check_config', kind: 'flag', arg: '',
    doc: 'Check the configuration (and the config file) and that every app imports, then exit 0 (or 1 with every problem).' },
];

export function flagOf(option: OptionSpec): string {
  return option.key.replace(/_/g, '-');
}

/**
 * The items of a list setting given as text (repeated flags, or one string
 * in the config file): --forwarded-allow-ips, --compress and --pythonpath
 * take gunicorn's comma-separated form too; an address, a static or a proxy
 * route is one item each. --compress off is the empty list.
 */
export function listItems(option: OptionSpec, given: string[]): string[] {
  const whole = option.key === 'static' || option.key === 'proxy' || option.key === 'bind';
  const items = given.flatMap((v) => (whole ? [v] : v.split(','))).map((v) => v.trim());
  return option.key === 'compress' && items.join() === 'off' ? [] : items;
}
