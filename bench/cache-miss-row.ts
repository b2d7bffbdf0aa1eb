/**
 * What the cache adds to a miss (issue 12's target: under 10% of the
 * uncached route's latency): the same 1 KiB page through gatehouse with the
 * cache off, then on with every request a miss — a query string of its own
 * each time (a wrk script), so each is looked up, fetched, stored and
 * evicts an older one: the whole miss path. Latency below saturation: one
 * connection (wrk -t1 -c1), so no request queues behind another (with four,
 * both cores were 80–85% busy and the mean latency was 1.5–1.8 times one
 * connection's: mostly queueing). The two servers run side by side and are
 * measured in turn, nine pairs of runs or --repeat, each pair off, on, on,
 * off in runs of half the duration: this VM drifts by more than the target
 * within a minute, so runs of one server after the other's compared the
 * machine's moments as much as the servers (−21% to +30% on one build). What
 * misses add is the median of the pairs' ratios of mean latency.
 *
 * The store is measured full, as a cache under misses spends its life: a
 * small one (MISS_CACHE), filled and evicting after a warm-up of misses on
 * four connections. While a store first fills, each stored response also
 * costs the first touch of new memory (page faults, far dearer on a VM than
 * on bare metal); docs/performance-log.md gives that figure.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Options } from './options.js';
import { firstLine, makeTempDir, removeTempDir, runCommand } from './processes.js';
import { formatMs } from './report.js';
import { withServer } from './server-run.js';
import type { AppSpec, ServerSpec } from './servers.js';
import { parseWrk } from './wrk.js';

const MISS_CONNECTIONS = 1;
/** The store the misses run on: full after WARM_SECONDS of misses (each 1 KiB page is about 1.3 KiB stored). */
export const MISS_CACHE = '16m';
const WARM_SECONDS = 4;
const WARM_CONNECTIONS = 4;
/** Then misses as measured, on one connection: without them the first measured run of the cache's server stood out, dearer than its later ones (see docs/performance-log.md). */
const SETTLE_SECONDS = 2;
/** Pairs of runs at least (more with --repeat): a single pair's ratio moves by ±20% on this VM, twice the target, and the median of five moved by ±5%. */
const MIN_PAIRS = 9;
const pairCount = (opts: Options) => Math.max(opts.repeat, MIN_PAIRS);
/** Each pair is four runs of this many seconds: every server gets the run's duration in two. */
const sliceSeconds = (opts: Options) => Math.max(1, Math.floor(opts.duration / 2));
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

/** One miss run on one server: URLs of its own (`run`), `connections` clients for `seconds`. */
async function missRun(dir: string, port: number, run: string, seconds: number, connections = MISS_CONNECTIONS): Promise<string> {
  const script = join(dir, `${run}.lua`);
  writeFileSync(script, uniqueUrls(run));
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/1k`];
  return (await runCommand('wrk', 'wrk', args, (seconds + 30) * 1000)).out;
}

/** A measured run's latency, or null with a note. */
function latencyOf(out: string, notes: string[]): MissLatency | null {
  const parsed = parseWrk(out);
  const mean = meanMs(out);
  if (parsed === null || mean === null) notes.push(`could not read wrk's output: ${firstLine(out)}`);
  else if (parsed.non2xx3xx > 0) notes.push(`${parsed.non2xx3xx} non-2xx/3xx answers`);
  else return { meanMs: mean, p99Ms: parsed.p99ms };
  return null;
}

interface MissPair {
  off: MissLatency;
  on: MissLatency;
}

/**
 * pairCount pairs of runs, the two servers up side by side and measured in
 * turn, each pair in four runs of half the run's duration: off, on, on, off.
 * Drift steady over a pair falls on both alike, and each server is switched
 * to once a pair (one run of each in turn let the VM's moments move a pair
 * by ±20%; alternating the order, on, off, off, on, made the first run after
 * a switch dearer for one server in some pairs and for the other in the
 * rest). Each server first gets a warm-up of misses of its own (the server's
 * warm-up asks for the plain page: for the cache, hits), on four connections
 * to fill the store, then on one as measured.
 */
async function missPairs(uncached: ServerSpec, cached: ServerSpec, opts: Options, notes: string[]): Promise<MissPair[]> {
  const dir = makeTempDir('gatehouse-bench-miss-');
  const pairs: MissPair[] = [];
  const slice = sliceSeconds(opts);
  try {
    await withServer(uncached, PAGE, opts, 'cache-miss-off', notes, (offPort) =>
      withServer(cached, PAGE, opts, 'cache-miss-on', notes, async (onPort) => {
        for (const [port, name] of [[offPort, 'off'], [onPort, 'on']] as const) await missRun(dir, port, `warm${name}`, WARM_SECONDS, WARM_CONNECTIONS);
        // The cache off last: each pair then starts where the one before it ended.
        for (const [port, name] of [[onPort, 'on'], [offPort, 'off']] as const) await missRun(dir, port, `settle${name}`, SETTLE_SECONDS);
        for (let i = 1; i <= pairCount(opts); i++) {
          const runs = { off: [] as MissLatency[], on: [] as MissLatency[] };
          for (const [j, port] of [offPort, onPort, onPort, offPort].entries()) {
            const latency = latencyOf(await missRun(dir, port, `run${i}s${j}`, slice), notes);
            if (latency !== null) runs[port === offPort ? 'off' : 'on'].push(latency);
          }
          if (runs.off.length === 2 && runs.on.length === 2) pairs.push({ off: average(runs.off), on: average(runs.on) });
        }
      }).then(() => undefined),
    );
  } finally {
    removeTempDir(dir);
  }
  return pairs;
}

/** Two slices of equal length taken as one run. */
function average(runs: readonly MissLatency[]): MissLatency {
  return { meanMs: (runs[0]!.meanMs + runs[1]!.meanMs) / 2, p99Ms: (runs[0]!.p99Ms + runs[1]!.p99Ms) / 2 };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** The section's lines (list items): the cache off and on (all misses), and what the misses added. */
export async function missLatencyLines(uncached: ServerSpec, cached: ServerSpec, opts: Options): Promise<string[]> {
  const notes: string[] = [];
  const pairs = await missPairs(uncached, cached, opts, notes);
  const cell = (side: 'off' | 'on') => `mean ${formatMs(median(pairs.map((p) => p[side].meanMs)))}, p99 ${formatMs(median(pairs.map((p) => p[side].p99Ms)))}`;
  const head = `cache misses, 1 KiB page, wrk -t1 -c${MISS_CONNECTIONS} -d${sliceSeconds(opts)}s with a query string of its own per request, ${pairCount(opts)} pairs of runs on two servers side by side, each pair four such runs (off, on, on, off), after ${WARM_SECONDS} s of misses on ${WARM_CONNECTIONS} connections each and ${SETTLE_SECONDS} s on one`;
  if (pairs.length === 0) return [`${head}: failed.`, ...notes.map((n) => `cache misses: ${n}`)];
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const added = pairs.map((p) => p.on.meanMs / p.off.meanMs - 1);
  const addedMedian = median(added);
  return [
    `${head} (medians): cache off ${cell('off')}; cache on (--cache ${MISS_CACHE}, full and evicting), every request a miss: ${cell('on')}.`,
    `misses add ${pct(addedMedian)} to the mean latency (median of the pairs: ${added.map(pct).join(', ')}; p99 ${pct(median(pairs.map((p) => p.on.p99Ms / p.off.p99Ms - 1)))}), target under +${TARGET * 100}%: ${addedMedian < TARGET ? 'met' : 'MISSED'}.`,
    ...notes.map((n) => `cache misses: ${n}`),
  ];
}
