/**
 * The per-request cost inside the Python worker, with no HTTP and no front:
 * runs bench/worker_cost.py (which says what it times) and reads its JSON.
 */
import { join } from 'node:path';
import { runCommand } from './processes.js';
import { PYTHON, ROOT } from './servers.js';

/** One app's numbers, as worker_cost.py --json prints them; times in µs per request. */
export interface WorkerCostApp {
  iterations: number;
  rounds: number;
  /** The response's frames, e.g. RESPONSE or START+BODY+END. */
  frames: string;
  app_us: number;
  handle_wrk_us: number;
  handle_browser_us: number;
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
