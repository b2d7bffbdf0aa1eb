/**
 * The config file (`--config gatehouse.toml`): one schema with the flags,
 * flags overriding the file's top level, paths relative to the file,
 * `--check-config` reporting every problem with its key path, unknown keys
 * refused, TOML syntax errors with line and column, and an app per user.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, ROOT } from './helpers/gatehouse.js';
import { countMatches, launch, runCli } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes a config file into its own directory and returns its path. */
function configFile(text: string): string {
  const d = join(dir, `c${n++}`);
  mkdirSync(d);
  writeFileSync(join(d, 'gatehouse.toml'), text);
  return join(d, 'gatehouse.toml');
}

function errorText(r: { stderr: string }): string {
  return r.stderr.split('\n').filter((l) => l.startsWith('gatehouse: ') || l.startsWith('  ')).join('\n');
}

test('a config file alone serves its app; relative paths are relative to the file, not the current directory', async () => {
  const file = configFile(['bind = ["127.0.0.1:0"]', 'workers = 1', 'chdir = "code"', 'app = "site_app:whoami"', 'access_log = "logs/access.log"'].join('\n'));
  mkdirSync(join(file, '..', 'logs'));
  const code = join(file, '..', 'code');
  mkdirSync(code);
  writeFileSync(join(code, 'site_app.py'), `import sys\nsys.path.insert(0, ${JSON.stringify(APPS)})\nfrom basic import whoami\n`);
  const s = await launch(['--config', file], { workers: 1, cwd: tmpdir() });
  try {
    const r = await request(s.url, '/hi');
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as { path_info: string }).path_info, '/hi');
    assert.match(s.output(), /Configuration: .*gatehouse\.toml/);
    const log = join(file, '..', 'logs', 'access.log');
    assert.ok(await waitUntil(() => existsSync(log) && readFileSync(log, 'utf8').includes('"GET /hi HTTP/1.1" 200'), 5000), 'the access log is next to the file');
  } finally {
    await s.kill();
  }
});

test('a list setting may be one string in the file, as in gunicorn\'s: bind, pythonpath, forwarded_allow_ips (comma-separated)', async () => {
  const file = configFile(['bind = "127.0.0.1:0"', 'workers = 1', 'pythonpath = "code"', 'forwarded_allow_ips = "10.9.9.9, 127.0.0.1"', 'app = "site_app:whoami"'].join('\n'));
  const code = join(file, '..', 'code');
  mkdirSync(code);
  writeFileSync(join(code, 'site_app.py'), `import sys\nsys.path.insert(0, ${JSON.stringify(APPS)})\nfrom basic import whoami\n`);
  const s = await launch(['--config', file], { workers: 1, cwd: tmpdir() });
  try {
    const r = await request(s.url, '/', { headers: { 'X-Forwarded-Host': 'shop.example' } });
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as { host: string }).host, 'shop.example', 'the second address of the string is trusted');
  } finally {
    await s.kill();
  }
  const bad = await runCli(['--config', configFile('bind = 5\nforwarded_allow_ips = "127.0.0.1,nope"\napp = "x:y"'), '--check-config']);
  assert.equal(bad.code, 1);
  assert.match(errorText(bad), /bind: must be an address such as 127\.0\.0\.1:8000, or a list of them \(got 5\)/);
  assert.match(errorText(bad), /forwarded_allow_ips\[1\]: must be an IP address.* \(got "nope"\)/);
});

test('flags override the top level of the file (--workers 2 over workers = 3; APP over app)', async () => {
  const file = configFile(['bind = ["127.0.0.1:0"]', 'workers = 3', `app = "${APPS}/basic.py:nonexistent_name"`].join('\n'));
  const s = await launch(['--config', file, '--workers', '2', `${APPS}/basic.py:whoami`], { workers: 2 });
  try {
    assert.equal((await request(s.url, '/')).status, 200);
    assert.equal(countMatches(s.output(), /Booting worker with pid/), 2);
    assert.match(s.output(), /\(2 processes\)/);
  } finally {
    await s.kill();
  }
});

test('--check-config on a good file: exit 0 after importing every app', async () => {
  const file = configFile(
    [
      'workers = 4',
      `[apps.a]\napp = "${APPS}/basic.py:hello"`,
      `[apps.b]\napp = "${APPS}/basic.py:whoami"`,
      '[[routes]]\npath = "/"\napp = "a"',
      '[[routes]]\npath = "/b"\napp = "b"',
    ].join('\n'),
  );
  const r = await runCli(['--config', file, '--check-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configuration OK/);
  assert.doesNotMatch(r.stderr, /Booting worker.*\n.*Booting worker.*\n.*Booting worker/, 'one worker per app, not four');
});

test('--check-config reports every problem at once, each with its key path, and exits 1', async () => {
  const file = configFile(
    [
      'workers = 0',
      'colour = "blue"',
      `[apps.web]\napp = "${APPS}/basic.py:hello"\nthreads = "many"\nmax_requests = -1`,
      '[[listeners]]\nbind = "127.0.0.1:70000"\nredirect_https = true\ncertfile = "missing.pem"\nkeyfile = "missing.key"',
      '[[routes]]\npath = "/"\napp = "web"',
      '[[routes]]\npath = "/x"\napp = "web"',
      '[[routes]]\npath = "/pub"\nstatic = { root = "./pub", fancy = true }',
      '[[routes]]\npath = "nope"\nreturn = { status = 700 }\nredirect = { location = "/" }',
      '[[routes]]\nhost = "bad host!"\napp = "web"',
      '[[routes]]\npath = "/empty"',
    ].join('\n'),
  );
  const r = await runCli(['--config', file, '--check-config']);
  assert.equal(r.code, 1);
  const text = errorText(r);
  assert.match(text, /GH_ERR_CONFIG: \d+ problems in the configuration/);
  for (const expected of [
    /^ {2}workers: must be at least 1 \(got 0\)$/m,
    /^ {2}colour: unknown setting$/m,
    /^ {2}apps\.web\.threads: must be a whole number \(got "many"\)$/m,
    /^ {2}apps\.web\.max_requests: must be at least 0 \(got -1\)$/m,
    /^ {2}listeners\[0\]\.bind: port must be a number from 0 to 65535 \(got "127\.0\.0\.1:70000"\)$/m,
    /^ {2}listeners\[0\]\.certfile: file .*missing\.pem does not exist/m,
    /^ {2}listeners\[0\]\.redirect_https: only a plain \(non-TLS\) listener redirects to https/m,
    /^ {2}routes\[2\]\.static\.root: directory .*pub does not exist \(got "\.\/pub"\)$/m,
    /^ {2}routes\[2\]\.static\.fancy: unknown setting$/m,
    /^ {2}routes\[3\]\.path: must start with \/ \(got "nope"\)$/m,
    /^ {2}routes\[3\]\.return\.status: must be an HTTP status from 100 to 599 \(got 700\)$/m,
    /^ {2}routes\[3\]: has redirect and return: give one action per route$/m,
    /^ {2}routes\[4\]\.host: must be a host name such as example\.com or \*\.example\.com \(got "bad host!"\)$/m,
    /^ {2}routes\[5\]: needs an action: app, static, redirect, return, proxy, fastcgi, scgi or uwsgi$/m,
  ]) {
    assert.match(text, expected);
  }
  assert.doesNotMatch(r.stderr, /\bat .*:\d+:\d+\)?$/m, 'no stack trace');
});

test('references between sections are checked: an unknown app, several apps without routes, no app at all', async () => {
  const unknown = await runCli(['--config', configFile(`[apps.web]\napp = "x:y"\n[[routes]]\napp = "wbe"`), '--check-config']);
  assert.equal(unknown.code, 1);
  assert.match(errorText(unknown), /routes\[0\]\.app: no app named "wbe" \(apps: web\)/);

  const two = await runCli(['--config', configFile(`[apps.a]\napp = "x:y"\n[apps.b]\napp = "x:z"`)]);
  assert.equal(two.code, 1);
  assert.match(errorText(two), /routes: with several apps \(a, b\), routes must say which requests go to which/);

  const none = await runCli(['--config', configFile('workers = 2')]);
  assert.equal(none.code, 1);
  assert.match(errorText(none), /app: name the application to serve \(WSGI or ASGI\)/);

  const missingApp = await runCli(['--config', configFile('[apps.a]\nworkers = 2\n[[routes]]\napp = "a"')]);
  assert.match(errorText(missingApp), /apps\.a\.app: must name the application \(WSGI or ASGI\)/);
});

test('a schema error does not hide the checks across sections: a bad app setting, an unknown app and a missing static root in one go', async () => {
  const file = configFile(
    [
      `[apps.web]\napp = "${APPS}/basic.py:hello"\nworkers = "two"`,
      `[apps.admin]\napp = "${APPS}/basic.py:whoami"`,
      '[[routes]]\npath = "/"\napp = "web"',
      '[[routes]]\npath = "/api"\napp = "api"',
      '[[routes]]\npath = "/static"\nstatic = { root = "./missing" }',
      '[[routes]]\npath = "/admin"\napp = "admin"',
    ].join('\n'),
  );
  const r = await runCli(['--config', file, '--check-config']);
  assert.equal(r.code, 1);
  const text = errorText(r);
  assert.match(text, /GH_ERR_CONFIG: 3 problems in the configuration:/, text);
  assert.match(text, /^ {2}apps\.web\.workers: must be a whole number \(got "two"\)$/m);
  assert.match(text, /^ {2}routes\[1\]\.app: no app named "api" \(apps: web, admin\) \(got "api"\)$/m, 'the route check runs, the refused app still counts');
  assert.match(text, /^ {2}routes\[2\]\.static\.root: directory .*missing does not exist \(got "\.\/missing"\)$/m);

  // The index stays the file's when an earlier route is refused; a key refused is not reported twice.
  const later = await runCli(['--config', configFile(`[apps.web]\napp = ""\n[[routes]]\npath = "nope"\napp = "web"\n[[routes]]\napp = "wbe"`), '--check-config']);
  const laterText = errorText(later);
  assert.match(laterText, /GH_ERR_CONFIG: 3 problems in the configuration:/, laterText);
  assert.match(laterText, /^ {2}apps\.web\.app: must name the application \(WSGI or ASGI\)/m);
  assert.match(laterText, /^ {2}routes\[0\]\.path: must start with \//m);
  assert.match(laterText, /^ {2}routes\[1\]\.app: no app named "wbe" \(apps: web\)/m);
});

test('a TOML syntax error names the file, line and column; a missing file is named too', async () => {
  const file = configFile('workers = 2\nbind = = ["127.0.0.1:0"]\n');
  const r = await runCli(['--config', file]);
  assert.equal(r.code, 1);
  assert.match(errorText(r), new RegExp(`GH_ERR_CONFIG: ${file.replace(/[.]/g, '\\.')}:2:\\d+: `));
  const missing = await runCli(['--config', join(dir, 'nope.toml')]);
  assert.equal(missing.code, 1);
  assert.match(errorText(missing), /--config: cannot read .*nope\.toml: ENOENT/);
});

test("gunicorn's gunicorn.conf.py or uWSGI's ini given to --config: an error that says the file is TOML and the settings are flags", async () => {
  for (const [name, text, whose] of [['gunicorn.conf.py', 'bind = "0.0.0.0:8000"\nworkers = 4\n', "gunicorn's Python config"], ['uwsgi.ini', '[uwsgi]\nprocesses = 4\n', "uWSGI's config"]] as const) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = await runCli(['--config', file, `${APPS}/basic.py:hello`]);
    assert.equal(r.code, 1);
    assert.match(errorText(r), new RegExp(`GH_ERR_CONFIG: --config: .*${name.replace('.', '\\.')} looks like ${whose}; gatehouse's config file is TOML .*--workers`));
  }
});

test('a flag that overrides a bad file value is reported by its flag name', async () => {
  const file = configFile(`app = "${APPS}/basic.py:hello"\nworkers = 2`);
  const r = await runCli(['--config', file, '--workers', '0']);
  assert.equal(r.code, 1);
  assert.match(errorText(r), /GH_ERR_CONFIG: --workers: must be at least 1 \(got 0\)/);
});

test('apps can run as different users: a route to another pool runs as another user', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const file = configFile(
    [
      'bind = ["127.0.0.1:0"]',
      'workers = 1',
      `[apps.root]\napp = "${APPS}/basic.py:whoami"`,
      `[apps.nobody]\napp = "${APPS}/basic.py:whoami"\nuser = "nobody"`,
      '[[routes]]\napp = "root"',
      '[[routes]]\npath = "/nobody"\napp = "nobody"',
    ].join('\n'),
  );
  const s = await launch(['--config', file], { workers: 2 });
  try {
    const uid = async (path: string) => (JSON.parse((await request(s.url, path)).body) as { uid: number }).uid;
    assert.equal(await uid('/'), 0);
    assert.equal(await uid('/nobody/x'), 65534);
    // A body big enough to be spilled to a temp file is readable by the nobody worker.
    const big = await request(s.url, '/nobody/upload', { method: 'POST', body: 'x'.repeat(300 * 1024) });
    assert.equal((JSON.parse(big.body) as { body_length: number }).body_length, 300 * 1024);
  } finally {
    await s.kill();
  }
});

test('the example site (examples/site/gatehouse.toml) checks and serves what it says', async () => {
  const example = join(ROOT, 'examples', 'site', 'gatehouse.toml');
  const check = await runCli(['--config', example, '--check-config']);
  assert.equal(check.code, 0, check.stderr);
  // --bind on the command line replaces the file's listeners.
  const s = await launch(['--config', example, '--bind', '127.0.0.1:0'], { workers: 4 });
  try {
    assert.equal((await request(s.url, '/')).body, 'Hello from gatehouse!\n');
    assert.deepEqual(JSON.parse((await request(s.url, '/api/v1/items')).body), { api: 'example', script_name: '/api', path_info: '/v1/items' });
    const css = await request(s.url, '/static/site.css');
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    assert.equal((await request(s.url, '/healthz')).body, 'ok\n');
    const old = await request(s.url, '/old-blog/2019/post');
    assert.equal(old.status, 301);
    assert.equal(old.headers.location, 'https://blog.example.com/2019/post');
    assert.equal(s.addresses.length, 1, 'only the --bind address, not the file\'s 127.0.0.1:8000');
  } finally {
    await s.kill();
  }
});
