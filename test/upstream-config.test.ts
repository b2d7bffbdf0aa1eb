/** Configuration of the fastcgi/scgi/uwsgi actions and the protocol listeners: every problem with its key path or flag; the uWSGI flag spellings. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { launch, runCli } from './helpers/launch.js';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { tempDir } from './helpers/back-ends.js';

const tmp = tempDir('upstream-config');
after(() => tmp.remove());

function errorLines(stderr: string): string {
  return stderr.split('\n').filter((l) => l.startsWith('gatehouse: ') || l.startsWith('  ')).join('\n');
}

test('bad upstream actions and protocol listeners: each problem named by its key path, with the value', async () => {
  const file = join(tmp.dir, 'bad.toml');
  writeFileSync(
    file,
    [
      '[[listeners]]', 'bind = "127.0.0.1:0"', 'protocol = "gopher"',
      '[[listeners]]', 'bind = "unix:/tmp/x.sock"', 'protocol = "uwsgi"', 'chmod = "999"',
      '[[routes]]', 'path = "/a"', 'fastcgi = { pass = "localhost", split_path_info = "^(.+\\\\.php)$", root = "/srv" }',
      '[[routes]]', 'path = "/b"', 'uwsgi = { pass = "unix:/run/u.sock", modifier1 = 300, read_timeout = 0 }',
      '[[routes]]', 'path = "/c"', 'scgi = { pass = "127.0.0.1:4000", colour = "red" }',
      '[[routes]]', 'path = "/d"', 'fastcgi = { pass = "127.0.0.1:9000", split_path_info = "^(.+)(/.*)$" }',
      '[[routes]]', 'path = "/e"', 'scgi = { pass = "127.0.0.1:4000" }', 'uwsgi = { pass = "127.0.0.1:4001" }',
    ].join('\n'),
  );
  const r = await runCli(['--config', file, '--check-config']);
  assert.equal(r.code, 1);
  const text = errorLines(r.stderr);
  for (const expected of [
    /^ {2}listeners\[0\]\.protocol: must be "http", "uwsgi", "fastcgi" or "scgi" \(got "gopher"\)$/m,
    /^ {2}listeners\[1\]\.chmod: must be an octal mode such as 660 or 666 \(got "999"\)$/m,
    /^ {2}routes\[0\]\.fastcgi\.pass: must be HOST:PORT, \[IPv6\]:PORT or unix:PATH, with a port from 1 to 65535 \(got "localhost"\)$/m,
    /^ {2}routes\[0\]\.fastcgi\.split_path_info: needs two groups, the script and the path info/m,
    /^ {2}routes\[1\]\.uwsgi\.modifier1: must be 0 to 255 \(got 300\)$/m,
    /^ {2}routes\[1\]\.uwsgi\.read_timeout: must be more than 0 seconds \(got 0\)$/m,
    /^ {2}routes\[2\]\.scgi\.colour: unknown setting$/m,
    /^ {2}routes\[3\]\.fastcgi\.split_path_info: needs root/m,
    /^ {2}routes\[4\]: has scgi and uwsgi: give one action per route$/m,
  ]) {
    assert.match(text, expected);
  }
});

test('bad protocol-listener flags are named by the flag', async () => {
  const r = await runCli([join(APPS, 'upstream_wsgi.py'), '--uwsgi-socket', '127.0.0.1:99999', '--chmod-socket', 'rw', '--check-config']);
  assert.equal(r.code, 1);
  const text = errorLines(r.stderr);
  assert.match(text, /--uwsgi-socket: port must be a number from 0 to 65535 \(got "127\.0\.0\.1:99999"\)/);
  assert.match(text, /--chmod-socket: must be an octal mode such as 660 or 666 \(got "rw"\)/);
});

test('-s / --socket is --uwsgi-socket; alone it adds no HTTP listener; a silent connection is closed after --header-timeout', async () => {
  const sock = join(tmp.dir, 'app.sock');
  const server = await launch([join(APPS, 'upstream_wsgi.py'), '--python', SYSTEM_PYTHON, '--workers', '1', '--socket', `unix:${sock}`, '-s', '127.0.0.1:0', '--header-timeout', '1'], { workers: 1 });
  try {
    await server.waitFor(/Listening at: uwsgi:\/\/unix:\S+app\.sock/);
    await server.waitFor(/Listening at: uwsgi:\/\/127\.0\.0\.1:\d+/);
    assert.doesNotMatch(server.output(), /Listening at: http/);
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const silent = connect(sock);
      silent.on('error', reject);
      silent.on('close', () => resolve());
    });
    const waited = Date.now() - started;
    assert.ok(waited > 700 && waited < 3000, `closed after ${waited} ms`);
  } finally {
    await server.kill();
  }
});

test('an upstream host name that does not resolve is a config error naming its key path; one that does is fine', async () => {
  const file = join(tmp.dir, 'dns.toml');
  writeFileSync(file, ['static = ["/s=."]', '[[routes]]', 'path = "/a"', 'scgi = { pass = "localhost:4000" }', '[[routes]]', 'path = "/b"', 'fastcgi = { pass = "no-such-host.invalid:9000" }'].join('\n'));
  const bad = await runCli(['--config', file, '--check-config']);
  assert.equal(bad.code, 1);
  assert.match(errorLines(bad.stderr), /GH_ERR_CONFIG: routes\[1\]\.fastcgi\.pass: cannot resolve no-such-host\.invalid: \S+ \(got "no-such-host\.invalid:9000"\)/);
  const good = join(tmp.dir, 'dns-good.toml');
  writeFileSync(good, ['[[routes]]', 'path = "/a"', 'scgi = { pass = "localhost:4000" }'].join('\n'));
  assert.equal((await runCli(['--config', good, '--check-config'])).code, 0);
});
