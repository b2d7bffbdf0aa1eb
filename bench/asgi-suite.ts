/**
 * The asgi suite: ASGI 3 apps (bench/apps/asgi_hello.py, a raw hello world;
 * bench/apps/fastapi_json.py, a FastAPI JSON route) on gatehouse
 * (--interface asgi) and on the ASGI servers a user could pick instead, each
 * with PROCESSES worker processes: uvicorn (--workers, uvloop, httptools), gunicorn
 * with uvicorn's worker class and hypercorn (-w, uvloop), all from Debian,
 * and daphne (one process: it has no workers option). Each row is a
 * main-table row (bench-row.ts: wrk, the connection check, the CPU
 * accounting, --repeat). The WebSocket rows follow (asgi-websocket-rows.ts).
 */
import { runWebSocketRows } from './asgi-websocket-rows.js';
import type { Options } from './options.js';
import { rowsSection, rowsTable, wrkCommand } from './report.js';
import { APPS_DIR, gatehouseServer, gunicornMissing, hasPythonModule, uvicornLaunch, PROCESSES, PYTHON, type AppSpec, type ServerSpec, type Versions } from './servers.js';
import { runAppsOnServers } from './suite-rows.js';
import { WARMUP_SECONDS } from './wrk.js';

const ASGI_APPS: AppSpec[] = [
  { id: 'asgi-hello', module: 'asgi_hello' },
  { id: 'fastapi', module: 'fastapi_json', path: '/items/7?q=tea' },
];

const uvicornMissing = () =>
  hasPythonModule('uvicorn') && hasPythonModule('uvloop') && hasPythonModule('httptools') ? null : `uvicorn, uvloop or httptools is not installed for ${PYTHON} (apt-get install uvicorn python3-uvloop python3-httptools)`;

export function asgiServers(versions: Versions): ServerSpec[] {
  return [
    gatehouseServer(versions, PROCESSES, ['--interface', 'asgi']),
    {
      id: 'uvicorn',
      label: `uvicorn ${versions.uvicorn} (--workers ${PROCESSES}, --loop uvloop, --http httptools)`,
      missing: uvicornMissing,
      launch: (app, port) => [uvicornLaunch(app, port)],
      problemLines: /Traceback|\bERROR\b/,
    },
    {
      id: 'gunicorn-uvicorn',
      label: `gunicorn ${versions.gunicorn} -k uvicorn.workers.UvicornWorker (-w ${PROCESSES})`,
      missing: () => uvicornMissing() ?? gunicornMissing(),
      launch: (app, port) => [
        {
          name: 'gunicorn',
          cmd: PYTHON,
          args: ['-m', 'gunicorn', '-w', String(PROCESSES), '-k', 'uvicorn.workers.UvicornWorker', '-b', `127.0.0.1:${port}`, '--chdir', APPS_DIR, `${app.module}:app`],
          cwd: APPS_DIR,
          stopSignal: 'SIGTERM',
        },
      ],
      problemLines: /\[(WARNING|ERROR|CRITICAL)\]|Traceback/,
    },
    {
      id: 'hypercorn',
      label: `hypercorn ${versions.hypercorn} (-w ${PROCESSES}, -k uvloop)`,
      missing: () => (hasPythonModule('hypercorn') ? null : `hypercorn is not installed for ${PYTHON} (apt-get install python3-hypercorn)`),
      launch: (app, port) => [
        {
          name: 'hypercorn',
          cmd: PYTHON,
          args: ['-m', 'hypercorn', '-w', String(PROCESSES), '-k', 'uvloop', '--bind', `127.0.0.1:${port}`, `${app.module}:app`],
          cwd: APPS_DIR,
          stopSignal: 'SIGTERM',
        },
      ],
      problemLines: /Traceback|\bERROR\b|CRITICAL/,
    },
    {
      id: 'daphne',
      label: `daphne ${versions.daphne} (1 process: daphne has no workers option)`,
      missing: () => (hasPythonModule('daphne') ? null : `daphne is not installed for ${PYTHON} (apt-get install daphne)`),
      launch: (app, port) => [
        {
          name: 'daphne',
          cmd: PYTHON,
          // -v 0: no access log (the others keep none either).
          args: ['-m', 'daphne', '-v', '0', '-b', '127.0.0.1', '-p', String(port), `${app.module}:app`],
          cwd: APPS_DIR,
          stopSignal: 'SIGTERM',
        },
      ],
      problemLines: /Traceback|\bERROR\b|CRITICAL/,
    },
  ];
}

/** Runs the rows, app by app; the section's lines for stdout. */
export async function runAsgiSuite(versions: Versions, opts: Options): Promise<string[]> {
  const fastapiMissing = hasPythonModule('fastapi') ? null : `fastapi is not installed for ${PYTHON} (apt-get install python3-fastapi)`;
  const { rows, skipped } = await runAppsOnServers('asgi', asgiServers(versions), ASGI_APPS, opts, { appMissing: (app) => (app.id === 'fastapi' ? fastapiMissing : null) });
  const websockets = await runWebSocketRows(versions, opts);
  const lines = [
    `${wrkCommand(opts)}, after a ${WARMUP_SECONDS} s warm-up, one fresh server per row; ${PROCESSES} Python processes each (daphne: 1), Debian's ${PYTHON}; asgi-hello: a raw ASGI app, fastapi: GET /items/7?q=tea.`,
    `Targets (issue 11): FastAPI ≥ 1.0× uvicorn with p99 at or below its; raw ASGI hello ≥ 0.8× uvicorn.`,
  ];
  return [...rowsSection(opts, 'ASGI apps:', rowsTable(rows, opts.markdown, { ratio: 'gatehouse/peer' }), lines, skipped, rows, ', asgi'), '', ...websockets];
}
