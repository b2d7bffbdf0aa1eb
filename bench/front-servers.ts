/**
 * What the front-end suites (static, idle, slowloris) share: nginx on its
 * own as the peer of gatehouse's front, the files both serve, the clients
 * (separate Node processes, so that their sockets are not the benchmark's)
 * and a count of the connections the kernel holds open.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstLine, makeTempDir, Proc, runCommand } from './processes.js';
import { nginxLaunch, nginxMissing, NGINX_PROBLEMS, ROOT, type Launch, type NginxTuning, type ServerSpec, type Versions } from './servers.js';

/** The files of the static suite, under /static/ on both servers. */
export const STATIC_FILES = [
  { id: '1KiB', name: '1k.bin', size: 1024 },
  { id: '1MiB', name: '1m.bin', size: 1024 * 1024 },
] as const;

/** A temporary directory (removed on exit) holding STATIC_FILES, random bytes each, readable by nginx's worker (nobody). */
export function makeStaticDir(): string {
  const dir = makeTempDir('gatehouse-bench-static-');
  chmodSync(dir, 0o755);
  for (const f of STATIC_FILES) writeFileSync(join(dir, f.name), randomBytes(f.size), { mode: 0o644 });
  return dir;
}

/**
 * nginx alone, 1 worker (as gatehouse's front is one Node process): `/` answers
 * the hello app's body with `return 200`, so that the runner's readiness check
 * passes, and with `staticDir` `/static/` is served from it (sendfile on).
 */
export function nginxFront(versions: Versions, staticDir: string | null, tuning: NginxTuning = {}): ServerSpec {
  const locations = [
    '        location = / {\n            default_type text/plain;\n            return 200 "Hello, World!";\n        }',
    ...(staticDir === null ? [] : [`        location /static/ {\n            alias ${staticDir}/;\n        }`]),
  ].join('\n');
  const http = ['include /etc/nginx/mime.types;', 'default_type application/octet-stream;', 'sendfile on;', ...(tuning.http ?? [])];
  return {
    id: 'nginx',
    label: `nginx ${versions.nginx} (worker_processes 1, sendfile on)`,
    missing: nginxMissing,
    launch: (_app, port, tmp) => [nginxLaunch(tmp, port, locations, { ...tuning, http })],
    problemLines: NGINX_PROBLEMS,
  };
}

/** The shell's open-files limits: soft and hard. */
function fdLimits(): { soft: number; hard: number } {
  const r = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
  const [soft, hard] = r.stdout.trim().split('\n').map((l) => (l.trim() === 'unlimited' ? Infinity : Number(l)));
  return { soft: soft ?? 1024, hard: hard ?? 1024 };
}

/**
 * `launch` run with at least `files` open files: as it is when the soft limit
 * is enough, else through `sh -c 'ulimit -n FILES; exec ...'` (the same pid,
 * so stopping it works the same). Without root that cannot pass the hard
 * limit, and the process does not start: its log says why.
 */
export function withFdLimit(launch: Launch, files: number): Launch {
  if (fdLimits().soft >= files) return launch;
  return { ...launch, cmd: 'sh', args: ['-c', `ulimit -n ${files} && exec "$@"`, 'sh', launch.cmd, ...launch.args] };
}

/** `spec` with every process started with at least `files` open files. */
export function withFdLimits(spec: ServerSpec, files: number): ServerSpec {
  return { ...spec, launch: (app, port, tmp) => spec.launch(app, port, tmp).map((l) => withFdLimit(l, files)) };
}

/** Starts one of the front suites' clients (dist/bench/NAME.js) with `args`, at least `files` open files, output captured. */
export function startClient(name: string, args: string[], files: number): Proc {
  const l = withFdLimit({ name, cmd: process.execPath, args: [join(ROOT, 'dist', 'bench', `${name}.js`), ...args], cwd: ROOT, stopSignal: 'SIGTERM' }, files);
  return new Proc(name, l.cmd, l.args, { cwd: l.cwd, capture: true });
}

/** A client's JSON event line ({"event": NAME, ...}), the last one of that name it printed. */
export function clientEvent<T>(client: Proc, event: string): T | null {
  const lines = client.output.split('\n').filter((l) => l.startsWith(`{"event":"${event}"`));
  const last = lines[lines.length - 1];
  return last === undefined ? null : (JSON.parse(last) as T);
}

/** Waits for a client's `event` line; null (and the client's output) when it exits or `timeoutMs` passes first. */
export async function waitForEvent<T>(client: Proc, event: string, timeoutMs: number): Promise<{ value: T | null; why: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = clientEvent<T>(client, event);
    if (value !== null) return { value, why: '' };
    if (!client.running) return { value: null, why: `${client.name} exited (code ${client.exitCode}) before "${event}": ${client.output.trim().slice(-300)}` };
    await sleep(100);
  }
  return { value: null, why: `no "${event}" from ${client.name} within ${timeoutMs / 1000} s` };
}

/**
 * Established TCP connections to `port` as the kernel sees them: the client
 * side (`dport`, optionally only the sockets of process `pid`) or the server
 * side (`sport`). A string says why ss failed.
 */
export async function countEstablished(port: number, side: 'dport' | 'sport', pid?: number): Promise<number | string> {
  const r = await runCommand('ss', 'ss', ['-tn', ...(pid === undefined ? [] : ['-p']), 'state', 'established', `( ${side} = :${port} )`], 10000);
  if (r.code !== 0) return `ss failed (${r.timedOut ? 'timed out' : `exit ${r.code}`}): ${firstLine(r.out)}`;
  const owner = pid === undefined ? null : new RegExp(`pid=${pid},`);
  return r.out.split('\n').filter((l) => /\d+\.\d+\.\d+\.\d+:\d+\s+\d+\.\d+\.\d+\.\d+:\d+/.test(l) && (owner === null || owner.test(l))).length;
}
