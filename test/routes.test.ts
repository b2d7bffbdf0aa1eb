/**
 * Routes from a config file: virtual hosts (exact, *.wildcard, default),
 * longest path prefix on whole segments, apps mounted at a prefix
 * (SCRIPT_NAME / PATH_INFO), several apps each in its own pool, and the
 * static, redirect and return actions. One gatehouse serves most tests.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launchConfig, runCli, withServer, type Server } from './helpers/launch.js';
import { workerPidsFor } from './helpers/processes.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-routes-'));
let server: Server;

const CONFIG = `
# Two apps, each its own pool, told apart by APP_LABEL.
workers = 1

[[listeners]]
bind = "127.0.0.1:0"

[apps.main]
app = "${APPS}/basic.py:whoami"
env = { APP_LABEL = "main" }

[apps.api]
app = "${APPS}/basic.py:whoami"
env = { APP_LABEL = "api" }

[[routes]]
path = "/"
app = "main"

[[routes]]
path = "/api"
app = "api"
max_request_body = "1k"

[[routes]]
path = "/api/v2/"
return = { status = 410, body = "v2 is gone" }

[[routes]]
path = "/static"
static = { root = "site" }
max_request_body = "1k"

[[routes]]
path = "/old"
redirect = { status = 308, location = "https://$host/new$path" }

[[routes]]
host = "example.com"
return = { status = 200, body = "exact example.com" }

[[routes]]
host = ["*.example.com"]
return = { status = 200, body = "wildcard example.com" }

[[routes]]
host = "*.deep.example.com"
return = { status = 200, body = "longer wildcard" }

[[routes]]
host = ["www.example.org", "example.org"]
path = "/"
redirect = { location = "https://example.org$request_uri" }

[[routes]]
host = "api.example.net"
path = "/v1"
app = "api"
`;

before(async () => {
  mkdirSync(join(dir, 'site'));
  writeFileSync(join(dir, 'site', 'hello.txt'), 'static hello\n');
  server = await launchConfig(dir, CONFIG, 2);
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function whoami(path: string, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const r = await request(server.url, path, { headers });
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as Record<string, unknown>;
}

test('two apps from one config file run in two pools: each route reaches its own processes', async () => {
  const main = await whoami('/anything');
  const api = await whoami('/api/users');
  assert.equal(main.label, 'main');
  assert.equal(api.label, 'api');
  assert.notEqual(main.pid, api.pid);
  assert.equal(workerPidsFor('basic.py:whoami').length, 2, 'one worker per app');
});

test('an app mounted at a prefix: SCRIPT_NAME is the prefix, PATH_INFO the rest, the query untouched', async () => {
  assert.deepEqual(
    { ...(await whoami('/api/users/7?fields=name')), pid: 0, host: '' },
    { label: 'api', pid: 0, uid: process.getuid?.(), script_name: '/api', path_info: '/users/7', query: 'fields=name', host: '', body_length: 0 },
  );
  const bare = await whoami('/api');
  assert.equal(bare.script_name, '/api');
  assert.equal(bare.path_info, '');
  const root = await whoami('/x/y');
  assert.equal(root.script_name, '');
  assert.equal(root.path_info, '/x/y');
});

test('prefixes match whole segments, the longest wins, and percent-encoding does not dodge them', async () => {
  assert.equal((await whoami('/apix')).label, 'main', '/apix is not under /api');
  assert.equal((await whoami('/api/v2x')).label, 'api');
  const gone = await request(server.url, '/api/v2/users');
  assert.equal(gone.status, 410);
  assert.equal(gone.body, 'v2 is gone');
  assert.equal((await request(server.url, '/api/v2')).status, 410, 'a trailing slash in the route is not required in the request');
  const encoded = await whoami('/%61pi/users');
  assert.equal(encoded.label, 'api');
  assert.equal(encoded.path_info, '/users');
});

test('a ".." segment is refused with 400 before routing', async () => {
  for (const path of ['/static/../api/users', '/api/%2e%2e/x', '/..']) {
    const c = new RawConnection(server.port);
    await c.connected;
    c.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    const res = await c.readResponse();
    assert.equal(res.status, 400, path);
    c.socket.destroy();
  }
});

test('host routing: exact name first, then the longest wildcard, then the default routes', async () => {
  const body = async (host: string, path = '/') => {
    const r = await request(server.url, path, { headers: { Host: host } });
    return r.status === 200 && r.headers['content-type'] === 'application/json' ? `app:${(JSON.parse(r.body) as { label: string }).label}` : r.body;
  };
  assert.equal(await body('example.com'), 'exact example.com');
  assert.equal(await body('EXAMPLE.com:8080'), 'exact example.com', 'case and port do not matter');
  assert.equal(await body('example.com.'), 'exact example.com', 'a trailing dot does not matter');
  assert.equal(await body('www.example.com'), 'wildcard example.com');
  assert.equal(await body('a.b.example.com'), 'wildcard example.com', 'a wildcard covers deeper names');
  assert.equal(await body('x.deep.example.com'), 'longer wildcard');
  assert.equal(await body('other.test'), 'app:main', 'unknown hosts go to the default routes');
  assert.equal(await body('notexample.com'), 'app:main', '*.example.com does not match notexample.com');
  // A host with its own routes does not fall back to the default routes.
  const r = await request(server.url, '/elsewhere', { headers: { Host: 'api.example.net' } });
  assert.equal(r.status, 404);
  assert.equal(await body('api.example.net', '/v1/items'), 'app:api');
});

test('an absolute-form target routes by its own host, and the app sees that host (RFC 9112 §3.2.2)', async () => {
  const send = async (line: string) => {
    const c = new RawConnection(server.port);
    await c.connected;
    c.write(`${line}\r\nHost: other.test\r\nConnection: close\r\n\r\n`);
    const res = await c.readResponse();
    c.socket.destroy();
    return res;
  };
  const exact = await send('GET http://example.com/ HTTP/1.1');
  assert.equal(exact.body.toString(), 'exact example.com', 'the target\'s host, not the Host header, picks the routes');
  const api = await send('GET http://api.example.net:8080/v1/items?x=1 HTTP/1.1');
  assert.equal(api.status, 200, api.body.toString());
  const seen = JSON.parse(api.body.toString()) as Record<string, unknown>;
  assert.deepEqual([seen.label, seen.host, seen.path_info, seen.query], ['api', 'api.example.net:8080', '/items', 'x=1']);
});

test('a request without a Host (HTTP/1.0) goes to the default routes', async () => {
  const c = new RawConnection(server.port);
  await c.connected;
  c.write('GET /hi HTTP/1.0\r\n\r\n');
  const res = await c.readResponse();
  assert.equal(res.status, 200);
  assert.equal((JSON.parse(res.body.toString()) as { label: string }).label, 'main');
  c.socket.destroy();
});

test('redirect: the status and the Location template ($host, $path, $request_uri)', async () => {
  const r = await request(server.url, '/old/page?x=1', { method: 'POST', headers: { Host: 'site.test' }, body: 'data' });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, 'https://site.test/new/page?x=1');
  const org = await request(server.url, '/a/b?c=d', { headers: { Host: 'www.example.org' } });
  assert.equal(org.status, 301, 'the default redirect status is 301');
  assert.equal(org.headers.location, 'https://example.org/a/b?c=d');
});

test('return: HEAD gets the headers without the body', async () => {
  const r = await request(server.url, '/api/v2/', { method: 'HEAD' });
  assert.equal(r.status, 410);
  assert.equal(r.headers['content-length'], String('v2 is gone'.length));
  assert.equal(r.body, '');
});

test('a static route from the config file, its root relative to the file', async () => {
  const r = await request(server.url, '/static/hello.txt');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'static hello\n');
});

test('max_request_body per route: 413 on the route that limits it, the others take more', async () => {
  const big = 'x'.repeat(4096);
  const limited = await request(server.url, '/api/upload', { method: 'POST', body: big });
  assert.equal(limited.status, 413);
  const other = await whoami('/upload', {});
  assert.equal(other.label, 'main');
  const r = await request(server.url, '/upload', { method: 'POST', body: big });
  assert.equal(r.status, 200);
  assert.equal((JSON.parse(r.body) as { body_length: number }).body_length, 4096);
});

test('max_request_body holds on every kind of route: a static route refuses a larger body with 413 (not 405), a redirect takes it', async () => {
  const big = 'x'.repeat(4096);
  const refused = await request(server.url, '/static/hello.txt', { method: 'POST', body: big });
  assert.equal(refused.status, 413);
  assert.equal(refused.headers.connection, 'close');
  const small = await request(server.url, '/static/hello.txt', { method: 'POST', body: 'x' });
  assert.equal(small.status, 405);
  const redirected = await request(server.url, '/old/x', { method: 'POST', body: big });
  assert.equal(redirected.status, 308);
});

test('an app that only has host routes: an unmatched request gets 404', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'gh-routes-404-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const s = await launchConfig(d, `app = "${APPS}/basic.py:whoami"\nbind = ["127.0.0.1:0"]\nworkers = 1\n[[routes]]\nhost = "only.test"\napp = "main"\n`, 1);
  try {
    assert.equal((await request(s.url, '/', { headers: { Host: 'only.test' } })).status, 200);
    const r = await request(s.url, '/', { headers: { Host: 'other.test' } });
    assert.equal(r.status, 404);
  } finally {
    await s.kill();
  }
});

test('Flask mounted under a prefix builds its URLs with SCRIPT_NAME', { skip: !hasSystemModule('flask') && 'needs python3-flask' }, async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'gh-routes-flask-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  writeFileSync(
    join(d, 'prefixed.py'),
    [
      'from flask import Flask, url_for, request',
      'app = Flask(__name__)',
      '@app.get("/items/<int:n>")',
      'def item(n):',
      '    return {"self": url_for("item", n=n), "script_root": request.script_root, "path": request.path}',
    ].join('\n') + '\n',
  );
  const config = [
    `python = "${SYSTEM_PYTHON}"`,
    'workers = 1',
    'bind = ["127.0.0.1:0"]',
    '[apps.shop]',
    'app = "prefixed:app"',
    'chdir = "."',
    '[[routes]]',
    'path = "/shop"',
    'app = "shop"',
  ];
  const s = await launchConfig(d, config.join('\n') + '\n', 1);
  try {
    const r = await request(s.url, '/shop/items/3');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { self: '/shop/items/3', script_root: '/shop', path: '/items/3' });
    assert.equal((await request(s.url, '/items/3')).status, 404, 'nothing is routed outside the prefix');
  } finally {
    await s.kill();
  }
});

test('SCRIPT_NAME in the environment or --env mounts the app of a site without routes there, as gunicorn does', async () => {
  const app = `${APPS}/wsgi_cases.py:dispatch`;
  const environ = async (url: string, path: string) => {
    const r = await request(url, path);
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    const e = JSON.parse(r.body) as Record<string, string>;
    return [e.SCRIPT_NAME, e.PATH_INFO];
  };
  await withServer([app, '--python', SYSTEM_PYTHON], async (s) => {
    assert.deepEqual(await environ(s.url, '/myapp/environ'), ['/myapp', '/environ']);
    assert.equal((await request(s.url, '/environ')).status, 404, 'nothing is served outside SCRIPT_NAME');
    assert.equal((await request(s.url, '/myappx/environ')).status, 404);
  }, { env: { SCRIPT_NAME: '/myapp' } });
  await withServer([app, '--python', SYSTEM_PYTHON, '--env', 'SCRIPT_NAME=/shop/'], async (s) => {
    assert.deepEqual(await environ(s.url, '/shop/environ'), ['/shop', '/environ']);
  });
  const bad = await runCli([app, '--python', SYSTEM_PYTHON, '--env', 'SCRIPT_NAME=shop']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--env: SCRIPT_NAME must be a path starting with \/, got "shop"/);
});

