/**
 * nginx (uwsgi_pass, stock uwsgi_params) in front of gatehouse's uwsgi
 * listener serving the Django admin (Debian's nginx and python3-django; the
 * test skips without them): the login page, a real login with its CSRF
 * token and session cookie, the admin home.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { launch } from './helpers/launch.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { APPS, hasCommand, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { freePorts, startNginx, tempDir } from './helpers/back-ends.js';

const DJANGO_DIR = join(APPS, 'djangoproject');
const skip = !hasCommand('nginx') ? 'needs Debian nginx' : !hasSystemModule('django') ? 'needs python3-django' : false;

function manage(db: string, ...args: string[]): void {
  const r = spawnSync(SYSTEM_PYTHON, ['manage.py', ...args], {
    cwd: DJANGO_DIR,
    env: { ...process.env, GH_TEST_DJANGO_DB: db, DJANGO_SUPERUSER_PASSWORD: 'gh-secret-pw-1' },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, `manage.py ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

function cookie(r: SimpleResponse, name: string): string | undefined {
  const set = r.headers['set-cookie'] ?? [];
  for (const c of set) if (c.startsWith(`${name}=`)) return c.slice(name.length + 1).split(';')[0];
  return undefined;
}

test('nginx uwsgi_pass → gatehouse --uwsgi-socket → the Django admin: login page, a real login, the admin home', { skip }, async () => {
  const tmp = tempDir('gateway-django');
  const db = join(tmp.dir, 'db.sqlite3');
  const sock = join(tmp.dir, 'django.sock');
  manage(db, 'migrate', '--noinput', '-v', '0');
  manage(db, 'createsuperuser', '--noinput', '--username', 'admin', '--email', 'admin@example.com');
  const gh = await launch(['project.wsgi:application', '--chdir', DJANGO_DIR, '--python', SYSTEM_PYTHON, '--workers', '1', '-s', `unix:${sock}`, '--chmod-socket', '666'], {
    env: { GH_TEST_DJANGO_DB: db },
    workers: 1,
  });
  const [port] = (await freePorts(1)) as [number];
  const nginx = await startNginx(tmp.dir, `server { listen 127.0.0.1:${port}; location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:${sock}; } }`, [port]);
  const url = `http://127.0.0.1:${port}`;
  try {
    const page = await request(url, '/admin/login/');
    assert.equal(page.status, 200, page.body.slice(0, 500));
    assert.ok(page.body.includes('id="id_username"'));
    const csrf = cookie(page, 'csrftoken');
    const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(page.body)?.[1];
    assert.ok(csrf && token);
    const body = `csrfmiddlewaretoken=${encodeURIComponent(token)}&username=admin&password=gh-secret-pw-1&next=%2Fadmin%2F`;
    const login = await request(url, '/admin/login/?next=/admin/', {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `csrftoken=${csrf}` },
    });
    assert.equal(login.status, 302, login.body.slice(0, 500));
    assert.equal(login.headers.location, '/admin/');
    const session = cookie(login, 'sessionid');
    assert.ok(session);
    const home = await request(url, '/admin/', { headers: { Cookie: `sessionid=${session}; csrftoken=${csrf}` } });
    assert.equal(home.status, 200);
    assert.match(home.body, /Site administration/);
  } finally {
    await nginx.stop();
    await gh.kill();
    tmp.remove();
  }
});
