/**
 * The static suite: a 1 KiB and a 1 MiB file served by gatehouse's front
 * (--static /static=DIR; the CLI needs an app: bench/apps/hello.py with 1
 * worker, which these requests never reach) and by nginx (location /static/
 * { alias DIR/; }, sendfile on, worker_processes 1 as gatehouse's front is one
 * Node process). Each row is a main-table row (bench-row.ts: wrk on the
 * file's path, the connection check, the CPU accounting, --repeat, the
 * retry). Target: gatehouse/nginx ≥ TARGET_1K for the 1 KiB file.
 */
import type { Row } from './bench-row.js';
import { makeStaticDir, nginxFront, STATIC_FILES } from './front-servers.js';
import type { Options } from './options.js';
import { removeTempDir } from './processes.js';
import { rowsSection, rowsTable, targetVerdict, wrkCommand } from './report.js';
import { gatehouseServer, type AppSpec, type Versions } from './servers.js';
import { runAppsOnServers } from './suite-rows.js';
import { WARMUP_SECONDS } from './wrk.js';

export const TARGET_1K = 0.7;

/** Runs the rows, file by file (gatehouse then nginx); the section's lines for stdout. */
export async function runStaticSuite(versions: Versions, opts: Options): Promise<string[]> {
  const dir = makeStaticDir();
  try {
    const servers = [gatehouseServer(versions, 1, ['--static', `/static=${dir}`], '--static /static=DIR'), nginxFront(versions, dir)];
    const files: AppSpec[] = STATIC_FILES.map((f) => ({ id: f.id, module: 'hello', path: `/static/${f.name}` }));
    const { rows, skipped } = await runAppsOnServers('static', servers, files, opts, {
      shown: (file) => `${file.id} (${file.path})`,
      logName: (server, file) => `${server.id}-${file.id}`,
    });
    return section(rows, skipped, opts);
  } finally {
    removeTempDir(dir);
  }
}

/** "met" or "MISSED" for the 1 KiB file's ratio; none without both rows. */
function targetLines(rows: readonly Row[]): string[] {
  const rps = (id: string) => rows.find((r) => r.server.id === id && r.app.id === STATIC_FILES[0].id)?.wrk?.rps;
  const gh = rps('gatehouse');
  const nginx = rps('nginx');
  if (gh === undefined || nginx === undefined || nginx <= 0) return [];
  return [targetVerdict(`${STATIC_FILES[0].id}: gatehouse/nginx`, gh / nginx, TARGET_1K)];
}

function section(rows: readonly Row[], skipped: readonly string[], opts: Options): string[] {
  const lines = [
    ...targetLines(rows),
    `${wrkCommand(opts)} on /static/FILE (random bytes), after a ${WARMUP_SECONDS} s warm-up on it, one fresh server per row; keep-alive, no access log on either server, no compression (wrk sends no Accept-Encoding).`,
    `gatehouse: --static /static=DIR served by the Node front (from its file cache: files up to 64 KiB in memory); the app (bench/apps/hello.py, --workers 1) is only there because the CLI needs one. ` +
      `nginx: worker_processes 1, location /static/ { alias DIR/; }, sendfile on, keepalive_requests 1000000, Debian's mime.types.`,
  ];
  return rowsSection(opts, 'Static files (no Python):', rowsTable(rows, opts.markdown, { app: 'file', ratio: 'gatehouse/nginx' }), lines, skipped, rows, ', static');
}
