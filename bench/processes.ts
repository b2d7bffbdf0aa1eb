/**
 * Every process the benchmark starts (servers, wrk, ss, helpers) and every
 * temporary directory it makes is tracked here, so that none outlives it:
 * each process leads its own process group, and on Ctrl-C, on exit or on a
 * crash whatever is still tracked is killed and removed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Started and not yet stopped. */
const live = new Set<Proc>();
const tempDirs = new Set<string>();

/** A process we started, leader of its own process group. */
export class Proc {
  readonly pid: number;
  readonly exited: Promise<void>;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private done = false;
  private out = '';

  /** Output goes to `logFile` (appended), or is kept for `output` with `capture`, or is dropped. */
  constructor(
    readonly name: string,
    cmd: string,
    args: readonly string[],
    opts: { cwd?: string; logFile?: string; capture?: boolean } = {},
  ) {
    const logFd = opts.logFile === undefined ? null : openSync(opts.logFile, 'a');
    const out = logFd ?? (opts.capture ? 'pipe' : 'ignore');
    const child = spawn(cmd, [...args], { cwd: opts.cwd, detached: true, stdio: ['ignore', out, out] });
    if (logFd !== null) closeSync(logFd);
    // No pid: spawn failed (ENOENT...), and the 'error' event tells why.
    this.pid = child.pid ?? 0;
    if (this.pid > 0) live.add(this);
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise<void>((resolve) => {
      child.on('error', (err) => {
        this.out += `\n[${name}: ${err.message}]\n`;
        this.done = true;
        resolve();
      });
      child.on('close', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.done = true;
        resolve();
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  get output(): string {
    return this.out;
  }

  killGroup(sig: NodeJS.Signals): void {
    if (this.pid > 0) trySignal(-this.pid, sig);
  }

  /** Sends `sig` to the leader alone, while it runs. */
  signal(sig: NodeJS.Signals): void {
    if (this.pid > 0 && this.running) trySignal(this.pid, sig);
  }

  /** Pids of the process group plus every descendant of the leader, alive now. */
  members(): number[] {
    if (this.pid <= 0) return [];
    const table = processTable();
    const found = new Set<number>();
    for (const p of table.values()) if (p.pgrp === this.pid) found.add(p.pid);
    if (table.has(this.pid)) found.add(this.pid);
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of table.values()) {
        if (!found.has(p.pid) && found.has(p.ppid)) {
          found.add(p.pid);
          grew = true;
        }
      }
    }
    return [...found];
  }

  /**
   * Stops the process with `sig` sent to the leader (each server's own way to
   * shut down), waits for every member to go, then kills the group. Returns
   * what went wrong, empty when the stop was clean (or it was stopped before).
   */
  async stop(sig: NodeJS.Signals, graceMs = 10000): Promise<string[]> {
    if (!live.has(this)) return [];
    const problems: string[] = [];
    const before = this.members();
    const waitGone = async (ms: number): Promise<number[]> => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && (this.running || alive(before).length > 0)) await sleep(50);
      return alive(before);
    };
    if (this.running) trySignal(this.pid, sig);
    const left = await waitGone(graceMs);
    if (this.running || left.length > 0) {
      problems.push(`${this.name}: still running ${graceMs / 1000} s after ${sig} (pids ${left.join(' ') || this.pid}); killed with SIGKILL`);
      this.killGroup('SIGKILL');
      for (const pid of left) trySignal(pid, 'SIGKILL');
      const survivors = await waitGone(5000);
      if (survivors.length > 0) problems.push(`${this.name}: pids ${survivors.join(' ')} survived SIGKILL`);
    }
    live.delete(this);
    return problems;
  }
}

/** Runs a command to the end (killed after `timeoutMs`), capturing its output. */
export async function runCommand(name: string, cmd: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  const p = new Proc(name, cmd, args, { capture: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.killGroup('SIGKILL');
  }, timeoutMs);
  await p.exited;
  clearTimeout(timer);
  await p.stop('SIGKILL', 1000); // reaps whatever the command left in its group
  return { code: p.exitCode, out: p.output, timedOut };
}

/** The command's full path, or null when it is not installed. */
export function commandPath(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path !== '' ? path : null;
}

export function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------- the process table

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  comm: string;
  /** utime + stime, in clock ticks. */
  ticks: number;
}

export function processTable(): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readStat(Number(entry));
    if (info) table.set(info.pid, info);
  }
  return table;
}

function readStat(pid: number): ProcInfo | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null; // gone
  }
  // pid (comm) state ppid pgrp ... utime stime ...; comm may hold spaces and parentheses
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    pid,
    comm: text.slice(text.indexOf('(') + 1, close),
    state: fields[0] ?? '?',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    ticks: Number(fields[11]) + Number(fields[12]),
  };
}

/** Pids still running (zombies count as gone: they hold nothing). */
function alive(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    const info = readStat(pid);
    return info !== null && info.state !== 'Z';
  });
}

/** `pid` < 0 signals the process group -pid. */
function trySignal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------- cleanup

export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Last resort, synchronous: on Ctrl-C, on exit, on a crash of the benchmark. */
export function killEverything(): void {
  for (const p of live) {
    for (const pid of p.members()) trySignal(pid, 'SIGKILL');
    p.killGroup('SIGKILL');
  }
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function installCleanup(): void {
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (!interrupted) {
      interrupted = true;
      process.stderr.write(`\nbench: ${sig}: stopping every server and client it started\n`);
    }
    killEverything();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', killEverything);
}
