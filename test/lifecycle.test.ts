/**
 * The supervisor's promises to an operator: a crash or hang costs exactly one
 * request (502/504) and the pool heals; signals stop the server the way
 * gunicorn's do; a broken app or interpreter fails fast with a clear error and
 * leaves no Python process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, CLI } from './helpers/gatehouse.js';
import { encodeUwsgiPacket } from '../src/upstream/uwsgi-packet.js';
import { countMatches, launch, runCli, withServer } from './helpers/launch.js';
import { childPids, isAlive, workerPidsFor } from './helpers/processes.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';

const APP = `${APPS}/lifecycle_apps.py:app`;

function pidOf(body: string): number {
  const m = /(\d+)\s*$/.exec(body);
  assert.ok(m, `no pid in ${JSON.stringify(body)}`);
  return Number(m[1]);
}

test('a worker crash mid-request: that request gets 502, others are served, the pool heals', async () => {
  await withServer([APP, '--workers', '2'], async (gh) => {
    const initial = childPids(gh.pid);
    assert.equal(initial.length, 2);

    // Keep the other worker busy so the crash is concurrent with real work.
    const longOther = request(gh.url, '/sleep?s=1.2');
    await sleep(150);
    // /crash runs on the idle worker and dies after 0.4 s; /queued arrives while
    // no worker is idle, so it waits (on the crashing worker or in the queue).
    const crashing = request(gh.url, '/crash?after=0.4');
    const queued = request(gh.url, '/queued');
    const [crash, other, behind] = await Promise.all([crashing, longOther, queued]);

    assert.equal(crash.status, 502, `the crashed request gets 502, got ${crash.status} ${crash.body}`);
    assert.equal(other.status, 200, 'the request on the other worker is unaffected');
    assert.match(other.body, /^slept 1\.2 \d+/);
    assert.equal(behind.status, 200, `the request waiting behind the crash must be served, got ${behind.status} ${behind.body}`);
    const died = /Worker \(pid:(\d+)\) died: exit code 1/.exec(gh.output());
    assert.ok(died, `the log reports the crash; output:\n${gh.output()}`);
    const deadPid = Number(died[1]);
    assert.ok(initial.includes(deadPid));
    assert.notEqual(pidOf(behind.body), deadPid);

    // Back to two workers, one of them new.
    const healed = await waitUntil(() => {
      const now = childPids(gh.pid);
      return now.length === 2 && !now.includes(deadPid);
    }, 3000);
    assert.ok(healed, `pool back to 2 workers; children now ${childPids(gh.pid).join(',')}`);
    assert.equal(isAlive(deadPid), false);
    await gh.waitFor(/Booting worker with pid[^]*Booting worker with pid[^]*Booting worker with pid/, 3000);
    const after = await Promise.all([request(gh.url, '/a'), request(gh.url, '/b')]);
    for (const r of after) assert.equal(r.status, 200);
  });
});

test('requests waiting behind a crashing request on the only worker are served by its replacement, not failed', async () => {
  await withServer([APP, '--workers', '1'], async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      // Written together: the pool hands them to the one worker's stream at once (or queues them).
      c.write(
        'GET /crash?after=0.3 HTTP/1.1\r\nHost: t\r\n\r\n' +
          'GET /behind1 HTTP/1.1\r\nHost: t\r\n\r\n' +
          'POST /behind2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc',
      );
      const crash = await c.readResponse(5000);
      assert.equal(crash.status, 502);
      const b1 = await c.readResponse(5000);
      const b2 = await c.readResponse(5000);
      assert.equal(b1.status, 200, `behind1: ${b1.status} ${b1.body.toString()}`);
      assert.equal(b2.status, 200, `behind2: ${b2.status} ${b2.body.toString()}`);
      const died = /Worker \(pid:(\d+)\) died/.exec(gh.output());
      assert.ok(died);
      assert.notEqual(pidOf(b1.body.toString()), Number(died[1]));
    } finally {
      c.close();
    }
  });
});

test('requests pipelined behind a hung request are re-run after the 504, not failed', async () => {
  await withServer([APP, '--workers', '1', '--timeout', '1'], async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('GET /hang HTTP/1.1\r\nHost: t\r\n\r\nGET /behind HTTP/1.1\r\nHost: t\r\n\r\n');
      const hung = await c.readResponse(4000);
      assert.equal(hung.status, 504);
      const behind = await c.readResponse(4000);
      assert.equal(behind.status, 200, `behind: ${behind.status} ${behind.body.toString()}`);
    } finally {
      c.close();
    }
  });
});

test('--timeout 1: a hung request gets 504 in time, the log names it, a new worker replaces the hung one', async () => {
  await withServer([APP, '--workers', '1', '--timeout', '1'], async (gh) => {
    const first = await request(gh.url, '/pid');
    const hungPid = pidOf(first.body);

    const hung = await request(gh.url, '/hang?who=me');
    assert.equal(hung.status, 504);
    assert.ok(hung.ms < 3000 + 250, `504 within timeout + 2 s, took ${hung.ms} ms`);
    assert.match(gh.output(), /timed out after 1\.\d+s on GET \/hang\?who=me/);

    const next = await request(gh.url, '/pid', { timeoutMs: 5000 });
    assert.equal(next.status, 200, 'the next request is served by a replacement worker');
    assert.notEqual(pidOf(next.body), hungPid);
    assert.ok(await waitUntil(() => !isAlive(hungPid), 2000), 'the hung worker is gone');
    assert.deepEqual(childPids(gh.pid), [pidOf(next.body)]);
  });
});

test('a front held up past --timeout while a request finished in time: 200, not 504, and the worker is kept', async () => {
  await withServer([APP, '--workers', '1', '--timeout', '2'], async (gh) => {
    const pid = pidOf((await request(gh.url, '/pid')).body);
    const slow = request(gh.url, '/sleep?s=0.5', { timeoutMs: 10000 });
    await sleep(100);
    process.kill(gh.pid, 'SIGSTOP');
    await sleep(3000);
    process.kill(gh.pid, 'SIGCONT');
    const r = await slow;
    assert.equal(r.status, 200, r.body);
    assert.equal(pidOf((await request(gh.url, '/pid')).body), pid);
    assert.doesNotMatch(gh.output(), /timed out/);
  });
});

test('SIGTERM drains: the in-flight slow request completes, exit 0, no worker left', async () => {
  const gh = await launch([APP, '--workers', '2']);
  try {
    const workers = childPids(gh.pid);
    assert.equal(workers.length, 2);
    const slow = request(gh.url, '/sleep?s=1');
    await sleep(300);
    gh.proc.kill('SIGTERM');
    const res = await slow;
    assert.equal(res.status, 200);
    assert.match(res.body, /^slept 1 \d+\n$/);
    const { code } = await gh.exited(5000);
    assert.equal(code, 0);
    for (const pid of workers) assert.equal(isAlive(pid), false, `worker ${pid} still alive`);
    assert.deepEqual(workerPidsFor(APP), [], 'no worker of this app left');
  } finally {
    await gh.kill();
  }
});

test('SIGTERM: new connections are refused while draining', async () => {
  const gh = await launch([APP, '--workers', '1']);
  try {
    const slow = request(gh.url, '/sleep?s=1');
    await sleep(300);
    gh.proc.kill('SIGTERM');
    await sleep(200);
    await assert.rejects(request(gh.url, '/late', { timeoutMs: 2000 }), /ECONNREFUSED/);
    assert.equal((await slow).status, 200);
    assert.equal((await gh.exited(5000)).code, 0);
  } finally {
    await gh.kill();
  }
});

test('SIGTERM: a response finished during the drain says Connection: close, then the connection closes', async () => {
  const gh = await launch([APP, '--workers', '1']);
  try {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('GET /sleep?s=0.8 HTTP/1.1\r\nHost: t\r\n\r\n');
      await sleep(300);
      gh.proc.kill('SIGTERM');
      const res = await c.readResponse(5000);
      assert.equal(res.status, 200);
      // The server is about to close this connection: it must not invite the
      // client to send another request on it (a keep-alive client or proxy
      // would have that request cut off).
      assert.equal(res.header('connection')?.toLowerCase(), 'close', `response head during drain:\n${res.rawHead}`);
      await c.waitClosed(5000);
    } finally {
      c.close();
    }
    assert.equal((await gh.exited(5000)).code, 0);
  } finally {
    await gh.kill();
  }
});

test('SIGTERM: a request whose body is still arriving is served, not cut off', async () => {
  const gh = await launch([`${APPS}/http_apps.py:app`, '--workers', '1']);
  try {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello');
      await sleep(200);
      gh.proc.kill('SIGTERM');
      await sleep(300);
      assert.equal(c.closed, false, `the connection of an in-flight upload was closed by the drain; output:\n${gh.output()}`);
      c.write('world');
      const res = await c.readResponse(5000);
      assert.equal(res.status, 200);
      assert.equal((JSON.parse(res.body.toString()) as { body: string }).body, 'helloworld');
    } finally {
      c.close();
    }
    assert.equal((await gh.exited(5000)).code, 0);
  } finally {
    await gh.kill();
  }
});

test('SIGTERM: a response still flowing to a slow client is delivered in full before exit', async () => {
  // A unix socket has small, fixed kernel buffers, so most of the response
  // waits in gatehouse's own buffers while the client reads slowly.
  const dir = mkdtempSync(join(tmpdir(), 'gh-drain-'));
  const sock = join(dir, 'gh.sock');
  const gh = await launch([`${APPS}/lifecycle_apps.py:big`, '--workers', '1', '-b', `unix:${sock}`]);
  try {
    const size = 2 * 1024 * 1024;
    const client = connect({ path: sock });
    let received = Buffer.alloc(0);
    let closed = false;
    client.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      client.pause();
      setTimeout(() => client.resume(), 40); // ~1.5 MB/s
    });
    client.on('close', () => (closed = true));
    client.on('error', () => {});
    client.write(`GET /?kib=${size / 1024} HTTP/1.1\r\nHost: t\r\n\r\n`);
    await sleep(200);
    gh.proc.kill('SIGTERM');
    assert.ok(await waitUntil(() => closed, 8000), 'the server closes the connection in the end');
    const headEnd = received.indexOf('\r\n\r\n') + 4;
    assert.match(received.subarray(0, headEnd).toString(), /^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 2097152\r\n/);
    assert.equal(received.length - headEnd, size, `body bytes delivered before the connection closed (of ${size})`);
    assert.equal((await gh.exited(5000)).code, 0);
  } finally {
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM: uwsgi and SCGI connections that sent no request, or part of its variables, are closed at once, not waited for', async () => {
  const gh = await launch([APP, '--workers', '1', '--uwsgi-socket', '127.0.0.1:0', '--scgi-socket', '127.0.0.1:0', '--graceful-timeout', '60', '--header-timeout', '60']);
  const port = (protocol: string) => Number(new RegExp(`Listening at: ${protocol}://127\\.0\\.0\\.1:(\\d+)`).exec(gh.output())![1]);
  const connections: RawConnection[] = [];
  try {
    const silent = await RawConnection.open(port('uwsgi'));
    const partUwsgi = await RawConnection.open(port('uwsgi'));
    partUwsgi.write(encodeUwsgiPacket([['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/']])!.subarray(0, 12));
    const partScgi = await RawConnection.open(port('scgi'));
    partScgi.write('70:CONTENT_LENGTH\0');
    connections.push(silent, partUwsgi, partScgi);
    await sleep(200);
    gh.proc.kill('SIGTERM');
    // graceful_timeout and header_timeout are 60 s: a drain that waited for these would outlast this bound by far.
    assert.equal((await gh.exited(15000)).code, 0);
    for (const c of connections) await c.waitClosed();
  } finally {
    for (const c of connections) c.close();
    await gh.kill();
  }
});

test('SIGINT stops at once, without waiting for a slow request', async () => {
  const gh = await launch([APP, '--workers', '1']);
  try {
    const workers = childPids(gh.pid);
    const slow = request(gh.url, '/sleep?s=10').then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    await sleep(300);
    const t0 = Date.now();
    gh.proc.kill('SIGINT');
    const { code } = await gh.exited(5000);
    const took = Date.now() - t0;
    assert.ok(took < 2500, `exited ${took} ms after SIGINT`);
    assert.equal(code, 0);
    assert.notEqual(await slow, 200, 'the slow request was not allowed to finish');
    assert.ok(await waitUntil(() => workers.every((p) => !isAlive(p)), 1000), 'no worker left');
  } finally {
    await gh.kill();
  }
});

test('the reader of its log output going away (gatehouse | tee, a log shipper restarting) does not stop the server', async () => {
  const proc = spawn(process.execPath, [CLI, APP, '--workers', '1', '--bind', '127.0.0.1:0', '--access-log', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    assert.ok(await waitUntil(() => /Listening at: http:\/\/127\.0\.0\.1:\d+/.test(err) && /Booting worker/.test(err), 15000), err);
    const url = /Listening at: (http:\/\/127\.0\.0\.1:\d+)/.exec(err)![1]!;
    proc.stdout.destroy();
    proc.stderr.destroy();
    for (let i = 0; i < 3; i++) assert.equal((await request(url, '/pid')).status, 200, 'served with its log pipes closed');
    assert.equal(proc.exitCode, null, 'still running');
  } finally {
    proc.kill('SIGKILL');
  }
});

test('SIGKILL on gatehouse: its Python workers are gone within a couple of seconds', async () => {
  const gh = await launch([APP, '--workers', '2']);
  let workers: number[] = [];
  try {
    workers = childPids(gh.pid);
    assert.equal(workers.length, 2);
    // One busy, one idle: both must go.
    void request(gh.url, '/sleep?s=30').catch(() => {});
    await sleep(200);
    gh.proc.kill('SIGKILL');
    await gh.exited(2000);
    const gone = await waitUntil(() => workers.every((p) => !isAlive(p)), 2000);
    assert.ok(gone, `workers still alive: ${workers.filter(isAlive).join(',')}`);
  } finally {
    await gh.kill();
    for (const p of workers) if (isAlive(p)) process.kill(p, 'SIGKILL');
  }
});

/** Checks a boot failure: fast, non-zero, one error line, traceback, no respawn loop, nothing left. */
async function assertBootFailure(app: string, traceback: RegExp, lastLine: RegExp): Promise<void> {
  const r = await runCli([app, '--bind', '127.0.0.1:0', '--workers', '2'], { timeoutMs: 15000 });
  assert.equal(r.timedOut, false, `still running after 15 s; output:\n${r.stderr}`);
  assert.notEqual(r.code, 0);
  assert.ok(r.ms < 5000, `took ${r.ms} ms to fail`);
  const errorLines = r.stderr.split('\n').filter((l) => l.includes('GH_ERR_APP_IMPORT'));
  assert.equal(errorLines.length, 1, `one GH_ERR_APP_IMPORT line; stderr:\n${r.stderr}`);
  assert.match(errorLines[0]!, /^gatehouse: error: GH_ERR_APP_IMPORT: /);
  assert.match(errorLines[0]!, lastLine);
  assert.match(r.stderr, /Traceback \(most recent call last\):/);
  assert.match(r.stderr, traceback);
  assert.doesNotMatch(r.stderr, /^\s+at .*\.js:\d+/m, 'no JavaScript stack trace at the default log level');
  assert.equal(countMatches(r.stderr, /Booting worker with pid/), 0, 'no worker reported as booted');
  assert.ok(await waitUntil(() => workerPidsFor(app).length === 0, 1000), 'no worker left behind');

  // --log-level debug names every worker spawned: at most the 2 configured, no respawn loop.
  const d = await runCli([app, '--bind', '127.0.0.1:0', '--workers', '2', '--log-level', 'debug'], { timeoutMs: 15000 });
  assert.equal(d.timedOut, false);
  assert.notEqual(d.code, 0);
  const spawned = countMatches(d.stderr, /booting worker with pid/);
  assert.ok(spawned >= 1 && spawned <= 2, `spawned ${spawned} workers; stderr:\n${d.stderr}`);
  assert.ok(await waitUntil(() => workerPidsFor(app).length === 0, 1000), 'no worker left behind');
}

test('an app that raises at import: non-zero exit within seconds, traceback, one GH_ERR_APP_IMPORT line, no respawn loop', async () => {
  await assertBootFailure(
    `${APPS}/lifecycle_import_error.py`,
    /lifecycle_import_error\.py", line \d+, in _configure/,
    /RuntimeError: lifecycle_import_error: the database URL is not set$/,
  );
});

test('a missing module: same clean failure naming the module', async () => {
  await assertBootFailure('gh_no_such_module_xyz:application', /ModuleNotFoundError/, /No module named 'gh_no_such_module_xyz'/);
});

test('--python /nonexistent/python: a clear one-line error and a non-zero exit', async () => {
  const r = await runCli([APP, '--bind', '127.0.0.1:0', '--workers', '2', '--python', '/nonexistent/python'], { timeoutMs: 10000 });
  assert.equal(r.timedOut, false);
  assert.notEqual(r.code, 0);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
  const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('gatehouse: error:'));
  assert.equal(errorLines.length, 1, `stderr:\n${r.stderr}`);
  assert.match(errorLines[0]!, /GH_ERR_PYTHON/);
  assert.match(errorLines[0]!, /\/nonexistent\/python/);
  assert.match(errorLines[0]!, /ENOENT/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
});
