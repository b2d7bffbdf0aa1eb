/**
 * Process inspection through /proc: a process's state and children, the
 * temp files it holds open, gatehouse's Python workers by their command
 * line, and a SIGSTOP that waits until every thread has stopped.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './wait.js';

/** The fields of a process's (or one of its threads') stat line from the third (state) on, or null when it is gone. */
export function statFields(pid: number, thread?: number | string): string[] | null {
  try {
    const text = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    // pid (comm) state ppid ...; comm may hold spaces and parentheses.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Parent pid and state letter of a live process (or of one of its threads), or null when it is gone. */
function procStat(pid: number, thread?: number): { ppid: number; state: string } | null {
  const rest = statFields(pid, thread);
  return rest === null ? null : { state: rest[0]!, ppid: Number(rest[1]) };
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** Live (non-zombie) direct children of `pid`. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st !== null && st.ppid === pid && st.state !== 'Z') out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

/** The unlinked files a process holds open (its temp files). */
export function deletedFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir).flatMap((fd) => {
    try {
      const target = readlinkSync(join(dir, fd));
      return target.endsWith(' (deleted)') ? [target] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Live gatehouse Python workers whose command line contains `marker` (e.g.
 * the APP spec). Unlike gatehouse.ts's workerPids() this ignores workers of
 * other gatehouse instances that may be running on the machine.
 */
export function workerPidsFor(marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes('gatehouse_worker.py') && cmdline.includes(marker) && isAlive(Number(name))) out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

/**
 * SIGSTOP, then waits until every thread of the process has stopped: the
 * signal is not taken at once by all of a multi-threaded server's threads
 * (memcached here answered a request sent in the 5 ms after the kill in
 * about one case in five).
 */
export async function stopProcess(child: ChildProcess): Promise<void> {
  const pid = child.pid!;
  child.kill('SIGSTOP');
  const stopped = () => readdirSync(`/proc/${pid}/task`).every((tid) => procStat(pid, Number(tid))?.state === 'T');
  for (let i = 0; !stopped(); i++) {
    if (i === 1000) throw new Error(`process ${pid} did not stop within 1 s of SIGSTOP`);
    await sleep(1);
  }
}
