/**
 * Where the CPU went during the measured window (between the connection
 * check's two reads): the server's processes, wrk, kernel threads, and
 * everything else. The machine has 2 cores and wrk needs a good part of one,
 * so anything else running at the same time (a test suite, a build) skews a
 * row; "other" says so, and above OTHER_CPU_LIMIT the row is run again. On a
 * VM the hypervisor may also give the machine's CPUs to others for part of
 * the time ("steal" in /proc/stat): every figure of the run is then slower
 * than the machine's own, and the row says so past STEAL_LIMIT.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { processTable, type Proc } from './processes.js';

/** % of one core; above this, other processes took enough CPU to skew the run. */
export const OTHER_CPU_LIMIT = 15;
/** % of the machine's CPU time (all its cores) the hypervisor took; above this, the row says so. */
export const STEAL_LIMIT = 5;

/** The unit of /proc's CPU times. */
const CLOCK_TICKS = ((): number => {
  const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout);
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

export interface CpuSample {
  at: number;
  /** user + nice + system over all CPUs, in clock ticks (softirq, where loopback TCP partly runs, left out). */
  busy: number;
  /** Time the hypervisor gave this VM's CPUs to others, over all CPUs, in clock ticks. */
  steal: number;
  /** Every process: pid → its label and CPU ticks. */
  procs: Map<number, { label: string; ticks: number; ours: boolean }>;
}

/** `groups` label our processes ('' = by their command name); the rest is "kernel" (threads of kthreadd) or other. */
export function cpuSample(groups: ReadonlyArray<{ label: string; pids: readonly number[] }>): CpuSample {
  const first = readFileSync('/proc/stat', 'latin1').split('\n')[0] ?? '';
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0);
  const label = new Map<number, string>();
  for (const g of groups) for (const pid of g.pids) if (!label.has(pid)) label.set(pid, g.label);
  const procs = new Map<number, { label: string; ticks: number; ours: boolean }>();
  for (const info of processTable().values()) {
    const ours = label.get(info.pid);
    if (ours !== undefined) procs.set(info.pid, { label: ours === '' ? info.comm : ours, ticks: info.ticks, ours: true });
    else procs.set(info.pid, { label: info.pid === 2 || info.ppid === 2 ? 'kernel' : info.comm, ticks: info.ticks, ours: false });
  }
  return { at: performance.now(), busy, steal: f[7] ?? 0, procs };
}

/** cpuSample's groups for a run: the server's processes as they are now (by command name), the load generator (`load`, wrk or h2load) and the benchmark. */
export function runGroups(server: readonly Proc[], load: Proc): Array<{ label: string; pids: number[] }> {
  return [...server.map((p) => ({ label: '', pids: p.members() })), { label: load.name, pids: load.members() }, { label: 'bench', pids: [process.pid] }];
}

export interface CpuReport {
  seconds: number;
  /** Our processes: name → % of one core for each process of that name, largest first. */
  byName: Map<string, number[]>;
  /** % of one core used by kernel threads (ksoftirqd: network processing). */
  kernelPct: number;
  /** % of one core used by everything else: neither the server, wrk, the benchmark nor the kernel. */
  otherPct: number;
  /**
   * What the other processes alive at the second sample used: a floor of otherPct that, unlike it, does not
   * count our own processes that exited between the samples (a reload's retired workers) as other.
   */
  visibleOtherPct: number;
  /** The biggest of those, by command name. */
  others: Array<[string, number]>;
  /** % of the machine's CPU time (all its cores) the hypervisor took (steal). */
  stealPct: number;
}

export function cpuReport(a: CpuSample, b: CpuSample): CpuReport {
  const seconds = (b.at - a.at) / 1000;
  const pct = (ticks: number) => (ticks / CLOCK_TICKS / seconds) * 100;
  const byName = new Map<string, number[]>();
  const othersByName = new Map<string, number>();
  let ours = 0;
  let kernel = 0;
  for (const [pid, end] of b.procs) {
    const used = end.ticks - (a.procs.get(pid)?.ticks ?? 0);
    if (end.ours) {
      ours += used;
      byName.set(end.label, [...(byName.get(end.label) ?? []), pct(used)]);
    } else if (end.label === 'kernel') kernel += used;
    else if (used > 0) othersByName.set(end.label, (othersByName.get(end.label) ?? 0) + used);
  }
  for (const list of byName.values()) list.sort((x, y) => y - x);
  const others = [...othersByName].sort((x, y) => y[1] - x[1]).slice(0, 3).map(([name, t]): [string, number] => [name, pct(t)]);
  // Two estimates of "other": what the visible processes used, and the machine's total minus ours (which also
  // counts processes that came and went between the samples). Per-process and total ticks are sampled
  // differently, so take the larger.
  const visible = [...othersByName.values()].reduce((x, y) => x + y, 0);
  const otherPct = Math.max(0, pct(visible), pct(b.busy - a.busy - ours - kernel));
  const stealPct = pct(b.steal - a.steal) / availableParallelism();
  return { seconds, byName, kernelPct: pct(kernel), otherPct, visibleOtherPct: pct(visible), others, stealPct };
}

/**
 * Says that other processes took more than OTHER_CPU_LIMIT (`pct`: otherPct or visibleOtherPct), or the
 * hypervisor more than STEAL_LIMIT; null when neither did.
 */
export function busyMachineNote(r: CpuReport, pct: number): string | null {
  const notes: string[] = [];
  if (pct > OTHER_CPU_LIMIT) {
    const top = r.others.map(([name, p]) => `${name} ${p.toFixed(0)}%`).join(', ');
    notes.push(`other processes on this machine used ${pct.toFixed(0)}% of a core during the run (${top}): its numbers are skewed`);
  }
  if (r.stealPct > STEAL_LIMIT) {
    notes.push(`the hypervisor took ${r.stealPct.toFixed(0)}% of this VM's CPU time during the run (steal): every figure is slower than the machine's own, the servers compared in the same round less so`);
  }
  return notes.length === 0 ? null : notes.join('; ');
}

/** A load generator past this share of one core per thread may be what sets the req/s. */
export const LOAD_BOUND_PCT = 90;

/** Says that the load generator (`name`: wrk, h2load) was near a whole core; null when it was not. */
export function loadBoundNote(r: CpuReport, name: string, threads = 1): string | null {
  const pct = (r.byName.get(name) ?? []).reduce((a, b) => a + b, 0);
  if (pct < LOAD_BOUND_PCT * threads) return null;
  return `${name} used ${pct.toFixed(0)}% of ${threads === 1 ? 'a core' : `${threads} cores`}: the load generator, not the server, may set this row's req/s (compare the servers' CPU per request)`;
}

export function formatCpu(r: CpuReport): string {
  const parts = [...r.byName].map(([name, list]) => `${name} ${list.map((p) => p.toFixed(0)).join('+')}`);
  parts.push(`kernel threads ${r.kernelPct.toFixed(0)}`);
  const top = r.others.filter(([, p]) => p >= 1).map(([name, p]) => `${name} ${p.toFixed(0)}`);
  parts.push(`other ${r.otherPct.toFixed(0)}${top.length > 0 ? ` (${top.join(', ')})` : ''}`);
  return `CPU, % of one core over ${r.seconds.toFixed(1)} s: ${parts.join(', ')}; steal ${r.stealPct.toFixed(0)}% of the machine`;
}

/** Where a server's processes show in the CPU accounting, by command name ('+' sums several). */
export interface CpuNames {
  /** Its front's (none: a server whose Python processes speak HTTP themselves). */
  front?: string;
  /** Its Python processes' (all of them, a master or manager too). */
  python: string;
}

/** CpuNames by server id (a ServerSpec's own cpuNames rule). */
export const PROCESS_NAMES: Record<string, CpuNames> = {
  gatehouse: { front: 'node', python: 'python3' },
  'nginx-uwsgi': { front: 'nginx', python: 'uwsgi' },
  uwsgi: { python: 'uwsgi' },
  gunicorn: { python: 'python3' },
  waitress: { python: 'python3' },
  uvicorn: { python: 'python3' },
  'gunicorn-uvicorn': { python: 'python3' },
  hypercorn: { python: 'python3' },
  daphne: { python: 'python3' },
  varnish: { front: 'varnishd+cache-main', python: 'uwsgi' },
  'nginx-cache': { front: 'nginx', python: 'uwsgi' },
};

/** µs of CPU per answer of the processes named `name`, at `answersPerSecond`; null when none ran (or no name). */
export function usPerAnswer(cpu: CpuReport | null, name: string | undefined, answersPerSecond: number): number | null {
  const list = name === undefined ? undefined : cpu?.byName.get(name);
  if (list === undefined || answersPerSecond <= 0) return null;
  return (list.reduce((a, b) => a + b, 0) / 100 / answersPerSecond) * 1e6;
}

/** A CPU-per-answer cell. */
export const usCell = (n: number | null) => (n === null ? '?' : `${n.toFixed(0)} µs`);
