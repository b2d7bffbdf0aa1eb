/**
 * Real frameworks, unchanged, on Debian's Python (python3-flask 2.2,
 * python3-django 3.2): a Flask JSON API and the Django admin's login page
 * with CSRF, sessions and a database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { request, type SimpleResponse } from './helpers/request.js';

const FLASK_DIR = `${APPS}/flaskapp`;
const DJANGO_DIR = `${APPS}/djangoproject`;
const noFlask = hasSystemModule('flask') ? false : `${SYSTEM_PYTHON} has no flask (apt install python3-flask)`;
const noDjango = hasSystemModule('django') ? false : `${SYSTEM_PYTHON} has no django (apt install python3-django)`;

function jsonOf(r: SimpleResponse): unknown {
  assert.match(String(r.headers['content-type']), /^application\/json/);
  return JSON.parse(r.body);
}

// ---------------------------------------------------------------- Flask

test('Flask: JSON routes answer correct JSON (UTF-8, query strings)', { skip: noFlask }, async () => {
  await withServer(['flask_demo:app', '--chdir', FLASK_DIR, '--python', SYSTEM_PYTHON, '--workers', '2'], async (gh) => {
    const item = await request(gh.url, '/api/items/2');
    assert.equal(item.status, 200);
    assert.deepEqual(jsonOf(item), { id: 2, name: 'café', tags: [] });
    const search = await request(gh.url, '/api/search?q=tea');
    assert.equal(search.status, 200);
    assert.deepEqual(jsonOf(search), { q: 'tea', hits: [{ id: 1, name: 'teapot', tags: ['kitchen', '418'] }] });
  });
});

test('Flask: POST forms (urlencoded with repeated fields, and multipart) reach request.form', { skip: noFlask }, async () => {
  await withServer(['flask_demo:create_app()', '--chdir', FLASK_DIR, '--python', SYSTEM_PYTHON], async (gh) => {
    const urlencoded = await request(gh.url, '/form', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=J%C3%BCrgen+Smith&colour=red&colour=green',
    });
    assert.equal(urlencoded.status, 200);
    assert.deepEqual(jsonOf(urlencoded), { name: 'Jürgen Smith', colours: ['red', 'green'], content_type: 'application/x-www-form-urlencoded' });

    const boundary = '----ghboundary7MA4YWxk';
    const multipart = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="colour"\r\n\r\nblue\r\n` +
        `--${boundary}--\r\n`,
    );
    const mp = await request(gh.url, '/form', {
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      body: multipart,
    });
    assert.equal(mp.status, 200);
    assert.deepEqual(jsonOf(mp), { name: 'Ada', colours: ['blue'], content_type: `multipart/form-data; boundary=${boundary}` });

    const wrongMethod = await request(gh.url, '/form');
    assert.equal(wrongMethod.status, 405);
  });
});

test("Flask: unknown URLs and missing items get the app's 404", { skip: noFlask }, async () => {
  await withServer(['flask_demo:app', '--chdir', FLASK_DIR, '--python', SYSTEM_PYTHON], async (gh) => {
    const missing = await request(gh.url, '/no/such/page');
    assert.equal(missing.status, 404);
    assert.deepEqual(jsonOf(missing), { error: 'not found', path: '/no/such/page' });
    const item = await request(gh.url, '/api/items/99');
    assert.equal(item.status, 404);
    assert.deepEqual(jsonOf(item), { error: 'not found', path: '/api/items/99' });
  });
});

// ---------------------------------------------------------------- Django

/** Runs manage.py with the test database. */
function manage(db: string, ...args: string[]): void {
  const r = spawnSync(SYSTEM_PYTHON, ['manage.py', ...args], {
    cwd: DJANGO_DIR,
    env: { ...process.env, GH_TEST_DJANGO_DB: db, DJANGO_SUPERUSER_PASSWORD: 'gh-secret-pw-1' },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, `manage.py ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

/** `name=value` pairs from Set-Cookie headers. */
function cookies(r: SimpleResponse): Map<string, string> {
  const out = new Map<string, string>();
  const set = r.headers['set-cookie'];
  for (const c of Array.isArray(set) ? set : set ? [set] : []) {
    const m = /^\s*([^=;\s]+)=([^;]*)/.exec(c);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

function csrfToken(html: string): string {
  const m = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(html);
  assert.ok(m, 'the form carries a CSRF token');
  return m[1]!;
}

test('Django admin: login page renders, POST without CSRF token is 403, a real login works', { skip: noDjango }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-django-'));
  const db = join(dir, 'db.sqlite3');
  try {
    manage(db, 'migrate', '--noinput', '-v', '0');
    manage(db, 'createsuperuser', '--noinput', '--username', 'admin', '--email', 'admin@example.com');
    await withServer(
      ['project.wsgi:application', '--chdir', DJANGO_DIR, '--python', SYSTEM_PYTHON, '--workers', '2'],
      async (gh) => {
        const page = await request(gh.url, '/admin/login/');
        assert.equal(page.status, 200);
        assert.match(String(page.headers['content-type']), /^text\/html/);
        assert.ok(page.body.includes('csrfmiddlewaretoken'), 'login form has the CSRF field');
        assert.ok(page.body.includes('id="id_username"'), 'login form has the username field');
        assert.ok(page.body.includes('id="id_password"'));
        const csrfCookie = cookies(page).get('csrftoken');
        assert.ok(csrfCookie, `csrftoken cookie set: ${JSON.stringify(page.headers['set-cookie'])}`);

        const forged = await request(gh.url, '/admin/login/', {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: 'username=admin&password=gh-secret-pw-1',
        });
        assert.equal(forged.status, 403);
        assert.match(forged.body, /CSRF verification failed/);

        const token = csrfToken(page.body);
        const form = (password: string) =>
          `csrfmiddlewaretoken=${encodeURIComponent(token)}&username=admin&password=${encodeURIComponent(password)}&next=%2Fadmin%2F`;
        const headers = { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `csrftoken=${csrfCookie}` };

        const wrong = await request(gh.url, '/admin/login/?next=/admin/', { method: 'POST', headers, body: form('wrong') });
        assert.equal(wrong.status, 200, 'wrong password: the form again');
        assert.match(wrong.body, /Please enter the correct username and password/);

        const good = await request(gh.url, '/admin/login/?next=/admin/', { method: 'POST', headers, body: form('gh-secret-pw-1') });
        assert.equal(good.status, 302, `a good login redirects: ${good.status} ${good.body.slice(0, 300)}`);
        assert.equal(good.headers.location, '/admin/');
        const session = cookies(good).get('sessionid');
        assert.ok(session, 'a session cookie is set');

        // The session works on either worker: it lives in the database.
        for (let i = 0; i < 2; i++) {
          const home = await request(gh.url, '/admin/', { headers: { Cookie: `sessionid=${session}; csrftoken=${csrfCookie}` } });
          assert.equal(home.status, 200);
          assert.match(home.body, /Site administration/);
        }
        const anonymous = await request(gh.url, '/admin/');
        assert.equal(anonymous.status, 302);
        assert.equal(anonymous.headers.location, '/admin/login/?next=/admin/');
      },
      { env: { GH_TEST_DJANGO_DB: db } },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Django: a plain view behind the full middleware stack, HEAD and a 404 with DEBUG off', { skip: noDjango }, async () => {
  await withServer(['project.wsgi:application', '--chdir', DJANGO_DIR, '--python', SYSTEM_PYTHON], async (gh) => {
    const hello = await request(gh.url, '/hello/');
    assert.equal(hello.status, 200);
    assert.deepEqual(jsonOf(hello), { framework: 'django', path: '/hello/', method: 'GET' });
    const slashless = await request(gh.url, '/hello');
    assert.equal(slashless.status, 301, 'APPEND_SLASH redirect');
    assert.equal(slashless.headers.location, '/hello/');
    const head = await request(gh.url, '/hello/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    const missing = await request(gh.url, '/no-such-page/');
    assert.equal(missing.status, 404);
    assert.doesNotMatch(missing.body, /Traceback|Using the URLconf/, 'no debug page with DEBUG = False');
  });
});
