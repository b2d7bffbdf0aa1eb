/**
 * The apps and the servers they run on: gatehouse and the servers a user
 * could pick instead, each with 2 Python processes (waitress: 1 process,
 * 4 threads), plus the control row, uWSGI --http11-socket, which must come
 * out STARVED. Every server runs Debian's /usr/bin/python3 (with
 * python3-flask) and listens on 127.0.0.1 only.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpuNames } from './cpu-usage.js';
import { commandPath } from './processes.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const APPS_DIR = join(ROOT, 'bench', 'apps');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
/** The node flags the `gatehouse` command runs with (its first two lines, src/cli.ts): the bench runs what users run. */
export const GATEHOUSE_NODE_FLAGS: string[] = existsSync(CLI) ? readFileSync(CLI, 'utf8').split('\n', 2).join(' ').split(/\s+/).filter((w) => w.startsWith('--')) : [];
export const PYTHON = '/usr/bin/python3';
export const PROCESSES = 2;
export const WAITRESS_THREADS = 4;

export interface AppSpec {
  id: string;
  /** bench/apps/MODULE.py, whose WSGI callable is `app`. */
  module: string;
  /** The path wrk loads (warm-up and measured run); default `/`. */
  path?: string;
  /**
   * wrk's threads (default 1). Two where one wrk thread, not the servers,
   * would set every server's rate alike (the cache suite's 64 KiB hits).
   */
  wrkThreads?: number;
}

export const APPS: AppSpec[] = [
  { id: 'hello', module: 'hello' },
  { id: 'flask', module: 'flask_json' },
];

export const appFile = (app: AppSpec) => join(APPS_DIR, `${app.module}.py`);

export interface Launch {
  name: string;
  cmd: string;
  args: string[];
  cwd: string;
  /** How this server is asked to shut down. */
  stopSignal: NodeJS.Signals;
  /** Start the next process only once this path exists (a back end's unix socket). */
  waitForPath?: string;
  /** Files it logs to besides its output (nginx's error_log): added to the server's log once it stops. */
  logFiles?: string[];
}

export interface ServerSpec {
  id: string;
  label: string;
  /** null when it can run here, else why not. */
  missing(): string | null;
  /** Processes to start, in order (back ends first); the last one owns the port. */
  launch(app: AppSpec, port: number, tmp: string): Launch[];
  /** Runs only for these apps (default: all). */
  apps?: string[];
  /** A control row: expected to starve connections; no gatehouse/peer ratio. */
  control?: boolean;
  /** Listens with TLS: the readiness check, the warm-up and wrk use https. */
  tls?: boolean;
  /** Logged lines that count as problems. */
  problemLines: RegExp;
  /** The command names of its front's and its back end's processes in the CPU columns; default PROCESS_NAMES by id. */
  cpuNames?: CpuNames;
  /** For the reload row: the signal of a graceful reload, and how many reloads the log says completed (`counted`: how). */
  reload?: { signal: NodeJS.Signals; completed(log: string): number; counted: string };
}

const countLines = (log: string, re: RegExp) => log.split('\n').filter((l) => re.test(l)).length;

export function hasPythonModule(module: string): boolean {
  return spawnSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

export type Versions = ReturnType<typeof detectVersions>;

/** '?' for what is not installed. */
export function detectVersions() {
  const v = (cmd: string, args: string[], re: RegExp): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    const m = re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    return m ? m[1]! : '?';
  };
  const pythonPackage = (name: string) => v(PYTHON, ['-c', `import importlib.metadata as m; print(m.version("${name}"))`], /^(\S+)/);
  return {
    gatehouse: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    node: process.versions.node,
    python: v(PYTHON, ['--version'], /Python (\S+)/),
    wrk: v('wrk', ['--version'], /wrk (\S+)/),
    gunicorn: v(PYTHON, ['-m', 'gunicorn', '--version'], /version (\S+?)\)?$/m),
    uwsgi: v('uwsgi', ['--version'], /^(\S+)/),
    nginx: v('nginx', ['-v'], /nginx\/(\S+)/),
    waitress: pythonPackage('waitress'),
    h2load: v('h2load', ['--version'], /nghttp2\/(\S+)/),
    openssl: v('openssl', ['version'], /^OpenSSL (\S+)/),
    flask: pythonPackage('flask'),
    uvicorn: pythonPackage('uvicorn'),
    hypercorn: pythonPackage('hypercorn'),
    daphne: pythonPackage('daphne'),
    websockets: pythonPackage('websockets'),
  };
}

export function uwsgiMissing(): string | null {
  const path = commandPath('uwsgi');
  if (path === null) return 'uwsgi is not installed (apt-get install uwsgi uwsgi-plugin-python3)';
  const r = spawnSync(path, ['--plugin', 'python3', '--version'], { encoding: 'utf8' });
  if (r.status !== 0 || /UNABLE to load/i.test(`${r.stdout}${r.stderr}`)) return 'uwsgi python3 plugin is not installed (apt-get install uwsgi-plugin-python3)';
  return null;
}

export function uwsgiLaunch(app: AppSpec, socketArgs: string[], waitForPath?: string): Launch {
  const args = [
    '--plugin', 'python3',
    ...socketArgs,
    '--processes', String(PROCESSES),
    '--master',
    '--chdir', APPS_DIR,
    '--wsgi-file', appFile(app),
    '--callable', 'app',
    '--need-app',
    '--disable-logging',
    '--die-on-term',
  ];
  return { name: 'uwsgi', cmd: 'uwsgi', args, cwd: APPS_DIR, stopSignal: 'SIGINT', waitForPath };
}

export interface NginxTuning {
  /** events { worker_connections }: default 1024, Debian's value is 768. */
  workerConnections?: number;
  /** Seconds an idle keep-alive connection stays open: default 65 (Debian's). */
  keepaliveTimeout?: number;
  /** More directives for the http block, e.g. `client_header_timeout 10s;`. */
  http?: string[];
  /** Listen with TLS (and h2 by ALPN, nginx 1.22's `listen ... ssl http2`) with this certificate and key (PEM files). */
  tls?: { certfile: string; keyfile: string };
}

/**
 * Everything nginx writes goes to `tmp`; keepalive_requests is raised so that nginx, too, keeps wrk's
 * connections for the whole run. `locations`: the server block's location blocks.
 */
export function nginxConfig(tmp: string, port: number, locations: string, tuning: NginxTuning = {}): string {
  const t = (name: string) => join(tmp, name);
  const connections = tuning.workerConnections ?? 1024;
  // a worker needs a descriptor per connection (two when proxied) and a few more
  const rlimit = connections > 1024 ? `worker_rlimit_nofile ${connections * 2 + 64};\n` : '';
  return `# generated by bench/servers.ts
worker_processes 1;
${rlimit}daemon off;
master_process on;
pid ${t('nginx.pid')};
error_log ${t('nginx-error.log')} warn;
events {
    worker_connections ${connections};
}
http {
    access_log off;
    client_body_temp_path ${t('client_body')};
    proxy_temp_path ${t('proxy')};
    fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')};
    scgi_temp_path ${t('scgi')};
    keepalive_timeout ${tuning.keepaliveTimeout ?? 65};
    keepalive_requests 1000000;
${(tuning.http ?? []).map((d) => `    ${d}\n`).join('')}    server {
${listen(port, tuning)}
${locations}
    }
}
`;
}

/** The server block's listen line, and with TLS its certificate. */
function listen(port: number, tuning: NginxTuning): string {
  if (tuning.tls === undefined) return `        listen 127.0.0.1:${port};`;
  return [
    `        listen 127.0.0.1:${port} ssl http2;`,
    `        ssl_certificate ${tuning.tls.certfile};`,
    `        ssl_certificate_key ${tuning.tls.keyfile};`,
    // nginx 1.22 leaves TLSv1.3 out by default (1.23.4 added it); Node offers 1.2 and 1.3: the same on both
    '        ssl_protocols TLSv1.2 TLSv1.3;',
    // Node picks the cipher by its own order (TLS_AES_256_GCM_SHA384 first, as OpenSSL's default), nginx by the
    // client's (h2load puts AES-128 first): the server's order on both, so that both do the same crypto
    '        ssl_prefer_server_ciphers on;',
  ].join('\n');
}

/** Writes `tmp`/nginx.conf and returns nginx's launch; nginx's worker runs as nobody: it must reach `tmp`. */
export function nginxLaunch(tmp: string, port: number, locations: string, tuning: NginxTuning = {}): Launch {
  chmodSync(tmp, 0o755);
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(tmp, d), { recursive: true });
  writeFileSync(join(tmp, 'nginx.conf'), nginxConfig(tmp, port, locations, tuning));
  const errorLog = join(tmp, 'nginx-error.log');
  return { name: 'nginx', cmd: 'nginx', args: ['-p', tmp, '-c', join(tmp, 'nginx.conf'), '-e', errorLog], cwd: tmp, stopSignal: 'SIGQUIT', logFiles: [errorLog] };
}

export const nginxMissing = (): string | null => (commandPath('nginx') === null ? 'nginx is not installed (apt-get install nginx)' : null);
export const NGINX_PROBLEMS = /Traceback|\[(error|crit|alert|emerg)\]|UNABLE/;

/** nginx (1 worker) in front of uWSGI over a unix socket; `tuning` for variants. */
export function nginxUwsgiServer(versions: Versions, tuning: NginxTuning = {}): ServerSpec {
  return {
    id: 'nginx-uwsgi',
    label: `nginx ${versions.nginx} (1 worker) + uWSGI (uwsgi_pass, --processes ${PROCESSES})`,
    missing: () => nginxMissing() ?? uwsgiMissing(),
    launch: (app, port, tmp) => {
      const sock = join(tmp, 'uwsgi.sock');
      const location = `        location / {\n            include /etc/nginx/uwsgi_params;\n            uwsgi_pass unix:${sock};\n        }`;
      return [uwsgiLaunch(app, ['--socket', sock, '--chmod-socket=666'], sock), nginxLaunch(tmp, port, location, tuning)];
    },
    problemLines: NGINX_PROBLEMS,
  };
}

export const gatehouseMissing = () => (existsSync(CLI) ? null : `${CLI} is missing (run tsc -p .)`);
export const gunicornMissing = () => (hasPythonModule('gunicorn') ? null : `gunicorn is not installed for ${PYTHON} (apt-get install gunicorn)`);
export const GATEHOUSE_PROBLEMS = /\[(WARNING|ERROR|CRITICAL)\]|Traceback|internal error/;

/** gatehouse on 127.0.0.1:`port` with one route (`route`: its action, a TOML line), from a config file in `tmp`. */
export function gatehouseRouteLaunch(tmp: string, port: number, route: string): Launch {
  const config = join(tmp, 'gatehouse.toml');
  writeFileSync(config, `[[listeners]]\nbind = "127.0.0.1:${port}"\n\n[[routes]]\n${route}\n`);
  return { name: 'gatehouse', cmd: process.execPath, args: [...GATEHOUSE_NODE_FLAGS, CLI, '--config', config], cwd: ROOT, stopSignal: 'SIGTERM' };
}

/**
 * uvicorn (`PROCESSES` workers, uvloop, httptools, no access log) serving `app` on 127.0.0.1:`port`,
 * with more flags (`flags`). httptools is named: without it uvicorn falls back to h11, its pure-Python
 * parser, at about half the speed (Debian's uvicorn does not pull python3-httptools in).
 */
export function uvicornLaunch(app: AppSpec, port: number, flags: readonly string[] = []): Launch {
  return {
    name: 'uvicorn',
    cmd: PYTHON,
    args: ['-m', 'uvicorn', '--workers', String(PROCESSES), '--loop', 'uvloop', '--http', 'httptools', ...flags, '--host', '127.0.0.1', '--port', String(port), '--no-access-log', '--app-dir', APPS_DIR, `${app.module}:app`],
    cwd: APPS_DIR,
    stopSignal: 'SIGTERM',
  };
}

/** gatehouse with `app`, `workers` Python processes and more flags (`args`, shown in the label as `shown`). */
export function gatehouseServer(versions: Versions, workers: number, args: string[] = [], shown = args.join(' ')): ServerSpec {
  return {
    id: 'gatehouse',
    label: `gatehouse ${versions.gatehouse} (--workers ${workers}${shown === '' ? '' : ` ${shown}`})`,
    missing: gatehouseMissing,
    launch: (app, port) => [
      {
        name: 'gatehouse',
        cmd: process.execPath,
        args: [...GATEHOUSE_NODE_FLAGS, CLI, `${appFile(app)}:app`, '--workers', String(workers), '--bind', `127.0.0.1:${port}`, '--python', PYTHON, ...args],
        cwd: ROOT,
        stopSignal: 'SIGTERM',
      },
    ],
    problemLines: GATEHOUSE_PROBLEMS,
    reload: { signal: 'SIGHUP', completed: (log) => countLines(log, /Reload complete/), counted: "'Reload complete' log lines" },
  };
}

const UWSGI_PROBLEMS = /Traceback|\bERROR\b|UNABLE/;

export function servers(versions: Versions): ServerSpec[] {
  return [
    gatehouseServer(versions, PROCESSES),
    {
      id: 'gunicorn',
      label: `gunicorn ${versions.gunicorn} sync (-w ${PROCESSES})`,
      missing: gunicornMissing,
      launch: (app, port) => [
        {
          name: 'gunicorn',
          cmd: PYTHON,
          args: ['-m', 'gunicorn', '-w', String(PROCESSES), '--worker-class', 'sync', '-b', `127.0.0.1:${port}`, '--chdir', APPS_DIR, `${app.module}:app`],
          cwd: ROOT,
          stopSignal: 'SIGTERM',
        },
      ],
      problemLines: /\[(WARNING|ERROR|CRITICAL)\]|Traceback/,
      // gunicorn logs no end of a reload: each one boots PROCESSES new workers (and stops the old ones without waiting for them)
      reload: {
        signal: 'SIGHUP',
        completed: (log) => Math.floor(Math.max(0, countLines(log, /Booting worker with pid/) - PROCESSES) / PROCESSES),
        counted: `workers booted after the first ${PROCESSES}, ÷ ${PROCESSES}`,
      },
    },
    {
      id: 'uwsgi',
      label: `uWSGI ${versions.uwsgi} --http-socket (--processes ${PROCESSES})`,
      missing: uwsgiMissing,
      launch: (app, port) => [uwsgiLaunch(app, ['--http-socket', `127.0.0.1:${port}`])],
      problemLines: UWSGI_PROBLEMS,
    },
    nginxUwsgiServer(versions),
    {
      id: 'waitress',
      label: `waitress ${versions.waitress} (1 process, --threads=${WAITRESS_THREADS})`,
      missing: () => (hasPythonModule('waitress') ? null : `waitress is not installed for ${PYTHON} (apt-get install python3-waitress)`),
      launch: (app, port) => [
        {
          name: 'waitress',
          cmd: PYTHON,
          args: ['-m', 'waitress', `--listen=127.0.0.1:${port}`, `--threads=${WAITRESS_THREADS}`, `${app.module}:app`],
          cwd: APPS_DIR,
          stopSignal: 'SIGTERM',
        },
      ],
      problemLines: /Traceback|\bERROR\b/,
    },
    {
      id: 'uwsgi-http11',
      label: `control: uWSGI ${versions.uwsgi} --http11-socket (--processes ${PROCESSES})`,
      missing: uwsgiMissing,
      launch: (app, port) => [uwsgiLaunch(app, ['--http11-socket', `127.0.0.1:${port}`])],
      apps: ['hello'],
      control: true,
      problemLines: UWSGI_PROBLEMS,
    },
  ];
}
