/**
 * --worker-scheduling: the Python workers run under SCHED_BATCH by default,
 * so that a worker woken by a request does not preempt the front in the
 * middle of its turn; every thread of a worker has it, and so do the workers
 * a --preload template forks. Each worker is also in a session of its own
 * (the kernel's autogroup shares CPU out by session), the front in the one
 * it was started in. `normal` leaves them the policy and session the front
 * has (the test runner's, which the front inherits). Read as an operator
 * reads them (`chrt -p PID`, `ps -o sid`): the policy and session fields of
 * /proc/PID/task/TID/stat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launchConfig, runCli, withServer } from './helpers/launch.js';
import { childPids, statFields } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const SCHED_BATCH = 3;
const linuxOnly = process.platform !== 'linux' && 'SCHED_BATCH is Linux';

/** The scheduling policy of each thread of `pid` (field 41 of its stat line). */
function threadPolicies(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => Number(statFields(pid, tid)?.[41 - 3]));
}

function allAre(processes: number[][], policy: number, what: string): void {
  assert.ok(processes.length > 0 && processes.flat().every((p) => p === policy), `${what}: policies ${JSON.stringify(processes)}, expected ${policy} in every thread`);
}

/** The session of `pid` (field 6 of its stat line). */
const sessionOf = (pid: number) => Number(statFields(pid)?.[6 - 3]);

/** What the front and a `normal` worker inherit: this process's own policy (SCHED_OTHER, unless the tests run under `chrt`). */
const INHERITED = process.platform === 'linux' ? threadPolicies(process.pid)[0]! : 0;

/** Every process below `pid` (workers, and a --preload template's children). */
function descendants(pid: number): number[] {
  return childPids(pid).flatMap((child) => [child, ...descendants(child)]);
}

/** Serves `args`, waits for `processes` Python processes with at least `threads` threads in one of them, and returns the front's and their policies. */
async function policies(args: string[], processes: number, threads = 1): Promise<{ front: number[]; workers: number[][]; frontSession: number; sessions: number[][] }> {
  return withServer(args, async (gh) => {
    assert.equal((await request(gh.url, '/scope')).status, 200);
    const ready = await waitUntil(() => {
      const pids = descendants(gh.pid);
      return pids.length === processes && pids.some((p) => threadPolicies(p).length >= threads);
    }, 10_000);
    assert.ok(ready, `expected ${processes} Python processes, found ${descendants(gh.pid).length}:\n${gh.output()}`);
    const pids = descendants(gh.pid);
    return { front: threadPolicies(gh.pid), workers: pids.map(threadPolicies), frontSession: sessionOf(gh.pid), sessions: pids.map((pid) => [pid, sessionOf(pid)]) };
  });
}

/** Each of `sessions` ([pid, session]) its own session's leader. */
function ownSessions(sessions: number[][], what: string): void {
  assert.ok(sessions.length > 0 && sessions.every(([pid, sid]) => pid === sid), `${what}: [pid, session] ${JSON.stringify(sessions)}, expected each in a session of its own`);
}

test('the workers run under SCHED_BATCH by default, every thread of them; the front keeps its own', { skip: linuxOnly }, async () => {
  const sync = await policies([`${APPS}/basic.py:hello`, '--workers', '2'], 2);
  allAre(sync.workers, SCHED_BATCH, 'the sync workers');
  allAre([sync.front], INHERITED, "the front's threads");
  ownSessions(sync.sessions, 'the sync workers');
  assert.equal(sync.frontSession, sessionOf(process.pid), 'the front stays in the session it was started in');

  allAre((await policies([`${APPS}/basic.py:hello`, '--workers', '1', '--threads', '4'], 1, 5)).workers, SCHED_BATCH, 'the threaded worker');
  const asgi = await policies([`${APPS}/asgi_apps.py:app`, '--workers', '1', '--interface', 'asgi'], 1);
  allAre(asgi.workers, SCHED_BATCH, 'the ASGI worker');
  ownSessions(asgi.sessions, 'the ASGI worker');
});

test('--preload: the template and the workers it forks run under SCHED_BATCH, each in a session of its own', { skip: linuxOnly }, async () => {
  const preload = await policies([`${APPS}/basic.py:hello`, '--workers', '2', '--preload'], 3);
  allAre(preload.workers, SCHED_BATCH, 'the template and its workers');
  ownSessions(preload.sessions, 'the template and its workers');
});

test("--worker-scheduling normal leaves the workers the front's policy and session; another value is refused with its key", { skip: linuxOnly }, async () => {
  const normal = await policies([`${APPS}/basic.py:hello`, '--workers', '2', '--worker-scheduling', 'normal'], 2);
  allAre(normal.workers, INHERITED, 'the workers');
  assert.deepEqual(normal.sessions.map(([, sid]) => sid), [normal.frontSession, normal.frontSession], "normal: the workers stay in the front's session");

  const bad = await runCli([`${APPS}/basic.py:hello`, '--worker-scheduling', 'fifo']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /GH_ERR_CONFIG: --worker-scheduling: must be batch or normal \(got "fifo"\)/);
});

test('worker_scheduling is an app key: in the config file, each app pool has its own', { skip: linuxOnly }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-scheduling-'));
  const app = (name: string, extra = '') => `[apps.${name}]\napp = "${APPS}/basic.py:whoami"\n${extra}\n[[routes]]\npath = "/${name}"\napp = "${name}"\n`;
  const config = ['workers = 1\n\n[[listeners]]\nbind = "127.0.0.1:0"\n', app('batched'), app('plain', 'worker_scheduling = "normal"')].join('\n');
  const server = await launchConfig(dir, config, 2);
  try {
    const pidOf = async (path: string) => (JSON.parse((await request(server.url, path)).body) as { pid: number }).pid;
    allAre([threadPolicies(await pidOf('/batched'))], SCHED_BATCH, 'the batched app');
    allAre([threadPolicies(await pidOf('/plain'))], INHERITED, 'the plain app');
  } finally {
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
