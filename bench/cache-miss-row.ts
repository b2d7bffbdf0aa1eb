/**
 * What the cache adds to a miss (issue 12's target: under 10% of the
 * uncached route's latency): the same 1 KiB page through gatehouse with the
 * cache off, then on with every request a miss — a query string of its own
 * each time (a wrk script), so each is looked up, fetched, stored and
 * evicts an older one: the whole miss path. Latency below saturation: one
 * connection (wrk -t1 -c1), so no request queues behind another (with four,
 * both cores were 80–85% busy and the mean latency was 1.5–1.8 times one
 * connection's: mostly queueing). Mean and p99 of the median run of
 * --repeat on one server, each with URLs of its own.
 *
 * The store is measured full, as a cache under misses spends its life: a
 * small one (MISS_CACHE), filled and evicting after a warm-up of misses on
 * four connections. While a store first fills, each stored response also
 * costs the first touch of new memory (page faults, far dearer on a VM than
 * on bare metal); the README gives that figure.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Options } from './options.js';
import { firstLine, makeTempDir, removeTempDir, runCommand } from './processes.js';
import { medianRun } from './bench-row.js';
import { formatMs } from './report.js';
import { withServer } from './server-run.js';
import type { AppSpec, ServerSpec } from './servers.js';
import { parseWrk } from './wrk.js';

const MISS_CONNECTIONS = 1;
/** The store the misses run on: full after WARM_SECONDS of misses (each 1 KiB page is about 1.3 KiB stored). */
export const MISS_CACHE = '16m';
const WARM_SECONDS = 4;
const WARM_CONNECTIONS = 4;
const PAGE: AppSpec = { id: '1KiB-miss', module: 'cached_page', path: '/1k' };
const TARGET = 0.1;
/** A query string of its own for every request (`run` keeps runs on one server apart): every one a miss. */
const uniqueUrls = (run: string) => `counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/1k?${run}=" .. counter)
end
`;

interface MissLatency {
  meanMs: number;
  p99Ms: number;
}

/** wrk's mean latency (its Thread Stats line). */
function meanMs(out: string): number | null {
  const m = /^\s+Latency\s+([\d.]+)(us|ms|s)\b/m.exec(out);
  if (m === null) return null;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/**
 * The median of --repeat runs on one server, after a warm-up of misses of
 * its own (the server's warm-up asks for the plain page: for the cache, hits).
 */
async function missLatency(server: ServerSpec, opts: Options, logName: string, notes: string[]): Promise<MissLatency | null> {
  const dir = makeTempDir('gatehouse-bench-miss-');
  const runs: MissLatency[] = [];
  const wrk = async (port: number, run: string, seconds: number, connections = MISS_CONNECTIONS) => {
    const script = join(dir, `${run}.lua`);
    writeFileSync(script, uniqueUrls(run));
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/1k`];
    return runCommand('wrk', 'wrk', args, (seconds + 30) * 1000);
  };
  try {
    await withServer(server, PAGE, opts, logName, notes, async (port) => {
      await wrk(port, 'warm', WARM_SECONDS, WARM_CONNECTIONS);
      for (let i = 1; i <= opts.repeat; i++) {
        const run = await wrk(port, `run${i}`, opts.duration);
        const parsed = parseWrk(run.out);
        const mean = meanMs(run.out);
        if (parsed === null || mean === null) notes.push(`could not read wrk's output: ${firstLine(run.out)}`);
        else if (parsed.non2xx3xx > 0) notes.push(`${parsed.non2xx3xx} non-2xx/3xx answers`);
        else runs.push({ meanMs: mean, p99Ms: parsed.p99ms });
      }
    });
  } finally {
    removeTempDir(dir);
  }
  return runs.length === 0 ? null : medianRun(runs, (r) => r.meanMs).median;
}

/** The section's lines (list items): the cache off and on (all misses), and what the misses added. */
export async function missLatencyLines(uncached: ServerSpec, cached: ServerSpec, opts: Options): Promise<string[]> {
  const notes: string[] = [];
  const off = await missLatency(uncached, opts, 'cache-miss-off', notes);
  const on = await missLatency(cached, opts, 'cache-miss-on', notes);
  const cell = (m: MissLatency | null) => (m === null ? 'failed' : `mean ${formatMs(m.meanMs)}, p99 ${formatMs(m.p99Ms)}`);
  const lines = [`cache misses, 1 KiB page, wrk -t1 -c${MISS_CONNECTIONS} -d${opts.duration}s with a query string of its own per request (median of ${opts.repeat} runs after ${WARM_SECONDS} s of misses on ${WARM_CONNECTIONS} connections): cache off ${cell(off)}; cache on (--cache ${MISS_CACHE}, full and evicting), every request a miss: ${cell(on)}.`];
  if (off !== null && on !== null) {
    const added = on.meanMs / off.meanMs - 1;
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
    lines.push(`misses add ${pct(added)} to the mean latency (p99 ${pct(on.p99Ms / off.p99Ms - 1)}), target under +${TARGET * 100}%: ${added < TARGET ? 'met' : 'MISSED'}.`);
  }
  return [...lines, ...notes.map((n) => `cache misses: ${n}`)];
}
