/**
 * Resident memory of 4 Django workers with and without --preload.
 *
 *     npm run bench:memory
 *
 * RSS counts shared pages once per process; PSS splits each shared page
 * between the processes sharing it, so the PSS total is what the workers
 * really cost the machine. Serves the Django admin login page of
 * test/apps/djangoproject (Debian's python3-django) a few hundred times first,
 * so every worker has run real requests.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKERS = 4;

function kib(pid: number, file: string, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'latin1'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Every descendant of `root` (workers, and the template with --preload). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const m = /^\d+ \(.*\) \S (\d+)/.exec(readFileSync(`/proc/${name}/stat`, 'latin1'));
    if (m) parent.set(Number(name), Number(m[1]));
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const [child, p] of parent) if (p === pid) out.push(child), walk(child);
  };
  walk(root);
  return out;
}

async function measure(preload: boolean): Promise<{ processes: number; rss: number; pss: number }> {
  const args = ['dist/src/cli.js', 'project.wsgi:application', '--chdir', 'test/apps/djangoproject', '--python', '/usr/bin/python3',
    '-w', String(WORKERS), '-b', '127.0.0.1:0', ...(preload ? ['--preload'] : [])];
  const gh = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const booted = new Promise<number>((resolve, reject) => {
    gh.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const port = /Listening at: http:\/\/[^:]+:(\d+)/.exec(log);
      if (port && (log.match(/Booting worker with pid/g) ?? []).length >= WORKERS) resolve(Number(port[1]));
    });
    gh.on('exit', () => reject(new Error(`gatehouse exited:\n${log}`)));
  });
  try {
    const port = await booted;
    // Enough concurrent requests that every worker serves some.
    for (let round = 0; round < 40; round++) {
      await Promise.all(Array.from({ length: WORKERS * 2 }, () => fetch(`http://127.0.0.1:${port}/admin/login/`).then((r) => r.text())));
    }
    const pids = descendants(gh.pid!);
    return {
      processes: pids.length,
      rss: pids.reduce((n, p) => n + kib(p, 'status', 'VmRSS'), 0) / 1024,
      pss: pids.reduce((n, p) => n + kib(p, 'smaps_rollup', 'Pss'), 0) / 1024,
    };
  } finally {
    gh.kill('SIGTERM');
    await new Promise((r) => gh.once('close', r));
  }
}

const rows = [
  ['without --preload', await measure(false)],
  ['with --preload', await measure(true)],
] as const;
console.log(`| ${WORKERS} Django workers | Python processes | total RSS | total PSS |`);
console.log('|---|---:|---:|---:|');
for (const [label, m] of rows) console.log(`| ${label} | ${m.processes} | ${m.rss.toFixed(1)} MB | ${m.pss.toFixed(1)} MB |`);
