/**
 * What the suites of main-table rows share (proxy, upstreams, cache, static,
 * asgi): choosing the servers (--only) and saying which cannot run here,
 * running each server × app as a main-table row (bench-row.ts) with its
 * progress lines, and whether each gatehouse/peer ratio meets its target.
 */
import { benchRows, emptyRow, type Row, type RowPlan } from './bench-row.js';
import type { Options } from './options.js';
import { progress, rowProgress, targetVerdict } from './report.js';
import { hasPythonModule, PYTHON, type AppSpec, type ServerSpec } from './servers.js';
import { okRps } from './wrk.js';

export interface Pairing {
  server: ServerSpec;
  /** Its id is unique per comparison: the gatehouse row and the peer row of one comparison share it. */
  app: AppSpec;
}

/** Why the app cannot run here (it needs flask and flask is missing); null when it can. */
export const flaskMissing = (app: AppSpec) => (app.module === 'flask_json' && !hasPythonModule('flask') ? `flask is not installed for ${PYTHON} (apt-get install python3-flask)` : null);

/** The servers --only keeps. */
export const chosenServers = <S extends ServerSpec>(servers: readonly S[], opts: Options): S[] => servers.filter((s) => opts.only === null || opts.only.has(s.id));

/** "LABEL: skipped: WHY" for each server that cannot run here. */
export const skippedServers = (servers: readonly ServerSpec[]) => servers.flatMap((s) => (s.missing() === null ? [] : [`${s.label}: skipped: ${s.missing()!}`]));

/** A row to run: its progress lines say "SUITE: SERVER × APP" (`shown`: the app as said there), its logs are SUITE-SERVER-APP unless `logName` says. */
export const rowPlan = (suite: string, server: ServerSpec, app: AppSpec, shown = app.id, logName = `${suite}-${server.id}-${app.id}`): RowPlan => ({
  server,
  app,
  what: `${suite}: ${server.label} × ${shown}`,
  logName,
});

/** Runs the pairings in rounds (benchRows; `suite`: for the progress lines and the logs' names); the rows run and why others were skipped. */
export async function runPairings(suite: string, pairings: readonly Pairing[], opts: Options): Promise<{ rows: Row[]; skipped: string[] }> {
  const plans: RowPlan[] = [];
  const skipped: string[] = [];
  for (const { server, app } of pairings) {
    if (opts.only !== null && !opts.only.has(server.id)) continue;
    const missing = server.missing() ?? flaskMissing(app);
    if (missing !== null) skipped.push(`${server.label} × ${app.id}: skipped: ${missing}`);
    else plans.push(rowPlan(suite, server, app));
  }
  return { rows: await runPlans(plans, opts), skipped };
}

/** benchRows with each row's progress lines as it ends (`onRow` first). */
async function runPlans(plans: readonly RowPlan[], opts: Options, onRow?: (row: Row) => void): Promise<Row[]> {
  const ended: Row[] = [];
  return benchRows(plans, opts, (row) => {
    onRow?.(row);
    ended.push(row);
    rowProgress(row, ended);
  });
}

/** How runAppsOnServers names and skips rows. */
export interface AppRows {
  /** The app in the progress lines (default: its id). */
  shown?: (app: AppSpec) => string;
  /** The logs' name (default: SUITE-SERVER-APP). */
  logName?: (server: ServerSpec, app: AppSpec) => string;
  /** Why the app cannot run here: its rows are shown as skipped. */
  appMissing?: (app: AppSpec) => string | null;
  /** Called with each row as it ends, before its progress lines. */
  onRow?: (row: Row) => void;
}

/**
 * Runs each app on each chosen server that runs it (ServerSpec.apps), app by
 * app, the servers' runs in rounds (benchRows); the rows, app by app, and the
 * servers that cannot run here.
 */
export async function runAppsOnServers(suite: string, servers: readonly ServerSpec[], apps: readonly AppSpec[], opts: Options, how: AppRows = {}): Promise<{ rows: Row[]; skipped: string[] }> {
  const chosen = chosenServers(servers, opts);
  const skipped = skippedServers(chosen);
  for (const line of skipped) progress(`-- ${suite}: ${line}`);
  const runnable = chosen.filter((s) => s.missing() === null);
  const rows: Row[] = [];
  for (const app of apps) {
    const onApp = runnable.filter((s) => s.apps === undefined || s.apps.includes(app.id));
    const appMissing = how.appMissing?.(app) ?? null;
    if (appMissing !== null) {
      rows.push(...onApp.map((server) => emptyRow(server, app, appMissing)));
      continue;
    }
    const plans = onApp.map((server) => rowPlan(suite, server, app, how.shown?.(app), how.logName?.(server, app)));
    rows.push(...(await runPlans(plans, opts, how.onRow)));
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
    return [targetVerdict(`${id}: gatehouse/${peer.server.id}`, okRps(gh) / okRps(peer.wrk), target)];
  });
}
