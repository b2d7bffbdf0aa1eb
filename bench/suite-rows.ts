/**
 * What the suites of main-table rows share (proxy, upstreams, cache, static,
 * asgi): choosing the servers (--only) and saying which cannot run here,
 * running each server × app as a main-table row (bench-row.ts) with its
 * progress lines, and whether each gatehouse/peer ratio meets its target.
 */
import { benchRow, emptyRow, type Row } from './bench-row.js';
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

/** One main-table row into `rows`, with its progress lines (`what`: the first one's, after "-- "). */
async function runRow(what: string, { server, app }: Pairing, opts: Options, logName: string | undefined, rows: Row[]): Promise<void> {
  progress(`-- ${what} ...`);
  const row = await benchRow(server, app, opts, logName);
  rows.push(row);
  rowProgress(row, rows);
}

/** Runs the pairings in order (`suite`: for the progress lines and the logs' names); the rows run and why others were skipped. */
export async function runPairings(suite: string, pairings: readonly Pairing[], opts: Options): Promise<{ rows: Row[]; skipped: string[] }> {
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const pairing of pairings) {
    const { server, app } = pairing;
    if (opts.only !== null && !opts.only.has(server.id)) continue;
    const missing = server.missing() ?? flaskMissing(app);
    if (missing !== null) skipped.push(`${server.label} × ${app.id}: skipped: ${missing}`);
    else await runRow(`${suite}: ${server.label} × ${app.id}`, pairing, opts, `${suite}-${server.id}-${app.id}`, rows);
  }
  return { rows, skipped };
}

/** How runAppsOnServers names and skips rows. */
export interface AppRows {
  /** The app in the progress lines (default: its id). */
  shown?: (app: AppSpec) => string;
  /** The logs' name (default: SUITE-SERVER-APP). */
  logName?: (server: ServerSpec, app: AppSpec) => string;
  /** Why the app cannot run here: its rows are shown as skipped. */
  appMissing?: (app: AppSpec) => string | null;
}

/** Runs each app on each chosen server (app by app, the servers in order); the rows and the servers that cannot run here. */
export async function runAppsOnServers(suite: string, servers: readonly ServerSpec[], apps: readonly AppSpec[], opts: Options, how: AppRows = {}): Promise<{ rows: Row[]; skipped: string[] }> {
  const chosen = chosenServers(servers, opts);
  const rows: Row[] = [];
  for (const app of apps) {
    for (const server of chosen) {
      if (server.missing() !== null) continue;
      const appMissing = how.appMissing?.(app) ?? null;
      if (appMissing !== null) rows.push(emptyRow(server, app, appMissing));
      else await runRow(`${suite}: ${server.label} × ${how.shown?.(app) ?? app.id}`, { server, app }, opts, how.logName?.(server, app) ?? `${suite}-${server.id}-${app.id}`, rows);
    }
  }
  return { rows, skipped: skippedServers(chosen) };
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
