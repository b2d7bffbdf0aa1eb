/**
 * The proxy suite: gatehouse's `proxy` route action against nginx's
 * `proxy_pass`, each in front of the same upstream: gunicorn (sync, 2
 * processes) on a unix socket, started fresh for each row, serving the
 * hello and flask apps. Each row is a main-table row (bench-row.ts: wrk on
 * `/`, the connection check, the CPU accounting, --repeat, the retry).
 * Target: gatehouse/nginx ≥ TARGET.
 *
 *     npm run bench -- --suite proxy
 */
import { join } from 'node:path';
import type { Options } from './options.js';
import { rowsSection, rowsTable, wrkCommand } from './report.js';
import { runPairings, targetLines } from './suite-rows.js';
import { APPS, APPS_DIR, gatehouseMissing, gatehouseRouteLaunch, GATEHOUSE_PROBLEMS, gunicornMissing, nginxLaunch, nginxMissing, NGINX_PROBLEMS, PROCESSES, PYTHON, ROOT, type AppSpec, type Launch, type ServerSpec, type Versions } from './servers.js';
import { WARMUP_SECONDS } from './wrk.js';

export const TARGET = 1.0;

/** The upstream of both rows: gunicorn on `sock`. */
export function gunicornLaunch(app: AppSpec, sock: string): Launch {
  return {
    name: 'gunicorn',
    cmd: PYTHON,
    args: ['-m', 'gunicorn', '-w', String(PROCESSES), '--worker-class', 'sync', '-b', `unix:${sock}`, '--chdir', APPS_DIR, `${app.module}:app`],
    cwd: ROOT,
    stopSignal: 'SIGTERM',
    waitForPath: sock,
  };
}

export function proxyServers(versions: Versions): ServerSpec[] {
  return [
    {
      id: 'gatehouse',
      label: `gatehouse ${versions.gatehouse} proxy → gunicorn ${versions.gunicorn} (-w ${PROCESSES})`,
      missing: () => gatehouseMissing() ?? gunicornMissing(),
      launch: (app, port, tmp) => {
        const sock = join(tmp, 'gunicorn.sock');
        return [gunicornLaunch(app, sock), gatehouseRouteLaunch(tmp, port, `proxy = { upstreams = ["unix:${sock}"] }`)];
      },
      problemLines: GATEHOUSE_PROBLEMS,
      cpuNames: { front: 'node', python: 'python3' },
    },
    {
      id: 'nginx',
      label: `nginx ${versions.nginx} (1 worker) proxy_pass → gunicorn ${versions.gunicorn} (-w ${PROCESSES})`,
      missing: () => nginxMissing() ?? gunicornMissing(),
      launch: (app, port, tmp) => {
        const sock = join(tmp, 'gunicorn.sock');
        const location = [
          '        location / {',
          '            proxy_pass http://backend;',
          '            proxy_http_version 1.1;',
          '            proxy_set_header Connection "";',
          '            proxy_set_header Host $host;',
          '            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
          '            proxy_set_header X-Forwarded-Proto $scheme;',
          '        }',
        ].join('\n');
        return [gunicornLaunch(app, sock), nginxLaunch(tmp, port, location, { http: [`upstream backend { server unix:${sock}; keepalive 16; }`] })];
      },
      problemLines: NGINX_PROBLEMS,
      cpuNames: { front: 'nginx', python: 'python3' },
    },
  ];
}

/** Runs the rows, app by app (gatehouse then nginx); the section's lines for stdout. */
export async function runProxySuite(versions: Versions, opts: Options): Promise<string[]> {
  const apps = APPS.filter((a) => opts.apps === null || opts.apps.has(a.id));
  const { rows, skipped } = await runPairings('proxy', apps.flatMap((app) => proxyServers(versions).map((server) => ({ server, app }))), opts);
  const lines = [
    ...targetLines(rows, TARGET),
    `${wrkCommand(opts)} on /, after a ${WARMUP_SECONDS} s warm-up, one fresh server and upstream per row; keep-alive from wrk, no access log.`,
    `The upstream: gunicorn sync, -w ${PROCESSES}, on a unix socket (it closes each connection after its answer). ` +
      `gatehouse: one route, proxy = { upstreams = ["unix:SOCK"] } (defaults: buffering on, request bodies buffered). ` +
      `nginx: worker_processes 1, proxy_pass to an upstream block with keepalive 16, proxy_http_version 1.1, Host, X-Forwarded-For and -Proto set.`,
  ];
  return rowsSection(opts, 'Reverse proxy to gunicorn:', rowsTable(rows, opts.markdown, { ratio: 'gatehouse/nginx' }), lines, skipped, rows, ', proxy');
}
