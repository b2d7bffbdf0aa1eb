/**
 * The access log's formats (combined, json, gunicorn's atoms with request
 * and response headers and durations), its validation, SIGUSR1 reopening
 * with json, and the error log's --log-level filtering.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, CLI, ROOT } from './helpers/gatehouse.js';
import { runCli, withServer, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';

const APP = `${APPS}/limits_apps.py:app`;
const dir = mkdtempSync(join(tmpdir(), 'gh-access-log-'));
const staticDir = join(dir, 'public');

before(() => {
  mkdirSync(staticDir);
  writeFileSync(join(staticDir, 'empty.txt'), '');
  writeFileSync(join(staticDir, 'page.html'), '<p>hi</p>\n');
});

after(() => rmSync(dir, { recursive: true, force: true }));

let logCount = 0;

/** Runs a server writing its access log to a fresh file; `lines()` reads it. */
async function withAccessLog(format: string | null, fn: (gh: Server, lines: () => string[], file: string) => Promise<void>, extra: string[] = []): Promise<void> {
  const file = join(dir, `access-${++logCount}.log`);
  const args = [APP, '--access-log', file, '--static', `/s=${staticDir}`, ...extra];
  if (format !== null) args.push('--access-log-format', format);
  await withServer(args, (gh) => fn(gh, () => readFileSync(file, 'utf8').split('\n').filter((l) => l !== ''), file));
}

/** Waits until a line containing `marker` is in the log, and returns it. */
async function lineWith(lines: () => string[], marker: string): Promise<string> {
  assert.ok(await waitUntil(() => lines().some((l) => l.includes(marker)), 3000), `a line with ${marker} in:\n${lines().join('\n')}`);
  return lines().find((l) => l.includes(marker))!;
}

test('combined (the default): host, Basic user, time, request line, status, bytes, referer, user agent; quotes escaped', async () => {
  await withAccessLog(null, async (gh, lines) => {
    const auth = `Basic ${Buffer.from('bob:secret').toString('base64')}`;
    const res = await request(gh.url, '/combined?q=1', { headers: { Authorization: auth, Referer: 'http://ref.test/', 'User-Agent': 'agent "quoted"/1.0' } });
    const line = await lineWith(lines, '/combined');
    const m = /^127\.0\.0\.1 - bob \[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "GET \/combined\?q=1 HTTP\/1\.1" 200 (\d+) "http:\/\/ref\.test\/" "agent \\"quoted\\"\/1\.0"$/.exec(line);
    assert.ok(m, line);
    assert.equal(Number(m[2]), Buffer.byteLength(res.body));
    await request(gh.url, '/s/empty.txt');
    assert.match(await lineWith(lines, '/s/empty.txt'), /^127\.0\.0\.1 - - \[.*\] "GET \/s\/empty\.txt HTTP\/1\.1" 200 - "-" "-"$/);
  });
});

test('HEAD, and a 304, log no body bytes: the app made one, the client got none (app and static file)', async () => {
  await withAccessLog(null, async (gh, lines) => {
    const head = await request(gh.url, '/head-app', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(await lineWith(lines, '"HEAD /head-app'), /"HEAD \/head-app HTTP\/1\.1" 200 - /);
    await request(gh.url, '/s/page.html', { method: 'HEAD' });
    assert.match(await lineWith(lines, '"HEAD /s/page.html'), /"HEAD \/s\/page\.html HTTP\/1\.1" 200 - /);
    const page = await request(gh.url, '/s/page.html');
    const again = await request(gh.url, '/s/page.html?again', { headers: { 'If-None-Match': String(page.headers.etag) } });
    assert.equal(again.status, 304);
    assert.match(await lineWith(lines, '/s/page.html?again'), /" 304 - /);
  });
});

test('combined: bytes past 0x7e in what the client sent (a UTF-8 user agent, a Basic user) are written as \\xHH, as nginx', async () => {
  await withAccessLog(null, async (gh, lines) => {
    const c = await RawConnection.open(gh.port);
    try {
      const auth = Buffer.from('zo\u00e9:pw', 'utf8').toString('base64');
      c.write(Buffer.concat([Buffer.from(`GET /bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${auth}\r\nUser-Agent: `), Buffer.from('caf\u00e9\u2603', 'utf8'), Buffer.from('\r\n\r\n')]));
      assert.equal((await c.readResponse()).status, 200);
    } finally {
      c.close();
    }
    const line = await lineWith(lines, '/bytes');
    assert.match(line, /^127\.0\.0\.1 - zo\\xc3\\xa9 \[.*\] "GET \/bytes HTTP\/1\.1" 200 \d+ "-" "caf\\xc3\\xa9\\xe2\\x98\\x83"$/);
  });
});

test('a client that resets its connection mid-body still gets its line: 400, as nginx logs it (fast path and node:http)', async () => {
  await withAccessLog(null, async (gh, lines) => {
    for (const [path, framing, part] of [['/cut-sized', 'Content-Length: 100', '0123456789'], ['/cut-chunked', 'Transfer-Encoding: chunked', 'a\r\n0123456789\r\n']] as const) {
      const c = await RawConnection.open(gh.port);
      c.write(`POST ${path} HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n${part}`);
      // Once the server has read what came: a reset can drop what it has not.
      await sleep(300);
      c.socket.resetAndDestroy();
      assert.match(await lineWith(lines, path), new RegExp(`"POST ${path} HTTP/1\\.1" 400 `));
    }
  });
});

test('json: one object per line with the documented keys', async () => {
  await withAccessLog('json', async (gh, lines) => {
    const res = await request(gh.url, '/slow?ms=300', { headers: { Referer: 'http://ref.test/', 'User-Agent': 'json-agent', Host: 'site.test' } });
    await request(gh.url, '/plain', { headers: { Host: 'site.test' } });
    await lineWith(lines, '/plain');
    const [slow, plain] = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(Object.keys(slow!), ['time', 'remote_addr', 'method', 'path', 'protocol', 'status', 'bytes', 'duration_ms', 'referer', 'user_agent', 'host']);
    assert.match(String(slow!.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.equal(slow!.remote_addr, '127.0.0.1');
    assert.equal(slow!.method, 'GET');
    assert.equal(slow!.path, '/slow?ms=300');
    assert.equal(slow!.protocol, 'HTTP/1.1');
    assert.equal(slow!.status, 200);
    assert.equal(slow!.bytes, Buffer.byteLength(res.body));
    assert.ok(typeof slow!.duration_ms === 'number' && slow!.duration_ms >= 300, `duration_ms covers the app's 300 ms: ${slow!.duration_ms}`);
    assert.equal(slow!.referer, 'http://ref.test/');
    assert.equal(slow!.user_agent, 'json-agent');
    assert.equal(slow!.host, 'site.test');
    assert.equal(plain!.referer, null);
    assert.equal(plain!.user_agent, null);
  });
});

test('json: what the client sent is its UTF-8 text (a UTF-8 user agent), or \\xHH where it is not UTF-8 (a latin-1 referer)', async () => {
  await withAccessLog('json', async (gh, lines) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write(Buffer.concat([Buffer.from('GET /json-bytes HTTP/1.1\r\nHost: x\r\nReferer: http://r.test/'), Buffer.from('caf\u00e9', 'latin1'), Buffer.from('\r\nUser-Agent: '), Buffer.from('caf\u00e9\u2603', 'utf8'), Buffer.from('\r\n\r\n')]));
      assert.equal((await c.readResponse()).status, 200);
    } finally {
      c.close();
    }
    const entry = JSON.parse(await lineWith(lines, '/json-bytes')) as Record<string, unknown>;
    assert.equal(entry.user_agent, 'caf\u00e9\u2603');
    assert.equal(entry.referer, 'http://r.test/caf\\xe9');
  });
});

test("gunicorn's atoms, with request and response headers, durations and %%", async () => {
  const atoms = 'h l u t r m U q H s B b f a T D M L p {X-Request-Id}i {X-Answer}o {Content-Type}o {X-Missing}i'.split(' ');
  const format = atoms.map((a) => `%(${a})s`).join('|') + '|100%%';
  await withAccessLog(format, async (gh, lines) => {
    const res = await request(gh.url, '/slow?ms=1100', { headers: { 'X-Request-Id': 'req-42', Referer: 'http://r.test/', 'User-Agent': 'ua' } });
    const line = await lineWith(lines, '/slow');
    const f = Object.fromEntries(line.split('|').map((v, i) => [atoms[i] ?? 'tail', v]));
    assert.equal(f.h, '127.0.0.1');
    assert.equal(f.l, '-');
    assert.equal(f.u, '-');
    assert.match(f.t!, /^\[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]$/);
    assert.equal(f.r, 'GET /slow?ms=1100 HTTP/1.1');
    assert.equal(f.m, 'GET');
    assert.equal(f.U, '/slow');
    assert.equal(f.q, 'ms=1100');
    assert.equal(f.H, 'HTTP/1.1');
    assert.equal(f.s, '200');
    assert.equal(f.B, String(Buffer.byteLength(res.body)));
    assert.equal(f.b, f.B);
    assert.equal(f.f, 'http://r.test/');
    assert.equal(f.a, 'ua');
    // The app slept 1.1 s: every duration atom says at least that, in its unit.
    assert.ok(Number(f.T) >= 1, `T ${f.T}`);
    assert.ok(Number(f.D) >= 1_100_000, `D ${f.D}`);
    assert.ok(Number(f.M) >= 1100, `M ${f.M}`);
    assert.match(f.L!, /^\d+\.\d{6}$/);
    assert.ok(Number(f.L) >= 1.1, `L ${f.L}`);
    assert.equal(f.p, `<${gh.pid}>`);
    assert.equal(f['{X-Request-Id}i'], 'req-42');
    assert.equal(f['{X-Answer}o'], 'forty-two', 'a response header the app set');
    assert.equal(f['{Content-Type}o'], 'application/json');
    assert.equal(f['{X-Missing}i'], '-');
    assert.equal(f.tail, '100%');
    // A static file: the response headers come from the front itself; an empty body is b "-" and B 0.
    await request(gh.url, '/s/empty.txt');
    const s = Object.fromEntries((await lineWith(lines, '/s/empty.txt')).split('|').map((v, i) => [atoms[i] ?? 'tail', v]));
    assert.equal(s.B, '0');
    assert.equal(s.b, '-');
    assert.match(s['{Content-Type}o']!, /^text\/plain/);
  });
});

test('an unknown atom or a malformed format is a config error naming access_log_format and the atom', async () => {
  const cases: Array<[string, RegExp]> = [
    ['%(h)s %(zz)s', /--access-log-format: unknown atom %\(zz\)s/],
    ['%(h)s %({HOME}e)s', /--access-log-format: unknown atom %\(\{HOME\}e\)s \(environ/],
    ['%(h)d', /--access-log-format: %\(h\) must end with s/],
    ['%(h)s 100%', /--access-log-format: a lone %/],
  ];
  for (const [format, expected] of cases) {
    const r = await runCli([APP, '--access-log-format', format, '--check-config']);
    assert.equal(r.code, 1, `${format}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, expected);
  }
  const conf = join(dir, 'bad-format.toml');
  writeFileSync(conf, `app = "${APP}"\naccess_log_format = "%(h)s %(nope)s"\n`);
  const r = await runCli(['--config', conf, '--check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /access_log_format: unknown atom %\(nope\)s/);
});

test('SIGUSR1 reopens a json access log after it was moved away', async () => {
  await withAccessLog('json', async (gh, lines, file) => {
    await request(gh.url, '/before-rotate');
    await lineWith(lines, '/before-rotate');
    renameSync(file, `${file}.1`);
    process.kill(gh.pid, 'SIGUSR1');
    await gh.waitFor(/Reopened log files/, 3000);
    await request(gh.url, '/after-rotate');
    const entry = JSON.parse(await lineWith(lines, '/after-rotate')) as { path: string; status: number };
    assert.deepEqual([entry.path, entry.status], ['/after-rotate', 200]);
    assert.equal(lines().length, 1, 'only the new line in the new file');
    const old = readFileSync(`${file}.1`, 'utf8').trim().split('\n');
    assert.deepEqual(old.map((l) => (JSON.parse(l) as { path: string }).path), ['/before-rotate']);
  });
});

test("--error-logfile FILE (gunicorn's; --error-log): the front's and the workers' lines go to FILE, none to stderr, and SIGUSR1 reopens it", async () => {
  const file = join(dir, 'error.log');
  const proc = spawn(process.execPath, [CLI, APP, '--workers', '1', '--bind', '127.0.0.1:0', '--error-logfile', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const text = (f = file) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  try {
    assert.ok(await waitUntil(() => /Booting worker with pid/.test(text()), 15000), text() + stderr);
    const url = /Listening at: (http:\/\/127\.0\.0\.1:\d+)/.exec(text())![1]!;
    assert.equal((await request(url, '/log')).status, 200);
    assert.ok(await waitUntil(() => text().includes('app wrote to wsgi.errors'), 3000), text());
    renameSync(file, `${file}.1`);
    process.kill(proc.pid!, 'SIGUSR1');
    assert.ok(await waitUntil(() => /Reopened log files/.test(text()), 3000), text());
    assert.equal((await request(url, '/log')).status, 200);
    assert.ok(await waitUntil(() => text().includes('app wrote to wsgi.errors'), 3000), text());
    assert.match(text(`${file}.1`), /Starting gatehouse[\s\S]*app wrote to wsgi.errors/);
    proc.kill('SIGTERM');
    await exited;
    assert.match(text(), /Shutting down: Master\n$/, 'the last line is in the file at exit');
    assert.equal(stderr, '', 'nothing on stderr');
  } finally {
    proc.kill('SIGKILL');
  }
});

test('--error-log FILE: a start that fails (no worker imports the app) is in the file too, with its traceback, and on stderr as always', async () => {
  const file = join(dir, 'boot-error.log');
  const r = await runCli([`${APPS}/lifecycle_import_error.py`, '--workers', '1', '--bind', '127.0.0.1:0', '--error-log', file]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /gatehouse: error: GH_ERR_APP_IMPORT/);
  assert.match(readFileSync(file, 'utf8'), /\[ERROR\] GH_ERR_APP_IMPORT: cannot load the application: [\s\S]*Traceback \(most recent call last\)/);
});

/**
 * Starts gatehouse on a unix socket with `--log-level LEVEL` (the boot lines
 * the usual launcher waits for are INFO, so readiness is polled instead),
 * requests /log (a line to wsgi.errors, ERROR, and one to stdout, INFO) and
 * returns everything it printed.
 */
async function errorLogAt(level: string): Promise<string> {
  const sock = join(dir, `level-${level}.sock`);
  const proc = spawn(process.execPath, [CLI, APP, '--workers', '1', '--bind', `unix:${sock}`, '--log-level', level], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  try {
    let answered = false;
    for (let i = 0; i < 150 && !answered; i++) {
      answered = await request({ socketPath: sock }, '/log', { timeoutMs: 2000 }).then((r) => r.status === 200, () => false);
      if (!answered) await sleep(100);
    }
    assert.ok(answered, `no answer on ${sock}; output:\n${out}`);
    // The worker's lines travel through a pipe: give them a moment before stopping.
    await waitUntil(() => out.includes('app wrote to wsgi.errors') && out.includes('app printed to stdout'), 1000);
  } finally {
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(10000).then(() => proc.kill('SIGKILL'))]);
  }
  return out;
}

test('--log-level filters the error log: debug shows all, warning hides INFO, critical hides ERROR too', async () => {
  const debug = await errorLogAt('debug');
  assert.match(debug, /\[DEBUG\] booting worker with pid \d+/);
  assert.match(debug, /\[INFO\] app printed to stdout/);
  assert.match(debug, /\[ERROR\] app wrote to wsgi.errors/);
  // A worker's line that names its level in Python logging's usual formats is labelled, and filtered, by it.
  assert.match(debug, /\[WARNING\] WARNING:django.request:Not Found: \/log/);
  assert.match(debug, /\[DEBUG\] DEBUG:app:a debug line/);
  assert.match(debug, /\[WARNING\] \/srv\/app.py:3: DeprecationWarning: old call/);

  const warning = await errorLogAt('warning');
  assert.match(warning, /\[ERROR\] app wrote to wsgi.errors/);
  assert.match(warning, /\[WARNING\] WARNING:django.request:Not Found/);
  assert.doesNotMatch(warning, /\[(INFO|DEBUG)\]/);
  assert.doesNotMatch(warning, /a debug line/);

  const critical = await errorLogAt('critical');
  assert.doesNotMatch(critical, /\[(INFO|DEBUG|WARNING|ERROR)\]/);

  const info = await errorLogAt('info');
  assert.match(info, /\[INFO\] app printed to stdout/);
  assert.doesNotMatch(info, /\[DEBUG\]/);
});

test("requests the parser refuses are logged too: 408 for a head not sent in time, 431, 414, 400 (request line \"-\")", async () => {
  await withAccessLog(
    null,
    async (gh, lines) => {
      const slow = new RawConnection(gh.port);
      await slow.connected;
      slow.write('GET /never-finished HTTP/1.1\r\nHost: x\r\n');
      const timedOut = await slow.readResponse(5000);
      assert.equal(timedOut.status, 408);
      const big = new RawConnection(gh.port);
      await big.connected;
      big.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
      assert.equal((await big.readResponse()).status, 431);
      const long = new RawConnection(gh.port);
      await long.connected;
      long.write(`GET /${'u'.repeat(4096)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal((await long.readResponse()).status, 414);
      const bad = new RawConnection(gh.port);
      await bad.connected;
      bad.write('NOT A REQUEST\r\n\r\n');
      assert.equal((await bad.readResponse()).status, 400);
      for (const status of [408, 431, 414, 400]) {
        assert.match(await lineWith(lines, `" ${status} `), new RegExp(`^127\\.0\\.0\\.1 - - \\[.*\\] "-" ${status} - "-" "-"$`));
      }
      for (const c of [slow, big, long, bad]) c.socket.destroy();
    },
    ['--header-timeout', '1', '--max-header-size', '2k'],
  );
});

test('json: a refused request has null method, path and protocol', async () => {
  await withAccessLog(
    'json',
    async (gh, lines) => {
      const bad = new RawConnection(gh.port);
      await bad.connected;
      bad.write('NOT A REQUEST\r\n\r\n');
      assert.equal((await bad.readResponse()).status, 400);
      const entry = JSON.parse(await lineWith(lines, '"status":400')) as Record<string, unknown>;
      assert.deepEqual([entry.method, entry.path, entry.protocol, entry.remote_addr], [null, null, null, '127.0.0.1']);
      bad.socket.destroy();
    },
  );
});
