/**
 * The per-request cost inside the Python worker, with no HTTP and no front:
 * runs bench/worker_cost.py (which says what it times) and reads its JSON.
 *
 * Run on its own, it prints each app's bare app call next to the worker's
 * CPU per request, the figures the worker's budget is checked against:
 *
 *     npx tsc -p . && node dist/bench/worker-cost.js [--quick]
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from './processes.js';
import { PYTHON, ROOT } from './servers.js';

/** One app's numbers, as worker_cost.py --json prints them; times in µs per request. */
export interface WorkerCostApp {
  iterations: number;
  rounds: number;
  /** The response's frames, e.g. RESPONSE or START+BODY+END. */
  frames: string;
  /** The bare app call: a fresh copy of a prebuilt environ, trivial start_response, body joined, close(). */
  app_us: number;
  /** The bare app call paced as the worker runs: 16 calls, then a blocking wait as long as the worker's between batches (caches cool down as the worker's do). */
  app_paced16_us?: number;
  /** The same, one call per blocking round trip. */
  app_paced1_us?: number;
  /** The bare app call plus writing the body to /dev/null: the one system call any server makes per response. */
  app_write_us?: number;
  handle_wrk_us: number;
  handle_browser_us: number;
  /** The whole worker process's CPU per request (all threads, system calls included), requests sent 16 at a time as the front tops up a busy worker. */
  loop_depth16_us?: number;
  /** The same, one request at a time (an idle server). */
  loop_depth1_us?: number;
  loop_iterations?: number;
  /** With worker_cost.py --compare DIR: that worker's figures, measured in the same rounds. */
  compare?: { worker: string; loop_depth16_us: number; loop_depth1_us: number };
}

export interface WorkerCost {
  python: string;
  apps: Record<string, WorkerCostApp>;
  /** App → why it was not measured. */
  skipped: Record<string, string>;
}

/** The numbers, or why there are none. */
export async function measureWorkerCost(quick: boolean): Promise<WorkerCost | string> {
  const hello = quick ? 20000 : 200000;
  const flask = quick ? 2000 : 20000;
  const script = join(ROOT, 'bench', 'worker_cost.py');
  const r = await runCommand('worker_cost.py', PYTHON, [script, '--json', '--hello-iterations', String(hello), '--flask-iterations', String(flask)], 300000);
  if (r.timedOut) return 'timed out after 300 s';
  const line = r.out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (r.code !== 0 || line === undefined) return `failed (exit ${r.code}): ${r.out.trim().slice(-600)}`;
  return JSON.parse(line) as WorkerCost;
}

/** Bare app call against the worker's CPU per request, one line per app. */
export function workerCostLines(cost: WorkerCost): string[] {
  const us = (n: number | undefined) => (n === undefined ? '-' : `${n.toFixed(2)} µs`);
  const head = ['app', 'bare app call', 'with a write', 'paced (batched)', 'worker CPU/request (batched)', 'overhead', 'one at a time', 'Handler.handle()'];
  const rows = Object.entries(cost.apps).map(([name, a]) => [
    name,
    us(a.app_us),
    us(a.app_write_us),
    us(a.app_paced16_us),
    us(a.loop_depth16_us),
    a.loop_depth16_us === undefined || a.app_paced16_us === undefined ? '-' : `${(a.loop_depth16_us - a.app_paced16_us).toFixed(2)} µs`,
    us(a.loop_depth1_us),
    us(a.handle_wrk_us),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join('  ');
  return [
    line(head),
    ...rows.map(line),
    ...Object.entries(cost.skipped).map(([name, why]) => `${name}: skipped: ${why}`),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cost = await measureWorkerCost(process.argv.includes('--quick'));
  if (typeof cost === 'string') {
    process.stderr.write(`worker_cost.py ${cost}\n`);
    process.exit(1);
  }
  process.stdout.write(`Per-request cost of the Python worker (Python ${cost.python}, best of ${Object.values(cost.apps)[0]?.rounds ?? '?'} interleaved rounds; bench/worker_cost.py says what each figure times):\n\n`);
  for (const l of workerCostLines(cost)) process.stdout.write(`${l}\n`);
}
