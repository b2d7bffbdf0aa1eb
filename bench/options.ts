/** The benchmark's command line: its flags and BENCH_* environment variables. */

/** wsgi: the main table (+ reload rows, worker cost); static, idle, slowloris: the front-end duties, against nginx; tls: TLS and HTTP/2 against nginx + uWSGI; proxy: the proxy action against nginx proxy_pass; asgi: ASGI apps against uvicorn; cache: cache hits against Varnish and nginx; upstreams: nginx → gatehouse's uwsgi listener, the proxy and the fastcgi action, each against nginx. */
export const SUITES = ['wsgi', 'static', 'idle', 'slowloris', 'tls', 'proxy', 'asgi', 'cache', 'upstreams'] as const;
export type Suite = (typeof SUITES)[number];
/** --suite's shorthands. */
const SUITE_GROUPS: Record<string, readonly Suite[]> = { front: ['static', 'idle', 'slowloris'], all: SUITES };

export interface Options {
  /** Seconds of each measured wrk run. */
  duration: number;
  quick: boolean;
  markdown: boolean;
  only: Set<string> | null;
  apps: Set<string> | null;
  control: boolean;
  workerCost: boolean;
  /** The reload-under-load row (reload-row.ts). */
  reload: boolean;
  /** Copy each server's log here. */
  logs: string | null;
  /** Runs again (once) a row during which other processes took more than OTHER_CPU_LIMIT. */
  retry: boolean;
  /** Runs per row (each with a fresh server); the median by req/s is shown. */
  repeat: number;
  suites: Set<Suite>;
  /** Idle keep-alive connections the idle suite opens. */
  idleConnections: number;
  /** Slow connections the slowloris suite keeps open. */
  slowConnections: number;
}

const USAGE = `Usage: npm run bench -- [--suite SUITES] [--quick] [--markdown] [--only IDS] [--apps hello,flask] [--no-control] [--no-worker-cost] [--no-reload] [--no-retry] [--repeat N] [--logs DIR]
                                [--idle-connections N] [--slow-connections N]

  --suite SUITES     what to run, comma-separated (default wsgi):
                       wsgi       the WSGI apps on every server (main table), the reload rows and the worker cost
                       static     a 1 KiB and a 1 MiB file: gatehouse --static against nginx (sendfile on), with the connection check
                       idle       resident memory with N idle keep-alive connections (--idle-connections): gatehouse against nginx
                       slowloris  the flask app under wrk, alone and while N connections send headers 1 byte/s (--slow-connections):
                                  gatehouse (--header-timeout 60 and 10) against nginx + uWSGI
                       tls        the hello and flask apps over TLS, same certificate, gatehouse against nginx (listen ssl http2) + uWSGI:
                                  HTTP/1.1 (wrk -c50 over https), h2 (h2load -c10 -m5 -n 4000×duration) and h2 with 200 streams
                                  (h2load -c4 -m50); req/s of 2xx answers, non-2xx counts, CPU per answer (needs h2load, openssl)
                       proxy      the hello and flask apps on gunicorn (-w 2, unix socket): gatehouse's proxy action against
                                  nginx proxy_pass (upstream keepalive), with the connection check
                       asgi       a raw ASGI hello and a FastAPI JSON route: gatehouse --interface asgi against uvicorn (--workers, uvloop, httptools),
                                  gunicorn -k uvicorn.workers.UvicornWorker, hypercorn and daphne; WebSocket echo messages/s (50 clients)
                                  and the memory of N idle WebSockets (--idle-connections): gatehouse against uvicorn (websockets, wsproto)
                       cache      hits on a cached 1 KiB and 64 KiB page: gatehouse --cache against Varnish and nginx uwsgi_cache,
                                  both in front of uWSGI (needs varnish)
                       upstreams  nginx uwsgi_pass → gatehouse against → uWSGI (flask), the proxy suite's rows, and gatehouse fastcgi
                                  against nginx fastcgi_pass, both → php-fpm (2 children, PHP hello) (needs php-fpm)
                       front      static,idle,slowloris (also: npm run bench:front)
                       all        every suite
  --quick            runs of 3 s (unless BENCH_DURATION is set) and fewer worker-cost iterations; also BENCH_QUICK=1
  --markdown         print the results tables as Markdown
  --only IDS         servers to run, comma-separated: gatehouse,gunicorn,uwsgi,nginx-uwsgi,waitress,uwsgi-http11;
                     front suites: gatehouse, nginx (static, idle), nginx-uwsgi (slowloris); tls: gatehouse, nginx-uwsgi; proxy: gatehouse, nginx;
                     asgi: gatehouse, uvicorn, gunicorn-uvicorn, hypercorn, daphne, uvicorn-websockets, uvicorn-wsproto; cache: gatehouse, varnish, nginx-cache;
                     upstreams: gatehouse, nginx-uwsgi, nginx, node-floor (Node's own floor for the uwsgi and proxy rows)
  --apps IDS         apps to run (wsgi, tls and proxy suites), comma-separated: hello,flask
  --no-control       skip the uWSGI --http11-socket control row
  --no-worker-cost   skip the per-request cost inside the Python worker
  --no-reload        skip the reload-under-load rows (gatehouse and gunicorn, hello app, SIGHUP every 2 s under wrk)
  --no-retry         do not run a row again when other processes took CPU during it
  --repeat N         run each wrk, h2load or WebSocket echo row N times, each with a fresh server, and show the median (and the range); the runs
                     go in rounds (every server of an app once, then again), so that the servers compared share the machine's moments; also BENCH_REPEAT
  --logs DIR         keep each server's log as DIR/SERVER-APP.log (reload rows: DIR/SERVER-APP-reload.log; tls: DIR/tls-SERVER-APP-WORKLOAD.log);
                     nginx's error log is appended to its server's
  --idle-connections N   idle suite: keep-alive connections to hold open; asgi suite: idle WebSockets (default 10000)
  --slow-connections N   slowloris suite: slow connections (default 2000)
Environment: BENCH_DURATION=seconds per wrk run (default 10, 3 with --quick); the tls suite's h2load runs make 4000 requests per second of it.
`;

/** Exits with a message, for a bad command line or a machine the benchmark cannot run on. */
export function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function wholeNumber(text: string | undefined, min: number, max: number): number | null {
  const n = Number(text);
  return Number.isInteger(n) && n >= min && n <= max ? n : null;
}

export function parseOptions(argv: readonly string[]): Options {
  const quick = process.env.BENCH_QUICK;
  const opts: Options = {
    duration: 10,
    quick: quick !== undefined && quick !== '' && quick !== '0',
    markdown: false,
    only: null,
    apps: null,
    control: true,
    workerCost: true,
    reload: true,
    logs: null,
    retry: true,
    repeat: 1,
    suites: new Set<Suite>(['wsgi']),
    idleConnections: 10000,
    slowConnections: 2000,
  };
  let repeatGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = eq >= 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    const list = () => {
      const v = value();
      if (v === undefined || v === '') fail(`${flag} needs a value\n${USAGE}`);
      return new Set(v.split(',').map((s) => s.trim()).filter(Boolean));
    };
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--markdown':
        opts.markdown = true;
        break;
      case '--only':
        opts.only = list();
        break;
      case '--apps':
        opts.apps = list();
        break;
      case '--no-control':
        opts.control = false;
        break;
      case '--no-worker-cost':
        opts.workerCost = false;
        break;
      case '--no-reload':
        opts.reload = false;
        break;
      case '--no-retry':
        opts.retry = false;
        break;
      case '--repeat':
        opts.repeat = wholeNumber(value(), 1, 20) ?? fail(`--repeat needs a whole number from 1 to 20\n${USAGE}`);
        repeatGiven = true;
        break;
      case '--suite':
        opts.suites = new Set(
          [...list()].flatMap((name): readonly Suite[] => {
            const known = SUITES.find((x) => x === name);
            return known !== undefined ? [known] : (SUITE_GROUPS[name] ?? fail(`--suite: unknown suite ${JSON.stringify(name)} (known: ${[...SUITES, ...Object.keys(SUITE_GROUPS)].join(', ')})\n${USAGE}`));
          }),
        );
        break;
      case '--idle-connections':
        opts.idleConnections = wholeNumber(value(), 1, 60000) ?? fail(`--idle-connections needs a whole number from 1 to 60000\n${USAGE}`);
        break;
      case '--slow-connections':
        opts.slowConnections = wholeNumber(value(), 1, 20000) ?? fail(`--slow-connections needs a whole number from 1 to 20000\n${USAGE}`);
        break;
      case '--logs': {
        const dir = value();
        if (dir === undefined || dir === '') fail(`--logs needs a directory\n${USAGE}`);
        opts.logs = dir;
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  if (opts.quick) opts.duration = 3;
  const repeat = process.env.BENCH_REPEAT;
  if (!repeatGiven && repeat !== undefined && repeat !== '') {
    opts.repeat = wholeNumber(repeat, 1, 20) ?? fail(`BENCH_REPEAT must be a whole number from 1 to 20, got ${JSON.stringify(repeat)}`);
  }
  const duration = process.env.BENCH_DURATION;
  if (duration !== undefined && duration !== '') {
    opts.duration = wholeNumber(duration, 1, 600) ?? fail(`BENCH_DURATION must be a whole number of seconds from 1 to 600, got ${JSON.stringify(duration)}`);
  }
  return opts;
}
