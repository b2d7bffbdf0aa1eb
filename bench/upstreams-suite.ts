/**
 * The upstreams suite: gatehouse on each side of the back-end protocols,
 * each against the nginx setup it replaces, in one run:
 *
 * - uwsgi: nginx `uwsgi_pass` → gatehouse --uwsgi-socket (2 workers) against
 *   nginx `uwsgi_pass` → uWSGI --socket (2 processes), the flask app;
 * - proxy: gatehouse `proxy` → gunicorn against nginx `proxy_pass` → gunicorn
 *   (proxy-suite.ts's rows), the hello and flask apps;
 * - fastcgi: gatehouse `fastcgi` → php-fpm against nginx `fastcgi_pass` →
 *   php-fpm (a PHP hello, 2 children, kept-alive upstream connections on both).
 *
 * After the uwsgi and proxy comparisons, Node's floor for the same work
 * (node-floor.ts): what a Node process costs at least per request there.
 *
 * Each row is a main-table row (bench-row.ts). Target: gatehouse/nginx ≥ TARGET.
 *
 *     npm run bench -- --suite upstreams
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Options } from './options.js';
import { commandPath } from './processes.js';
import { gunicornLaunch, proxyServers, TARGET } from './proxy-suite.js';
import { rowsSection, rowsTable, wrkCommand } from './report.js';
import { APPS, APPS_DIR, appFile, CLI, GATEHOUSE_NODE_FLAGS, gatehouseMissing, gatehouseRouteLaunch, GATEHOUSE_PROBLEMS, gunicornMissing, nginxLaunch, nginxMissing, nginxUwsgiServer, NGINX_PROBLEMS, PROCESSES, PYTHON, ROOT, type AppSpec, type Launch, type ServerSpec, type Versions } from './servers.js';
import { runPairings, targetLines, type Pairing } from './suite-rows.js';
import { WARMUP_SECONDS } from './wrk.js';

const PHP_FPM = 'php-fpm8.2';

const uwsgiFlask: AppSpec = { id: 'uwsgi-flask', module: 'flask_json' };
const php: AppSpec = { id: 'fastcgi-php', module: 'hello.php' };

/** Node's floor (node-floor.ts); its rows' app ids end in -floor: no gatehouse/peer ratio, no target. */
const FLOOR = join(ROOT, 'dist', 'bench', 'node-floor.js');
const floorApp = (app: AppSpec): AppSpec => ({ ...app, id: `${app.id}-floor` });

const phpMissing = () => (commandPath(PHP_FPM) === null ? `${PHP_FPM} is not installed (apt-get install php-fpm)` : null);

/** nginx → gatehouse's uwsgi listener, as nginx → uWSGI (nginxUwsgiServer) but for the back end. */
function nginxGatehouse(versions: Versions): ServerSpec {
  return {
    id: 'gatehouse',
    label: `nginx ${versions.nginx} (1 worker) uwsgi_pass → gatehouse ${versions.gatehouse} --uwsgi-socket (--workers ${PROCESSES})`,
    missing: () => gatehouseMissing() ?? nginxMissing(),
    launch: (app, port, tmp) => {
      const sock = join(tmp, 'gatehouse.sock');
      const location = `        location / {\n            include /etc/nginx/uwsgi_params;\n            uwsgi_pass unix:${sock};\n        }`;
      const gatehouse: Launch = {
        name: 'gatehouse',
        cmd: process.execPath,
        args: [...GATEHOUSE_NODE_FLAGS, CLI, `${appFile(app)}:app`, '--workers', String(PROCESSES), '--uwsgi-socket', `unix:${sock}`, '--chmod-socket', '666', '--python', PYTHON],
        cwd: ROOT,
        stopSignal: 'SIGTERM',
        waitForPath: sock,
      };
      return [gatehouse, nginxLaunch(tmp, port, location)];
    },
    problemLines: new RegExp(`${GATEHOUSE_PROBLEMS.source}|${NGINX_PROBLEMS.source}`),
    cpuNames: { front: 'nginx', python: 'node+python3' },
  };
}

/** Node's floor behind nginx's uwsgi_pass: accept, read the packet, a fixed answer, close. */
function nginxNodeFloor(versions: Versions): ServerSpec {
  return {
    id: 'node-floor',
    label: `nginx ${versions.nginx} (1 worker) uwsgi_pass → Node ${process.version} floor (accept, read, fixed answer, close)`,
    missing: nginxMissing,
    launch: (_app, port, tmp) => {
      const sock = join(tmp, 'floor.sock');
      const location = `        location / {\n            include /etc/nginx/uwsgi_params;\n            uwsgi_pass unix:${sock};\n        }`;
      return [{ name: 'node', cmd: process.execPath, args: [FLOOR, 'uwsgi', sock], cwd: ROOT, stopSignal: 'SIGTERM', waitForPath: sock }, nginxLaunch(tmp, port, location)];
    },
    problemLines: NGINX_PROBLEMS,
    cpuNames: { front: 'nginx', python: 'node' },
  };
}

/** Node's floor in front of gunicorn: undici's Pool.dispatch per request, a fixed head back. */
function proxyNodeFloor(versions: Versions): ServerSpec {
  return {
    id: 'node-floor',
    label: `Node ${process.version} + undici floor → gunicorn ${versions.gunicorn} (-w ${PROCESSES})`,
    missing: gunicornMissing,
    launch: (app, port, tmp) => {
      const sock = join(tmp, 'gunicorn.sock');
      return [gunicornLaunch(app, sock), { name: 'node', cmd: process.execPath, args: [FLOOR, 'proxy', String(port), sock], cwd: ROOT, stopSignal: 'SIGTERM' }];
    },
    problemLines: /Traceback/,
    cpuNames: { front: 'node', python: 'python3' },
  };
}

/** php-fpm, 2 children, on `sock` (mode 666: nginx's worker runs as nobody), serving `tmp`/www/index.php. */
function phpFpmLaunch(tmp: string, sock: string): Launch {
  const www = join(tmp, 'www');
  mkdirSync(www, { recursive: true, mode: 0o755 });
  writeFileSync(join(www, 'index.php'), readFileSync(join(APPS_DIR, 'hello.php')), { mode: 0o644 });
  const root = process.getuid?.() === 0;
  const conf = join(tmp, 'php-fpm.conf');
  const pool = [`listen = ${sock}`, 'listen.mode = 0666', 'pm = static', `pm.max_children = ${PROCESSES}`, ...(root ? ['user = root'] : [])];
  // php-fpm cannot write its log to a pipe's /proc/self/fd/2: a file in tmp, added to the server's log
  writeFileSync(conf, ['[global]', `error_log = ${join(tmp, 'php-fpm.log')}`, 'daemonize = no', '[www]', ...pool, ''].join('\n'));
  return { name: PHP_FPM, cmd: PHP_FPM, args: ['-n', '-F', ...(root ? ['-R'] : []), '-y', conf], cwd: tmp, stopSignal: 'SIGQUIT', waitForPath: sock, logFiles: [join(tmp, 'php-fpm.log')] };
}

function fastcgiServers(versions: Versions): ServerSpec[] {
  const label = `${PHP_FPM} (pm static, ${PROCESSES} children)`;
  return [
    {
      id: 'gatehouse',
      label: `gatehouse ${versions.gatehouse} fastcgi → ${label}`,
      missing: () => gatehouseMissing() ?? phpMissing(),
      launch: (_app, port, tmp) => {
        const sock = join(tmp, 'php-fpm.sock');
        // php-fpm's child stays with the kept-alive connection it took: past its children, requests queue in gatehouse.
        const route = `fastcgi = { pass = "unix:${sock}", root = "${join(tmp, 'www')}", keepalive = ${PROCESSES}, max_connections = ${PROCESSES} }`;
        return [phpFpmLaunch(tmp, sock), gatehouseRouteLaunch(tmp, port, route)];
      },
      problemLines: GATEHOUSE_PROBLEMS,
      cpuNames: { front: 'node', python: PHP_FPM },
    },
    {
      id: 'nginx',
      label: `nginx ${versions.nginx} (1 worker) fastcgi_pass → ${label}`,
      missing: () => nginxMissing() ?? phpMissing(),
      launch: (_app, port, tmp) => {
        const sock = join(tmp, 'php-fpm.sock');
        const location = [
          '        location / {',
          `            root ${join(tmp, 'www')};`,
          '            index index.php;',
          '            include /etc/nginx/fastcgi_params;',
          '            fastcgi_param SCRIPT_FILENAME $document_root/index.php;',
          '            fastcgi_keep_conn on;',
          '            fastcgi_pass php;',
          '        }',
        ].join('\n');
        return [phpFpmLaunch(tmp, sock), nginxLaunch(tmp, port, location, { http: [`upstream php { server unix:${sock}; keepalive 16; }`] })];
      },
      problemLines: NGINX_PROBLEMS,
      cpuNames: { front: 'nginx', python: PHP_FPM },
    },
  ];
}

/** Runs the rows, comparison by comparison (gatehouse first); the section's lines for stdout. */
export async function runUpstreamsSuite(versions: Versions, opts: Options): Promise<string[]> {
  const proxyApps = APPS.filter((a) => opts.apps === null || opts.apps.has(a.id)).map((a) => ({ ...a, id: `proxy-${a.id}` }));
  const pairings: Pairing[] = [
    { server: nginxGatehouse(versions), app: uwsgiFlask },
    { server: { ...nginxUwsgiServer(versions), cpuNames: { front: 'nginx', python: 'uwsgi' } }, app: uwsgiFlask },
    { server: nginxNodeFloor(versions), app: floorApp(uwsgiFlask) },
    ...proxyApps.flatMap((app) => [...proxyServers(versions).map((server) => ({ server, app })), { server: proxyNodeFloor(versions), app: floorApp(app) }]),
    ...fastcgiServers(versions).map((server) => ({ server, app: php })),
  ];
  const { rows, skipped } = await runPairings('upstreams', pairings, opts);
  const lines = [
    ...targetLines(rows, TARGET),
    `${wrkCommand(opts)} on /, after a ${WARMUP_SECONDS} s warm-up, fresh servers for each row; keep-alive from wrk, no access logs; every back end on a unix socket.`,
    `uwsgi: nginx (1 worker, stock uwsgi_params) in front of gatehouse --uwsgi-socket --workers ${PROCESSES} or of uWSGI --socket --processes ${PROCESSES} --master; front CPU: nginx; back end CPU: gatehouse's Node process and Python workers together, or uWSGI's processes.`,
    `proxy: gunicorn sync -w ${PROCESSES} (it closes each connection after its answer); gatehouse proxy = { upstreams = ["unix:SOCK"] } (defaults) or nginx proxy_pass to an upstream block with keepalive 16; back end CPU: gunicorn's python3.`,
    `node-floor rows (app ids ending in -floor): what a Node ${process.version} process costs at least for the same work, with nothing of gatehouse's (bench/node-floor.ts): behind nginx's uwsgi_pass, accept, read the packet, write the flask app's answer as a fixed buffer, close; in front of gunicorn, undici's Pool.dispatch per request with a bare handler and gatehouse's connector, the body back with a fixed head. Their node CPU/req is the floor under gatehouse's.`,
    `fastcgi: ${PHP_FPM} -n, pm static, ${PROCESSES} children, a PHP hello (bench/apps/hello.php); gatehouse fastcgi = { pass, root, keepalive = ${PROCESSES}, max_connections = ${PROCESSES} } (a php-fpm child serves one kept-alive connection until it closes: more connections than children wait unserved in php-fpm's listen queue, so requests past them wait in gatehouse) or nginx fastcgi_pass to an upstream block with keepalive 16 and fastcgi_keep_conn on, stock fastcgi_params.`,
  ];
  const table = rowsTable(rows, opts.markdown, { python: 'back end CPU/req', ratio: 'gatehouse/nginx' });
  return rowsSection(opts, 'Back ends and bridges (uwsgi, proxy, fastcgi):', table, lines, skipped, rows, ', upstreams');
}
