/**
 * The command line as a user meets it: --help and --version, errors for bad
 * flags and values (one line, naming the flag, no stack trace), every APP
 * form, --chdir/--pythonpath/--venv, the access log, and unix/IPv6 binds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, CLI, hasCommand, ROOT, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { runCli, withServer } from './helpers/launch.js';
import { workerPidsFor } from './helpers/processes.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const CLI_APPS = `${APPS}/cli_apps`;
const FILE_APP = `${CLI_APPS}/cliapp_file.py`;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The lines of stderr that gatehouse's error reporter wrote. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('gatehouse: '));
}

/** A config error: non-zero exit, exactly one error line, no stack trace, nothing else on stderr. */
function assertConfigError(r: { code: number | null; stdout: string; stderr: string }, ...mentions: string[]): string {
  assert.notEqual(r.code, 0, 'non-zero exit');
  assert.notEqual(r.code, null, 'exited by itself');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  const line = lines[0]!;
  assert.match(line, /^gatehouse: error: GH_ERR_CONFIG: /);
  for (const m of mentions) assert.ok(line.includes(m), `${JSON.stringify(line)} should mention ${JSON.stringify(m)}`);
  assert.doesNotMatch(r.stderr, /\bat .*:\d+:\d+\)?$/m, 'no stack trace');
  assert.equal(r.stdout, '');
  return line;
}

async function json(target: string | { socketPath: string }, path = '/'): Promise<Record<string, unknown>> {
  const r = await request(target, path);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Record<string, unknown>;
}

// ---------------------------------------------------------------- help, version, errors

test('--version and -v print the version and exit 0', async () => {
  for (const flag of ['--version', '-v']) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `gatehouse ${VERSION}\n`);
    assert.equal(r.stderr, '');
  }
});

test('--help and -h list every flag and exit 0', async () => {
  for (const flag of ['--help', '-h']) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Usage: gatehouse \[options\] APP/);
    for (const f of [
      '--bind',
      '-b,',
      '--workers',
      '-w,',
      '--python',
      '--venv',
      '--chdir',
      '--pythonpath',
      '--timeout',
      '--graceful-timeout',
      '--queue-size',
      '--queue-timeout',
      '--max-request-body',
      '--access-log',
      '--log-level',
      '--version',
      '--help',
    ]) {
      assert.ok(r.stdout.includes(f), `--help mentions ${f}`);
    }
  }
});

test('an unknown flag (--wrkers 2): one-line error naming it, non-zero exit, no stack trace', async () => {
  const r = await runCli([FILE_APP, '--wrkers', '2']);
  assertConfigError(r, '--wrkers');
});

test('--workers abc / 0 / 1.5: an error naming --workers and the value', async () => {
  assertConfigError(await runCli([FILE_APP, '--workers', 'abc']), '--workers', 'abc');
  assertConfigError(await runCli([FILE_APP, '--workers', '0']), '--workers', '0');
  assertConfigError(await runCli([FILE_APP, '--workers', '1.5']), '--workers', '1.5');
});

test('--bind 127.0.0.1:99999: an error naming --bind and the address', async () => {
  assertConfigError(await runCli([FILE_APP, '--bind', '127.0.0.1:99999']), '--bind', '127.0.0.1:99999');
});

test('--bind 8000 (a port alone): a config error that says how to write it, not a failed listen on 0.0.31.64', async () => {
  assertConfigError(await runCli([FILE_APP, '--bind', '8000']), '--bind', ':8000', '127.0.0.1:8000');
});

test('a negative number after a flag (--timeout -1, --workers -2): one-line error naming the flag', async () => {
  assertConfigError(await runCli([FILE_APP, '--timeout=-1']), '--timeout', '-1');
  assertConfigError(await runCli([FILE_APP, '--timeout', '-1']), '--timeout', '-1');
  assertConfigError(await runCli([FILE_APP, '--workers', '-2']), '--workers', '-2');
  assertConfigError(await runCli([FILE_APP, '-w', '-2']), '--workers', '-2');
});

test('no APP: an error that says an APP is needed and what it looks like', async () => {
  const line = assertConfigError(await runCli(['--workers', '1']), 'APP');
  assert.match(line, /application|module:callable|\.py/i, `says what APP should be: ${line}`);
  assert.doesNotMatch(line, /received undefined|Invalid input/, `no validator jargon: ${line}`);
});

test('a port already in use: one error line naming the address, non-zero exit, no worker started', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  try {
    const port = (blocker.address() as { port: number }).port;
    const marker = `${CLI_APPS}/cliapp_file.py:other`;
    const r = await runCli([marker, '--bind', `127.0.0.1:${port}`, '--workers', '1'], { timeoutMs: 10000 });
    assert.equal(r.timedOut, false);
    assert.notEqual(r.code, 0);
    assert.ok(r.ms < 5000, `took ${r.ms} ms`);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /GH_ERR_BIND/);
    assert.ok(lines[0]!.includes(`127.0.0.1:${port}`), lines[0]);
    assert.match(lines[0]!, /in use/);
    assert.doesNotMatch(r.stderr, /\bat .*:\d+:\d+\)?$/m, 'no stack trace');
    assert.doesNotMatch(r.stderr, /Booting worker/);
    assert.deepEqual(workerPidsFor(marker), []);
  } finally {
    blocker.close();
  }
});

test('--python and --venv pointing at nothing: errors naming the flag', async () => {
  const venv = await runCli([FILE_APP, '--venv', '/nonexistent/venv', '--workers', '1']);
  assert.notEqual(venv.code, 0);
  assert.equal(errorLines(venv.stderr).length, 1, venv.stderr);
  assert.match(errorLines(venv.stderr)[0]!, /--venv.*\/nonexistent\/venv/);
  const chdir = await runCli([FILE_APP, '--chdir', '/nonexistent/dir', '--workers', '1']);
  assert.notEqual(chdir.code, 0);
  assert.match(errorLines(chdir.stderr)[0] ?? '', /--chdir.*\/nonexistent\/dir/);
});

// ---------------------------------------------------------------- APP forms

test('APP module:callable with --chdir (run from another directory)', async () => {
  await withServer(['cliapp_mod:application', '--chdir', 'test/apps/cli_apps'], async (gh) => {
    const d = await json(gh.url);
    assert.equal(d.form, 'module:application');
    assert.equal(d.module, 'cliapp_mod');
    assert.equal(d.cwd, realpathSync(CLI_APPS), 'the worker runs in the --chdir directory');
  }, { cwd: ROOT });
});

test('APP module:factory() calls the factory', async () => {
  await withServer(['cliapp_mod:make_app()', '--chdir', CLI_APPS], async (gh) => {
    assert.equal((await json(gh.url)).form, 'module:factory()');
  });
});

test("APP module:factory('x', n=2) passes the literal arguments", async () => {
  await withServer(["cliapp_mod:make_app_with('x', n=2)", '--chdir', CLI_APPS], async (gh) => {
    const d = await json(gh.url);
    assert.equal(d.form, 'module:factory(args)');
    assert.equal(d.greeting, 'x');
    assert.equal(d.n, 2);
  });
});

test('APP file.py serves its `application`', async () => {
  await withServer(['test/apps/cli_apps/cliapp_file.py'], async (gh) => {
    const d = await json(gh.url);
    assert.equal(d.form, 'file.py');
    assert.equal(d.module, 'cliapp_file');
  }, { cwd: ROOT });
});

test('APP file.py:name serves that name', async () => {
  await withServer([`${FILE_APP}:other`], async (gh) => {
    assert.equal((await json(gh.url)).form, 'file.py:other');
  });
});

test('APP naming a missing attribute: GH_ERR_APP_IMPORT naming it', async () => {
  const r = await runCli(['cliapp_mod:nope', '--chdir', CLI_APPS, '--workers', '1']);
  assert.notEqual(r.code, 0);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /GH_ERR_APP_IMPORT.*'nope'/);
  // What it could have named instead: the module's own callables, not what it imported (json, os...).
  assert.match(lines[0]!, /the callables it has: application, other, make_app, make_app_with$/);
  // Said once: the worker's one-line report is the message, not repeated under it.
  assert.equal(r.stderr.split("has no attribute 'nope'").length - 1, 1, r.stderr);
});

test('--pythonpath DIR makes a module importable (relative to the current directory)', async () => {
  await withServer(['cliapp_pp_mod:application', '--pythonpath', 'test/apps/cli_apps/pp'], async (gh) => {
    const r = await request(gh.url, '/');
    assert.equal(r.status, 200);
    assert.match(r.body, /^from --pythonpath; /);
    assert.ok(r.body.includes(`${CLI_APPS}/pp`), `sys.path starts with the --pythonpath directory: ${r.body}`);
  }, { cwd: ROOT });
});

test('--pythonpath takes a comma-separated list', async () => {
  await withServer(['cliapp_pp_mod:application', '--pythonpath', `${CLI_APPS},${CLI_APPS}/pp`], async (gh) => {
    assert.equal((await request(gh.url, '/')).status, 200);
  });
});

test('--venv DIR runs the workers in that virtualenv (sys.prefix is DIR)', async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'gh-venv-')));
  try {
    const venv = join(dir, 'venv');
    const made = spawnSync(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', '--system-site-packages', venv], { encoding: 'utf8', timeout: 20000 });
    if (made.status !== 0 || !existsSync(join(venv, 'bin', 'python'))) {
      t.skip(`cannot make a virtualenv with ${SYSTEM_PYTHON} -m venv (python3-venv missing?): ${(made.stderr || String(made.error)).trim()}`);
      return;
    }
    await withServer(['cliapp_mod:application', '--chdir', CLI_APPS, '--venv', venv], async (gh) => {
      const d = await json(gh.url);
      assert.equal(d.prefix, venv);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- access log

test('--access-log FILE writes Combined Log Format lines as requests complete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-access-'));
  const log = join(dir, 'access.log');
  try {
    await withServer([FILE_APP, '--access-log', log], async (gh) => {
      const first = await request(gh.url, '/path?q=1&r=two', { headers: { Referer: 'http://ref.example/page', 'User-Agent': 'test-agent/1.0 (x)' } });
      assert.equal(first.status, 200);
      const second = await request(gh.url, '/bare');
      assert.equal(second.status, 200);
      // Written while the server runs (operators tail the log), not only at exit.
      const written = await waitUntil(() => existsSync(log) && readFileSync(log, 'utf8').split('\n').length >= 3, 3000);
      assert.ok(written, `access log has two lines: ${existsSync(log) ? JSON.stringify(readFileSync(log, 'utf8')) : 'no file'}`);
      const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
      assert.equal(lines.length, 2);
      const clf =
        /^127\.0\.0\.1 - - \[(\d{2})\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] "([A-Z]+) (\S+) (HTTP\/1\.[01])" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$/;
      const m1 = clf.exec(lines[0]!);
      assert.ok(m1, `not Combined Log Format: ${lines[0]}`);
      assert.equal(m1[8], 'GET');
      assert.equal(m1[9], '/path?q=1&r=two');
      assert.equal(m1[10], 'HTTP/1.1');
      assert.equal(m1[11], '200');
      assert.equal(m1[12], String(Buffer.byteLength(first.body)), 'bytes is the body size sent');
      assert.equal(m1[13], 'http://ref.example/page');
      assert.equal(m1[14], 'test-agent/1.0 (x)');
      const year = Number(m1[3]);
      assert.ok(Math.abs(year - new Date().getFullYear()) <= 1);
      const m2 = clf.exec(lines[1]!);
      assert.ok(m2, `not Combined Log Format: ${lines[1]}`);
      assert.equal(m2[9], '/bare');
      assert.equal(m2[13], '-', 'no Referer is logged as "-"');
      assert.equal(m2[14], '-', 'no User-Agent is logged as "-"');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--access-log in a directory that does not exist: a clean error naming the flag, no crash', async () => {
  const log = '/nonexistent/gh-dir/access.log';
  const r = await runCli([`${FILE_APP}:other`, '--bind', '127.0.0.1:0', '--workers', '1', '--access-log', log], { timeoutMs: 10000 });
  assert.equal(r.timedOut, false, 'exits by itself');
  assert.notEqual(r.code, 0);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `one gatehouse error line; stderr:\n${r.stderr}`);
  assert.ok(lines[0]!.includes('--access-log') && lines[0]!.includes(log), lines[0]);
  assert.doesNotMatch(r.stderr, /Unhandled 'error' event|^\s+at /m, `no crash or stack trace; stderr:\n${r.stderr}`);
  assert.ok(await waitUntil(() => workerPidsFor(`${FILE_APP}:other`).length === 0, 1000), 'no worker left');
});

// ---------------------------------------------------------------- binds

test('-b unix:PATH serves over a unix socket (alongside a TCP bind), and removes the socket at exit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-sock-'));
  const sock = join(dir, 'gh.sock');
  try {
    await withServer([FILE_APP, '-b', `unix:${sock}`, '-b', '127.0.0.1:0'], async (gh) => {
      assert.deepEqual(gh.addresses[0], `unix:${sock}`);
      const d = await json({ socketPath: sock }, '/over-unix');
      assert.equal(d.form, 'file.py');
      assert.equal((await json(gh.url)).form, 'file.py', 'the TCP bind serves too');
      assert.equal(await gh.stop('SIGTERM'), 0);
      assert.equal(existsSync(sock), false, 'socket file removed on exit');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-b unix:PATH replaces a stale socket left by a killed server', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-sock-'));
  const sock = join(dir, 'gh.sock');
  try {
    await withServer([FILE_APP, '-b', `unix:${sock}`], async (gh) => {
      assert.equal((await json({ socketPath: sock })).form, 'file.py');
      gh.proc.kill('SIGKILL');
      await gh.exited(5000);
    });
    assert.ok(existsSync(sock), 'a SIGKILLed server leaves its socket file');
    await withServer([FILE_APP, '-b', `unix:${sock}`], async () => {
      assert.equal((await json({ socketPath: sock })).form, 'file.py');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-b unix:PATH where a running server listens: one GH_ERR_BIND line, and that server keeps its socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-sock-'));
  const sock = join(dir, 'gh.sock');
  try {
    await withServer([FILE_APP, '-b', `unix:${sock}`], async () => {
      const r = await runCli([FILE_APP, '-b', `unix:${sock}`, '--workers', '1'], { timeoutMs: 10000 });
      assert.notEqual(r.code, 0);
      const lines = errorLines(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`GH_ERR_BIND: cannot listen on unix:${sock}: address already in use`));
      assert.doesNotMatch(r.stderr, /Booting worker/);
      assert.equal((await json({ socketPath: sock })).form, 'file.py', 'the running server still answers on its socket');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('WEB_CONCURRENCY, PORT and FORWARDED_ALLOW_IPS from the environment, as gunicorn takes them; flags and the file win', async () => {
  const port = await freePort();
  const env = { WEB_CONCURRENCY: '2', PORT: String(port), FORWARDED_ALLOW_IPS: '127.0.0.1' };
  await withServer([`${APPS}/wsgi_cases.py:dispatch`, '--python', SYSTEM_PYTHON], async (gh) => {
    assert.match(gh.output(), new RegExp(`Listening at: http://0\\.0\\.0\\.0:${port} `));
    assert.match(gh.output(), /Using worker: sync \(2 processes\)/);
    const r = await request(`http://127.0.0.1:${port}`, '/environ', { headers: { 'X-Forwarded-For': '203.0.113.9' } });
    assert.equal((JSON.parse(r.body) as { REMOTE_ADDR: string }).REMOTE_ADDR, '203.0.113.9');
  }, { env, workers: 2 });
  await withServer([FILE_APP, '-w', '1', '-b', '127.0.0.1:0'], async (gh) => {
    assert.match(gh.output(), /Listening at: http:\/\/127\.0\.0\.1:\d+ /);
    assert.match(gh.output(), /Using worker: sync \(1 process\)/);
  }, { env: { WEB_CONCURRENCY: '3', PORT: String(port) }, workers: 1 });
  const bad = await runCli([FILE_APP], { env: { WEB_CONCURRENCY: 'many' } });
  assert.equal(bad.code, 1);
  assert.deepEqual(errorLines(bad.stderr), ['gatehouse: error: GH_ERR_CONFIG: WEB_CONCURRENCY (environment): must be a number (got "many")']);
});

async function ipv6Loopback(): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

test('-b [::1]:0 serves over IPv6 loopback', async (t) => {
  if (!(await ipv6Loopback())) {
    t.skip('IPv6 loopback (::1) is not available here');
    return;
  }
  await withServer([FILE_APP, '-b', '[::1]:0'], async (gh) => {
    assert.match(gh.addresses[0] ?? '', /^\[::1\]:\d+$/);
    assert.equal(gh.url, `http://${gh.addresses[0]}`);
    assert.equal((await json(gh.url)).form, 'file.py');
  });
});

test("gunicorn's command lines: --access-logfile, --keep-alive, --error-logfile -, --capture-output and -k sync/gthread/UvicornWorker work; -k gevent and --pid say what to use instead", async () => {
  await withServer([FILE_APP, '--access-logfile', '-', '--error-logfile', '-', '--capture-output', '-k', 'sync', '--keep-alive', '3'], async (gh) => {
    const r = await request(gh.url, '/logged', { headers: { Connection: 'keep-alive' } });
    assert.equal(r.headers['keep-alive'], 'timeout=3');
    assert.ok(await waitUntil(() => /"GET \/logged HTTP\/1\.1" 200 /.test(gh.output()), 3000), gh.output());
  });
  await withServer([`${APPS}/asgi_apps.py:app`, '--python', SYSTEM_PYTHON, '--log-file=-', '--worker-class', 'uvicorn.workers.UvicornWorker'], async (gh) => {
    assert.match(gh.output(), /Using worker: asgi/);
    assert.equal((await request(gh.url, '/pid')).status, 200);
  });
  await withServer([FILE_APP, '-k', 'gthread', '--threads', '2'], async (gh) => {
    assert.match(gh.output(), /Using worker: threads \(2 per process\)/);
  });
  for (const [args, instead] of [
    [['-k', 'gevent'], /Unknown option '-k': .*--threads/],
    [['--pid=/tmp/gh.pid'], /Unknown option '--pid': .*systemd/],
    [['--error-logfile', '/nonexistent/gunicorn/error.log'], /--error-log: cannot open: ENOENT/],
    [['--wrkers', '2'], /Unknown option '--wrkers' \(see gatehouse --help\)/],
  ] as const) {
    const r = await runCli([FILE_APP, ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`GH_ERR_CONFIG: ${instead.source}`));
  }
});

test('the README documents every flag that --help lists', async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const help = (await runCli(['--help'])).stdout;
  const flags = [...help.matchAll(/^ {2}(?:-\w, )?\s*(--[a-z-]+)/gm)].map((m) => m[1]!);
  assert.ok(flags.length > 30, `flags found in --help: ${flags.join(' ')}`);
  for (const flag of flags) assert.match(readme, new RegExp(`^\\| [^|]*\`(?:-\\w, )?${flag}\\b`, 'm'), `README's flag table has ${flag}`);
});

test("the gatehouse command's first lines: sh (dash, BusyBox's) execs node with the young generation's cap, in the same process", async () => {
  const shells: string[][] = [['sh']];
  if (hasCommand('busybox')) shells.push(['busybox', 'sh']);
  for (const shell of shells) {
    // As the kernel runs the script (npm's bin link and npx do the same): `sh PATH ARGS`.
    const child = spawn(shell[0]!, [...shell.slice(1), CLI, '--proxy', '/=127.0.0.1:1', '--bind', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      assert.ok(await waitUntil(() => /Listening at: /.test(out), 10_000), `${shell.join(' ')}: ${out}`);
      assert.equal(new RegExp(`\\[${child.pid}\\] \\[INFO\\] Listening at`).test(out), true, `${shell.join(' ')}: node is the process started (exec), not a child: ${out}`);
      const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      assert.deepEqual(argv.slice(0, 3), ['node', '--max-semi-space-size=4', CLI], shell.join(' '));
      assert.doesNotMatch(out, /Permission denied|not found|can't/, shell.join(' '));
    } finally {
      child.kill();
    }
  }
});
