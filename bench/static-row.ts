/**
 * The static suite: a 1 KiB and a 1 MiB file served by gatehouse's front
 * (--static /static=DIR; the CLI needs an app: bench/apps/hello.py with 1
 * worker, which these requests never reach) and by nginx (location /static/
 * { alias DIR/; }, sendfile on, worker_processes 1 as gatehouse's front is one
 * Node process). Each row is a main-table row (bench-row.ts: wrk on the
 * file's path, the connection check, the CPU accounting, --repeat, the
 * retry). Target: gatehouse/nginx ≥ TARGET_1K for the 1 KiB file.
 */
import { benchRow, type Row } from './bench-row.js';
import { makeStaticDir, nginxFront, STATIC_FILES } from './front-servers.js';
import type { Options } from './options.js';
import { removeTempDir } from './processes.js';
import { NON2XX_LEGEND, noteLines, progress, rowProgress, rowsTable, SERVED_LEGEND } from './report.js';
import { gatehouseServer, type AppSpec, type Versions } from './servers.js';
import { CONNECTIONS, WARMUP_SECONDS } from './wrk.js';

export const TARGET_1K = 0.7;

/** Runs the rows, file by file (gatehouse then nginx); the section's lines for stdout. */
export async function runStaticSuite(versions: Versions, opts: Options): Promise<string[]> {
  const dir = makeStaticDir();
  const rows: Row[] = [];
  const skipped: string[] = [];
  try {
    const specs = [gatehouseServer(versions, 1, ['--static', `/static=${dir}`], '--static /static=DIR'), nginxFront(versions, dir)].filter(
      (s) => opts.only === null || opts.only.has(s.id),
    );
    const files: AppSpec[] = STATIC_FILES.map((f) => ({ id: f.id, module: 'hello', path: `/static/${f.name}` }));
    for (const server of specs) {
      const missing = server.missing();
      if (missing !== null) skipped.push(`${server.label}: skipped: ${missing}`);
    }
    for (const file of files) {
      for (const server of specs) {
        if (server.missing() !== null) continue;
        progress(`-- static: ${server.label} × ${file.id} (${file.path}) ...`);
        const row = await benchRow(server, file, opts);
        rows.push(row);
        rowProgress(row, rows);
      }
    }
  } finally {
    removeTempDir(dir);
  }
  return section(rows, skipped, opts);
}

/** "met" or "MISSED" for the 1 KiB file's ratio; null without both rows. */
function targetLine(rows: readonly Row[]): string | null {
  const rps = (id: string) => rows.find((r) => r.server.id === id && r.app.id === STATIC_FILES[0].id)?.wrk?.rps;
  const gh = rps('gatehouse');
  const nginx = rps('nginx');
  if (gh === undefined || nginx === undefined || nginx <= 0) return null;
  const ratio = gh / nginx;
  return `${STATIC_FILES[0].id}: gatehouse/nginx ${ratio.toFixed(2)}×, target ≥ ${TARGET_1K}×: ${ratio >= TARGET_1K ? 'met' : 'MISSED'}.`;
}

function section(rows: readonly Row[], skipped: readonly string[], opts: Options): string[] {
  const item = opts.markdown ? '- ' : '';
  const target = targetLine(rows);
  return [
    'Static files (no Python):',
    '',
    rowsTable(rows, opts.markdown, { app: 'file', ratio: 'gatehouse/nginx' }),
    '',
    ...(target === null ? [] : [`${item}${target}`]),
    `${item}wrk -t1 -c${CONNECTIONS} -d${opts.duration}s --latency on /static/FILE (random bytes), after a ${WARMUP_SECONDS} s warm-up on it, one fresh server per row; keep-alive, no access log on either server, no compression (wrk sends no Accept-Encoding).`,
    `${item}gatehouse: --static /static=DIR served by the Node front (from its file cache: files up to 64 KiB in memory); the app (bench/apps/hello.py, --workers 1) is only there because the CLI needs one. ` +
      `nginx: worker_processes 1, location /static/ { alias DIR/; }, sendfile on, keepalive_requests 1000000, Debian's mime.types.`,
    `${item}${SERVED_LEGEND}`,
    `${item}${NON2XX_LEGEND}`,
    ...skipped.map((s) => `${item}${s}`),
    ...noteLines(rows, ', static', opts.markdown),
  ];
}
