/**
 * What the suites that pit a gatehouse row against one peer row share (proxy,
 * upstreams): run each pairing as a main-table row (bench-row.ts), skipping
 * those whose server or app cannot run here, and say whether each
 * gatehouse/peer ratio meets its target.
 */
import { benchRow, type Row } from './bench-row.js';
import type { Options } from './options.js';
import { progress, rowProgress } from './report.js';
import { hasPythonModule, PYTHON, type AppSpec, type ServerSpec } from './servers.js';
import { okRps } from './wrk.js';

export interface Pairing {
  server: ServerSpec;
  /** Its id is unique per comparison: the gatehouse row and the peer row of one comparison share it. */
  app: AppSpec;
}

const flaskMissing = (app: AppSpec) => (app.module === 'flask_json' && !hasPythonModule('flask') ? `flask is not installed for ${PYTHON} (apt-get install python3-flask)` : null);

/** Runs the pairings in order (`suite`: for the progress lines and the logs' names); the rows run and why others were skipped. */
export async function runPairings(suite: string, pairings: readonly Pairing[], opts: Options): Promise<{ rows: Row[]; skipped: string[] }> {
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const { server, app } of pairings) {
    if (opts.only !== null && !opts.only.has(server.id)) continue;
    const missing = server.missing() ?? flaskMissing(app);
    if (missing !== null) {
      skipped.push(`${server.label} × ${app.id}: skipped: ${missing}`);
      continue;
    }
    progress(`-- ${suite}: ${server.label} × ${app.id} ...`);
    const row = await benchRow(server, app, opts, `${suite}-${server.id}-${app.id}`);
    rows.push(row);
    rowProgress(row, rows);
  }
  return { rows, skipped };
}

/** "met" or "MISSED" for each app's gatehouse/peer ratio (req/s of 2xx/3xx answers; the peer: the app's other row). */
export function targetLines(rows: readonly Row[], target: number): string[] {
  const ids = [...new Set(rows.map((r) => r.app.id))];
  return ids.flatMap((id) => {
    const gh = rows.find((r) => r.server.id === 'gatehouse' && r.app.id === id)?.wrk;
    const peer = rows.find((r) => r.server.id !== 'gatehouse' && r.app.id === id);
    if (!gh || !peer?.wrk || okRps(peer.wrk) <= 0) return [];
    const ratio = okRps(gh) / okRps(peer.wrk);
    return [`${id}: gatehouse/${peer.server.id} ${ratio.toFixed(2)}×, target ≥ ${target}×: ${ratio >= target ? 'met' : 'MISSED'}.`];
  });
}
