/**
 * Thread mode (--threads N) and running workers as another user (--user /
 * --group). Thread mode promises: the app is told it may run in threads
 * (wsgi.multithread), requests really run side by side inside one process,
 * the front never hands a worker more requests than it has threads, and the
 * supervisor's crash / timeout / client-disconnect handling still holds when
 * several requests share a process. --user promises: the Python workers run
 * unprivileged while the front stays root, and a spilled request body (a temp
 * file the front writes) is still readable by them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { runCli, withServer } from './helpers/launch.js';
import { childPids, isAlive } from './helpers/processes.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';

const APP = `${APPS}/threads_apps.py:app`;

function pidOf(body: string): number {
  const m = /(\d+)\s*$/.exec(body);
  assert.ok(m, `no pid in ${JSON.stringify(body)}`);
  return Number(m[1]);
}

function parseJson(res: SimpleResponse): Record<string, unknown> {
  assert.equal(res.status, 200, `expected 200, got ${res.status} ${res.body}`);
  const value: unknown = JSON.parse(res.body);
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `not a JSON object: ${res.body}`);
  return value as Record<string, unknown>;
}

function numberField(obj: Record<string, unknown>, key: string): number {
  const v = obj[key];
  assert.equal(typeof v, 'number', `${key} should be a number in ${JSON.stringify(obj)}`);
  return v as number;
}

/** Polls an async check every 50 ms until it is true or `ms` passes. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/** The most requests the app saw running at once since the last /reset. */
async function observedMax(url: string): Promise<number> {
  return numberField(parseJson(await request(url, '/max')), 'max');
}

// ---------------------------------------------------------------- thread mode

test('--threads 4 tells the app wsgi.multithread=True (and multiprocess=True); without --threads it is False', async () => {
  await withServer([APP, '--workers', '1', '--threads', '4'], async (gh) => {
    assert.match(gh.output(), /Using worker: threads \(4 per process\).* \(1 process\)$/m);
    const env = parseJson(await request(gh.url, '/env'));
    assert.equal(env.multithread, true, `wsgi.multithread with --threads 4: ${JSON.stringify(env)}`);
    assert.equal(env.multiprocess, true, `wsgi.multiprocess: ${JSON.stringify(env)}`);
  });
  await withServer([APP, '--workers', '1'], async (gh) => {
    const env = parseJson(await request(gh.url, '/env'));
    assert.equal(env.multithread, false, `wsgi.multithread without --threads: ${JSON.stringify(env)}`);
    assert.equal(env.multiprocess, true, `wsgi.multiprocess: ${JSON.stringify(env)}`);
  });
});

test('--workers 1 --threads 4 runs four requests at the same time in one process', async () => {
  await withServer([APP, '--workers', '1', '--threads', '4'], async (gh) => {
    const workers = childPids(gh.pid);
    assert.equal(workers.length, 1);
    const results = await Promise.all(Array.from({ length: 4 }, () => request(gh.url, '/slow?s=1')));
    for (const r of results) assert.equal(r.status, 200, `${r.status} ${r.body}`);
    const pids = new Set(results.map((r) => pidOf(r.body)));
    assert.equal(pids.size, 1, `all four ran in one process: ${[...pids].join(',')}`);
    assert.equal([...pids][0], workers[0]);
    assert.equal(await observedMax(gh.url), 4, 'the app saw all four requests running at once');
  });
});

test('the front never sends a worker more requests than it has threads: --threads 2, six slow requests', async () => {
  await withServer([APP, '--workers', '1', '--threads', '2'], async (gh) => {
    const results = await Promise.all(Array.from({ length: 6 }, () => request(gh.url, '/slow?s=0.4')));
    for (const r of results) assert.equal(r.status, 200, `every request is served: ${r.status} ${r.body}`);
    assert.equal(await observedMax(gh.url), 2, 'at most (and at least) two requests ran at once in the worker');
  });
});

test('a crash in a threaded worker: the requests it was running get 502, a new worker replaces it, the next requests succeed', async () => {
  await withServer([APP, '--workers', '1', '--threads', '3'], async (gh) => {
    const [oldPid] = childPids(gh.pid);
    assert.ok(oldPid !== undefined);
    const beside = [request(gh.url, '/slow?s=3'), request(gh.url, '/slow?s=3')];
    // Wait until both are running in the worker before crashing it.
    const running = await eventually(async () => numberField(parseJson(await request(gh.url, '/max')), 'running') === 2, 3000);
    assert.ok(running, 'both slow requests are running beside each other');
    const crash = await request(gh.url, '/crash');
    const [a, b] = await Promise.all(beside);
    assert.equal(crash.status, 502, `the crashing request: ${crash.status} ${crash.body}`);
    assert.equal(a!.status, 502, `a request running beside the crash: ${a!.status} ${a!.body}`);
    assert.equal(b!.status, 502, `a request running beside the crash: ${b!.status} ${b!.body}`);
    assert.match(gh.output(), new RegExp(`Worker \\(pid:${oldPid}\\) died: exit code 1`));

    const healed = await waitUntil(() => {
      const now = childPids(gh.pid);
      return now.length === 1 && now[0] !== oldPid;
    }, 5000);
    assert.ok(healed, `a new worker replaced ${oldPid}; children now ${childPids(gh.pid).join(',')}`);
    assert.equal(isAlive(oldPid), false);
    const [newPid] = childPids(gh.pid);
    await gh.waitFor(/Booting worker with pid[^]*Booting worker with pid/, 5000);
    const after = await Promise.all(Array.from({ length: 3 }, (_, i) => request(gh.url, `/after/${i}`)));
    for (const r of after) {
      assert.equal(r.status, 200, `${r.status} ${r.body}`);
      assert.equal(pidOf(r.body), newPid, 'served by the replacement worker');
    }
  });
});

test('--timeout 2 with threads: a request sleeping 10 s gets 504 within a few seconds and the pool is back to full size', async () => {
  // Not --timeout 1: it bounds the workers' boot too, which a loaded machine can take longer for.
  await withServer([APP, '--workers', '2', '--threads', '2', '--timeout', '2'], async (gh) => {
    const before = childPids(gh.pid);
    assert.equal(before.length, 2);
    const hung = await request(gh.url, '/sleep?s=10');
    assert.equal(hung.status, 504, `${hung.status} ${hung.body}`);
    assert.ok(hung.ms < 7000, `the 504 came ${hung.ms} ms after the request, with --timeout 2`);
    const m = /Worker \(pid:(\d+)\) timed out/.exec(gh.output());
    assert.ok(m, `the log names the worker that timed out; output:\n${gh.output()}`);
    const killed = Number(m[1]);
    assert.ok(before.includes(killed));
    const healed = await waitUntil(() => {
      const now = childPids(gh.pid);
      return now.length === 2 && !now.includes(killed);
    }, 5000);
    assert.ok(healed, `back to two workers without ${killed}; children now ${childPids(gh.pid).join(',')}`);
    await gh.waitFor(/(?:Booting worker with pid[^]*){3}/, 5000);
    const after = await Promise.all(Array.from({ length: 4 }, (_, i) => request(gh.url, `/after/${i}`)));
    for (const r of after) {
      assert.equal(r.status, 200, `${r.status} ${r.body}`);
      assert.notEqual(pidOf(r.body), killed);
    }
  });
});

test('--timeout with threads: the hung request gets 504, the requests running beside it are answered, then the worker is replaced', async () => {
  await withServer([APP, '--workers', '1', '--threads', '3', '--timeout', '4'], async (gh) => {
    const [oldPid] = childPids(gh.pid);
    const hung = request(gh.url, '/sleep?s=30', { timeoutMs: 10_000 });
    await sleep(1500);
    // Still running when the first times out, and done within their own --timeout.
    const beside = [request(gh.url, '/sleep?s=3', { timeoutMs: 10_000 }), request(gh.url, '/sleep?s=3', { timeoutMs: 10_000 })];
    const h = await hung;
    assert.equal(h.status, 504, `${h.status} ${h.body}`);
    for (const r of await Promise.all(beside)) {
      assert.equal(r.status, 200, `a request beside the hung one: ${r.status} ${r.body}`);
      assert.equal(pidOf(r.body), oldPid, 'answered by the worker that timed out');
    }
    await gh.waitFor(new RegExp(`Worker \\(pid:${oldPid}\\) timed out after 4\\.\\ds on GET /sleep\\?s=30; it takes no new requests and is killed once its 2 other\\(s\\) are answered`));
    await gh.waitFor(new RegExp(`Worker \\(pid:${oldPid}\\) answered its other requests; killing it`));
    // Its stack, dumped as it is killed, shows the thread still in the hung request.
    await gh.waitFor(/Thread 0x[0-9a-f]+[^]*in app/, 5000);
    assert.ok(await waitUntil(() => !isAlive(oldPid!), 5000), `worker ${oldPid} was killed`);
    const after = await request(gh.url, '/sleep?s=0', { timeoutMs: 10_000 });
    assert.equal(after.status, 200, `${after.status} ${after.body}`);
    assert.notEqual(pidOf(after.body), oldPid);
  });
});

test('client disconnect in thread mode: close() is called on the endless iterable and the thread is free again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-threads-close-'));
  try {
    await withServer([APP, '--workers', '1', '--threads', '2'], async (gh) => {
      const marks = [join(dir, 'closed-1'), join(dir, 'closed-2')];
      const conns = await Promise.all(marks.map(() => RawConnection.open(gh.port)));
      conns.forEach((c, i) => c.write(`GET /stream?mark=${encodeURIComponent(marks[i]!)} HTTP/1.1\r\nHost: t\r\n\r\n`));
      // Both streams are flowing (so both threads are busy with them), then the clients go away.
      await Promise.all(conns.map((c) => c.waitForData((b) => b.includes('chunk 3\n'), 5000)));
      for (const c of conns) c.close();

      for (const mark of marks) {
        assert.ok(await waitUntil(() => existsSync(mark), 5000), `close() was called on the iterable (${mark})`);
      }
      assert.match(readFileSync(marks[0]!, 'utf8'), /^closed by pid \d+ thread gatehouse-\d+/);

      // Both threads are free: two slow requests run side by side, not one after the other.
      assert.equal((await request(gh.url, '/reset', { timeoutMs: 5000 })).status, 200);
      const both = await Promise.all([request(gh.url, '/slow?s=0.5', { timeoutMs: 5000 }), request(gh.url, '/slow?s=0.5', { timeoutMs: 5000 })]);
      for (const r of both) assert.equal(r.status, 200, `${r.status} ${r.body}`);
      assert.equal(await observedMax(gh.url), 2, 'both threads were free after the disconnects');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a slow client on one thread does not stall a request running on another thread of the same worker', async () => {
  await withServer([APP, '--workers', '1', '--threads', '2'], async (gh) => {
    // A client that asks for 32 MiB and reads none of it: far more than the socket buffers hold.
    const slow = await RawConnection.open(gh.port);
    try {
      slow.socket.pause();
      slow.write('GET /big?mb=32 HTTP/1.1\r\nHost: t\r\n\r\n');
      await sleep(800);
      // The worker's other thread is free, so this request goes to the same worker.
      let fast: SimpleResponse;
      try {
        fast = await request(gh.url, '/hello', { timeoutMs: 4000 });
      } catch (err) {
        assert.fail(`a request on the free thread stalled behind the slow client's response: ${(err as Error).message}`);
      }
      assert.equal(fast.status, 200, `${fast.status} ${fast.body}`);
      assert.equal(pidOf(fast.body), childPids(gh.pid)[0]);
    } finally {
      slow.close();
    }
  });
});

// ---------------------------------------------------------------- --user / --group

const NOT_ROOT = process.getuid?.() !== 0 ? 'switching users needs root (this suite runs as root in CI)' : false;
const NO_SYSTEM_PYTHON = existsSync(SYSTEM_PYTHON) ? false : `${SYSTEM_PYTHON} is missing (an interpreter outside /root that nobody can run)`;
const USER_SKIP = NOT_ROOT || NO_SYSTEM_PYTHON;

/** uid and gid fields of an /etc/passwd or /etc/group entry. */
function idOf(file: '/etc/passwd' | '/etc/group', name: string): number {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return Number(f[2]);
  }
  throw new Error(`${name} not in ${file}`);
}

/** The real, effective, saved and filesystem ids from a `Uid:` or `Gid:` line of /proc/PID/status. */
function procIds(pid: number, label: 'Uid' | 'Gid'): number[] {
  const m = new RegExp(`^${label}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no ${label} line for ${pid}`);
  return m.slice(1).map(Number);
}

function procGroups(pid: number): number[] {
  const m = /^Groups:(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no Groups line for ${pid}`);
  return m[1]!.trim() === '' ? [] : m[1]!.trim().split(/\s+/).map(Number);
}

/** A directory nobody can read with a copy of the app in it (the repository may live under /root). */
function readableAppDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-threads-user-'));
  chmodSync(dir, 0o755);
  copyFileSync(`${APPS}/threads_apps.py`, join(dir, 'threads_apps.py'));
  chmodSync(join(dir, 'threads_apps.py'), 0o644);
  return dir;
}

function bodyFilesOf(pid: number): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(`gatehouse-body-${pid}-`));
}

test('--user nobody: workers run as nobody, the front stays root, a spilled 1 MiB body is readable by the app', { skip: USER_SKIP }, async () => {
  const nobodyUid = idOf('/etc/passwd', 'nobody');
  const nobodyGid = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':')[3]);
  const dir = readableAppDir();
  try {
    const args = ['threads_apps:app', '--chdir', dir, '--python', SYSTEM_PYTHON, '--user', 'nobody', '--workers', '2', '--threads', '2'];
    await withServer(args, async (gh) => {
      const who = parseJson(await request(gh.url, '/whoami'));
      const pid = numberField(who, 'pid');
      assert.equal(numberField(who, 'uid'), nobodyUid, `os.getuid() in the app: ${JSON.stringify(who)}`);
      assert.equal(numberField(who, 'gid'), nobodyGid, `os.getgid() is nobody's primary group: ${JSON.stringify(who)}`);
      assert.deepEqual(who.groups, [], `root's supplementary groups were dropped: ${JSON.stringify(who)}`);
      assert.ok(childPids(gh.pid).includes(pid), 'the pid the app reports is one of our workers');
      for (const w of childPids(gh.pid)) {
        assert.deepEqual(procIds(w, 'Uid'), [nobodyUid, nobodyUid, nobodyUid, nobodyUid], `Uid line of worker ${w}`);
        assert.deepEqual(procIds(w, 'Gid'), [nobodyGid, nobodyGid, nobodyGid, nobodyGid], `Gid line of worker ${w}`);
        assert.deepEqual(procGroups(w), [], `Groups line of worker ${w}`);
      }
      assert.deepEqual(procIds(gh.pid, 'Uid'), [0, 0, 0, 0], 'the front still runs as root');

      // Over the 256 KiB spill threshold: the front writes it to a temp file for the worker to open.
      const body = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
      const res = await request(gh.url, '/body', { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
      const got = parseJson(res);
      assert.equal(got.length, body.length, `the app read the whole body: ${res.body}`);
      assert.equal(got.sha256, createHash('sha256').update(body).digest('hex'), 'the app read the same bytes');
      assert.equal(got.uid, nobodyUid);
      assert.ok(await waitUntil(() => bodyFilesOf(gh.pid).length === 0, 3000), `the spilled body file is removed: ${bodyFilesOf(gh.pid).join(',')}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--group nogroup runs the workers with that gid', { skip: USER_SKIP }, async () => {
  const nogroup = idOf('/etc/group', 'nogroup');
  const nobodyUid = idOf('/etc/passwd', 'nobody');
  const dir = readableAppDir();
  try {
    // --group alone: the uid stays, the gid changes.
    await withServer(['threads_apps:app', '--chdir', dir, '--python', SYSTEM_PYTHON, '--group', 'nogroup'], async (gh) => {
      const who = parseJson(await request(gh.url, '/whoami'));
      assert.equal(numberField(who, 'gid'), nogroup, `os.getgid() with --group nogroup: ${JSON.stringify(who)}`);
      assert.equal(numberField(who, 'uid'), 0, 'the uid is unchanged without --user');
      assert.deepEqual(procIds(numberField(who, 'pid'), 'Gid'), [nogroup, nogroup, nogroup, nogroup]);
      assert.deepEqual(procIds(gh.pid, 'Gid'), [0, 0, 0, 0], 'the front keeps its own group');
    });
    // With --user as well.
    await withServer(['threads_apps:app', '--chdir', dir, '--python', SYSTEM_PYTHON, '--user', 'nobody', '--group', 'nogroup'], async (gh) => {
      const who = parseJson(await request(gh.url, '/whoami'));
      assert.equal(numberField(who, 'uid'), nobodyUid);
      assert.equal(numberField(who, 'gid'), nogroup);
      assert.deepEqual(procIds(numberField(who, 'pid'), 'Gid'), [nogroup, nogroup, nogroup, nogroup]);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--user no-such-user-xyz fails at start with a one-line error naming --user', { skip: NOT_ROOT }, async () => {
  const r = await runCli([APP, '--bind', '127.0.0.1:0', '--workers', '1', '--user', 'no-such-user-xyz']);
  assert.equal(r.timedOut, false);
  assert.notEqual(r.code, 0, `exit code ${r.code}`);
  assert.notEqual(r.code, null);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${r.stderr}`);
  assert.match(lines[0]!, /--user/);
  assert.match(lines[0]!, /no-such-user-xyz/);
  assert.doesNotMatch(r.stdout + r.stderr, /Booting worker|Traceback/);
});
