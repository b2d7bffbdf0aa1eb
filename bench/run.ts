/**
 * gatehouse benchmark suite: the same WSGI apps (bench/apps/) on gatehouse and
 * on the servers a user could pick instead (gunicorn, uWSGI, nginx + uWSGI,
 * waitress), each with 2 Python processes, loaded by `wrk -t1 -c50` on
 * loopback. For each row it reports req/s and p99, and checks that the server
 * served all 50 connections (connection-check.ts) and that nothing else took
 * CPU during the run (cpu-usage.ts). A second, small table (reload-row.ts)
 * runs the hello app on gatehouse and gunicorn again with a graceful reload
 * (SIGHUP) every 2 s under the same load: failed requests and p99 during
 * reloads. It ends with the per-request cost inside gatehouse's Python worker
 * (worker_cost.py).
 *
 *     npm run bench                       # 10 s per run
 *     npm run bench -- --quick            # 3 s per run, fewer worker-cost iterations
 *     BENCH_DURATION=5 npm run bench      # any duration (wins over --quick)
 *     npm run bench -- --markdown         # the results table as Markdown, for the README
 *     npm run bench -- --only gatehouse,nginx-uwsgi --apps hello
 *     npm run bench -- --no-reload --no-worker-cost   # the main table only
 *     npm run bench -- --help             # every flag
 *
 * That is the wsgi suite, the default. --suite picks others, the front end's
 * duties against nginx (1 worker, as gatehouse's front is one Node process):
 * static files (static-row.ts), idle keep-alive memory (idle-memory.ts) and
 * slowloris (slowloris.ts).
 *
 *     npm run bench -- --suite static,idle,slowloris   # or --suite front, or npm run bench:front
 *     npm run bench -- --suite all
 *
 * --suite asgi (asgi-suite.ts) runs ASGI apps on gatehouse, uvicorn and
 * gunicorn with uvicorn's worker class.
 *
 * --suite tls (tls-suite.ts) runs gatehouse and nginx + uWSGI over TLS with
 * one self-signed certificate made at the start, 2 Python processes each, on
 * the hello and flask apps: HTTP/1.1 over TLS (wrk -c50, as the main table),
 * h2 (h2load -c10 -m5 -n 4000×duration, h2load.ts) and h2 with 200
 * concurrent streams (h2load -c4 -m50), where nginx + uWSGI answers many
 * 502s. req/s counts 2xx answers only, and every row shows its non-2xx
 * answers; ratios gatehouse / nginx + uWSGI and CPU per answer of each front.
 *
 *     npm run bench -- --suite tls --repeat 3 --markdown
 *
 * --suite proxy (proxy-suite.ts): gatehouse's proxy action against nginx's
 * proxy_pass, both in front of the same gunicorn.
 *
 * --suite upstreams (upstreams-suite.ts): nginx uwsgi_pass → gatehouse against
 * → uWSGI, the proxy rows, and gatehouse fastcgi against nginx fastcgi_pass,
 * both → php-fpm.
 *
 * Needs wrk, ss (iproute2), Debian's /usr/bin/python3 with python3-flask, and
 * the peers (a missing one is skipped); the tls suite also h2load
 * (nghttp2-client) and openssl. Rows run one after the other, never in
 * parallel; everything started is killed on Ctrl-C.
 */
import { existsSync } from 'node:fs';
import { asgiServers, runAsgiSuite } from './asgi-suite.js';
import { WEBSOCKET_SERVER_IDS } from './asgi-websocket-rows.js';
import { runIdleSuite } from './idle-memory.js';
import { fail, parseOptions, type Options } from './options.js';
import { commandPath, installCleanup, killEverything } from './processes.js';
import { reloadSection, runReloadRows } from './reload-row.js';
import { headerLines, printReport, progress, type WsgiResults } from './report.js';
import { APPS, detectVersions, PYTHON, servers, type Versions } from './servers.js';
import { flaskMissing, runAppsOnServers } from './suite-rows.js';
import { runSlowlorisSuite } from './slowloris.js';
import { runStaticSuite } from './static-row.js';
import { runTlsSuite } from './tls-suite.js';
import { runProxySuite } from './proxy-suite.js';
import { runCacheSuite } from './cache-suite.js';
import { runUpstreamsSuite } from './upstreams-suite.js';
import { measureWorkerCost, type WorkerCost } from './worker-cost.js';
import { CONNECTIONS } from './wrk.js';

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  installCleanup();
  if (commandPath('wrk') === null) fail('wrk is not installed (apt-get install wrk)');
  if (commandPath('ss') === null) fail('ss is not installed (apt-get install iproute2); it is needed to check every connection is served');
  if (opts.suites.has('tls')) {
    if (commandPath('h2load') === null) fail('h2load is not installed (apt-get install nghttp2-client); the tls suite needs it');
    if (commandPath('openssl') === null) fail('openssl is not installed (apt-get install openssl); the tls suite makes its certificate with it');
  }
  if (!existsSync(PYTHON)) fail(`${PYTHON} is missing: the benchmark runs every server with Debian's python3`);
  const versions = detectVersions();
  const header = headerLines(opts, versions);
  const all = servers(versions);
  // the front suites' peer, nginx on its own, is no server of the main table
  const known = [...new Set([...all.map((s) => s.id), 'nginx', 'varnish', 'nginx-cache', 'node-floor', ...asgiServers(versions).map((s) => s.id), ...WEBSOCKET_SERVER_IDS])];
  if (opts.only) for (const id of opts.only) if (!known.includes(id)) fail(`--only: unknown server ${JSON.stringify(id)} (known: ${known.join(', ')})`);
  if (opts.apps) for (const id of opts.apps) if (!APPS.some((a) => a.id === id)) fail(`--apps: unknown app ${JSON.stringify(id)} (known: ${APPS.map((a) => a.id).join(', ')})`);

  progress(header.join('\n'));
  const wsgi = opts.suites.has('wsgi') ? await runWsgiSuite(versions, opts) : null;
  const sections: string[][] = [];
  if (opts.suites.has('static')) sections.push(await runStaticSuite(versions, opts));
  if (opts.suites.has('idle')) sections.push(await runIdleSuite(versions, opts));
  if (opts.suites.has('slowloris')) sections.push(await runSlowlorisSuite(versions, opts));
  if (opts.suites.has('tls')) sections.push(await runTlsSuite(versions, opts));
  if (opts.suites.has('proxy')) sections.push(await runProxySuite(versions, opts));
  if (opts.suites.has('asgi')) sections.push(await runAsgiSuite(versions, opts));
  if (opts.suites.has('cache')) sections.push(await runCacheSuite(versions, opts));
  if (opts.suites.has('upstreams')) sections.push(await runUpstreamsSuite(versions, opts));
  printReport(opts, header, wsgi, sections);
}

/** The main table, the reload rows and the worker cost. */
async function runWsgiSuite(versions: Versions, opts: Options): Promise<WsgiResults> {
  const apps = APPS.filter((a) => opts.apps === null || opts.apps.has(a.id));
  // --only names the rows exactly, the control row included.
  const chosen = servers(versions).filter((s) => (opts.only === null ? !s.control || opts.control : opts.only.has(s.id)));
  const { rows, skipped: skippedServers } = await runAppsOnServers('wsgi', chosen, apps, opts, {
    appMissing: flaskMissing,
    logName: (server, app) => `${server.id}-${app.id}`,
    onRow: (row) => {
      if (row.server.control && row.conn !== null && row.conn.served === CONNECTIONS) {
        row.notes.push('the control was not flagged STARVED: the connection check did not work in this run');
      }
    },
  });
  // The table lists the rows server by server.
  rows.sort((a, b) => chosen.indexOf(a.server) - chosen.indexOf(b.server));

  const reloadRows = await runReloadRows(chosen, apps, opts);
  let cost: WorkerCost | string | null = null;
  if (opts.workerCost) {
    progress('-- per-request cost inside the Python worker ...');
    cost = await measureWorkerCost(opts.quick);
  }
  return { rows, skippedServers, reloadSection: reloadSection(reloadRows, opts), cost };
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killEverything();
  process.exit(1);
});
