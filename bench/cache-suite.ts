/**
 * The cache suite: hits on a cached 1 KiB and 64 KiB page (bench/apps/cached_page.py,
 * Cache-Control: public, max-age=3600), gatehouse --cache against Varnish
 * (default VCL but the backend) and nginx's uwsgi_cache (1 worker), both in
 * front of uWSGI serving the same app over a unix socket. The warm-up run
 * fills each cache, so the measured run is all hits. Each row is a main-table
 * row (bench-row.ts). Targets (issue 12): 1 KiB hits ≥ 1.1× the faster of
 * Varnish and nginx, 64 KiB ≥ 1.0×; then what misses add to the uncached
 * page's latency (cache-miss-row.ts), target under 10%.
 */
import { join } from 'node:path';
import type { Row } from './bench-row.js';
import { MISS_CACHE, missLatencyLines } from './cache-miss-row.js';
import type { Options } from './options.js';
import { commandPath } from './processes.js';
import { rowsSection, rowsTable, targetVerdict, wrkCommand } from './report.js';
import { gatehouseServer, nginxLaunch, nginxMissing, NGINX_PROBLEMS, PROCESSES, uwsgiLaunch, uwsgiMissing, type AppSpec, type ServerSpec, type Versions } from './servers.js';
import { writeFileSync } from 'node:fs';
import { runAppsOnServers } from './suite-rows.js';
import { WARMUP_SECONDS } from './wrk.js';

/**
 * 64 KiB hits with two wrk threads: one thread takes a whole core reading
 * them (nine reads of 8 KiB an answer) and sets the same rate for every
 * server, whatever each server spends on a hit (see the README's Cache).
 */
const PAGES: AppSpec[] = [
  { id: '1KiB', module: 'cached_page', path: '/1k' },
  { id: '64KiB', module: 'cached_page', path: '/64k', wrkThreads: 2 },
];

const TARGETS: Record<string, number> = { '1KiB': 1.1, '64KiB': 1.0 };

function uwsgiBackend(app: AppSpec, tmp: string): { sock: string; launch: ReturnType<typeof uwsgiLaunch> } {
  const sock = join(tmp, 'uwsgi.sock');
  return { sock, launch: uwsgiLaunch(app, ['--socket', sock, '--chmod-socket=666'], sock) };
}

function varnishServer(): ServerSpec {
  return {
    id: 'varnish',
    label: `Varnish (default VCL, -s malloc,64m) + uWSGI (--http-socket, --processes ${PROCESSES})`,
    missing: () => (commandPath('varnishd') === null ? 'varnishd is not installed (apt-get install varnish)' : uwsgiMissing()),
    launch: (app, port, tmp) => {
      const sock = join(tmp, 'uwsgi-http.sock');
      const vcl = join(tmp, 'default.vcl');
      writeFileSync(vcl, `vcl 4.1;\nbackend default { .path = "${sock}"; }\n`);
      return [
        uwsgiLaunch(app, ['--http-socket', sock, '--chmod-socket=666'], sock),
        {
          name: 'varnishd',
          cmd: 'varnishd',
          args: ['-F', '-j', 'none', '-n', join(tmp, 'varnish'), '-a', `127.0.0.1:${port}`, '-f', vcl, '-s', 'malloc,64m'],
          cwd: tmp,
          stopSignal: 'SIGTERM',
        },
      ];
    },
    // varnishd says "Error: Manager got SIGTERM" when stopped: only panics and failed assertions count.
    problemLines: /Panic|Assert error|Traceback|UNABLE/,
  };
}

function nginxCacheServer(): ServerSpec {
  return {
    id: 'nginx-cache',
    label: `nginx (1 worker, uwsgi_cache) + uWSGI (uwsgi_pass, --processes ${PROCESSES})`,
    missing: () => nginxMissing() ?? uwsgiMissing(),
    launch: (app, port, tmp) => {
      const backend = uwsgiBackend(app, tmp);
      const location = [
        '        location / {',
        '            include /etc/nginx/uwsgi_params;',
        `            uwsgi_pass unix:${backend.sock};`,
        '            uwsgi_cache pages;',
        '            uwsgi_cache_key $request_uri;',
        '        }',
      ].join('\n');
      const http = [`uwsgi_cache_path ${join(tmp, 'cache')} keys_zone=pages:16m max_size=64m;`];
      return [backend.launch, nginxLaunch(tmp, port, location, { http })];
    },
    problemLines: NGINX_PROBLEMS,
  };
}

/** Runs the rows, page by page; the section's lines for stdout. */
export async function runCacheSuite(versions: Versions, opts: Options): Promise<string[]> {
  const cached = gatehouseServer(versions, PROCESSES, ['--cache', '64m']);
  const { rows, skipped } = await runAppsOnServers('cache', [cached, varnishServer(), nginxCacheServer()], PAGES, opts, {
    shown: (page) => `${page.id} (${page.path})`,
    logName: (server, page) => `cache-${server.id}-${page.path!.slice(1)}`,
  });
  const misses = cached.missing() !== null || (opts.only !== null && !opts.only.has('gatehouse')) ? [] : await missLatencyLines(gatehouseServer(versions, PROCESSES), gatehouseServer(versions, PROCESSES, ['--cache', MISS_CACHE]), opts);
  const lines = [
    ...PAGES.map((p) => targetLine(rows, p.id)),
    ...misses,
    `${wrkCommand(opts)} on the page (64 KiB: wrk -t2, as one wrk thread reading 64 KiB answers is the limit of every server alike), after a ${WARMUP_SECONDS} s warm-up on it that fills the cache; one fresh server per row; keep-alive, no access log, no compression (wrk sends no Accept-Encoding).`,
    `gatehouse: --cache 64m in front of its own workers; Varnish and nginx in front of uWSGI over a unix socket.`,
  ];
  return rowsSection(opts, 'HTTP cache hits:', rowsTable(rows, opts.markdown, { app: 'page', ratio: 'gatehouse/faster peer' }), lines, skipped, rows, ', cache');
}

function targetLine(rows: readonly Row[], page: string): string {
  const rps = (id: string) => rows.find((r) => r.server.id === id && r.app.id === page)?.wrk?.rps;
  const gh = rps('gatehouse');
  const peers = [rps('varnish'), rps('nginx-cache')].filter((v): v is number => v !== undefined && v > 0);
  if (gh === undefined || peers.length === 0) return `${page}: no ratio (a row is missing).`;
  return targetVerdict(`${page}: gatehouse / the faster peer`, gh / Math.max(...peers), TARGETS[page]!);
}
