/**
 * Real ASGI frameworks, unchanged, on Debian's Python: Starlette (routes,
 * lifespan state, request.stream(), StreamingResponse), FastAPI (path and
 * query parameters, a pydantic body, validation errors) and Django's ASGI
 * handler (project.asgi:application, told ASGI by --interface auto).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launchConfig, withServer } from './helpers/launch.js';
import { request, type SimpleResponse } from './helpers/request.js';

const APP = `${APPS}/asgi_frameworks.py`;
const PY = ['--python', SYSTEM_PYTHON];
const noStarlette = hasSystemModule('starlette') ? false : `${SYSTEM_PYTHON} has no starlette (apt install python3-starlette)`;
const noFastapi = hasSystemModule('fastapi') ? false : `${SYSTEM_PYTHON} has no fastapi (apt install python3-fastapi)`;
const noDjango = hasSystemModule('django') ? false : `${SYSTEM_PYTHON} has no django (apt install python3-django)`;

function json(r: SimpleResponse, status = 200): unknown {
  assert.equal(r.status, status, r.body);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  return JSON.parse(r.body);
}

test('Starlette: routes, lifespan state, a streamed upload and a streamed response', { skip: noStarlette }, async () => {
  await withServer([`${APP}:starlette_app`, ...PY], async (gh) => {
    assert.match(gh.output(), /Using worker: asgi \(up to \d+ requests at once per process\)/);
    assert.deepEqual(json(await request(gh.url, '/hello?x=1')), {
      framework: 'starlette',
      path: '/hello',
      root_path: '',
      greeting: 'set at startup',
      query: { x: '1' },
    });
    const upload = json(await request(gh.url, '/upload', { method: 'POST', body: Buffer.alloc(3 * 1024 * 1024, 7) })) as { size: number; chunks: number };
    assert.equal(upload.size, 3 * 1024 * 1024);
    assert.ok(upload.chunks > 1, `request.stream() got the body in pieces: ${upload.chunks}`);
    const times: number[] = [];
    const t0 = Date.now();
    const body = await new Promise<string>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: gh.port, path: '/ticks', agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          times.push(Date.now() - t0);
          text += c.toString();
        });
        res.on('end', () => resolve(text));
      }).on('error', reject).end();
    });
    assert.equal(body, 'data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n');
    assert.ok(times.length >= 3 && times[times.length - 1]! - times[0]! >= 450, `ticks arrive over time: ${times.join(',')}`);
  });
});

test('FastAPI: path and query parameters, a JSON body, a validation error', { skip: noFastapi }, async () => {
  await withServer([`${APP}:fastapi_app`, ...PY, '--workers', '2'], async (gh) => {
    assert.deepEqual(json(await request(gh.url, '/items/42?q=tea')), { framework: 'fastapi', item_id: 42, q: 'tea' });
    const created = await request(gh.url, '/items', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'teapot', price: 10 }),
    });
    assert.deepEqual(json(created), { name: 'teapot', price_with_tax: 12 });
    const invalid = await request(gh.url, '/items/not-a-number');
    assert.equal(invalid.status, 422);
  });
});

test('Django: project.asgi:application is detected as ASGI and serves its views', { skip: noDjango }, async () => {
  await withServer(['project.asgi:application', '--chdir', `${APPS}/djangoproject`, ...PY], async (gh) => {
    assert.match(gh.output(), /Using worker: asgi \(up to \d+ requests at once per process\)/);
    assert.deepEqual(json(await request(gh.url, '/hello/')), { framework: 'django', path: '/hello/', method: 'GET' });
    const missing = await request(gh.url, '/nothing-here/');
    assert.equal(missing.status, 404);
  });
});

test('mounted under a route path: Starlette, FastAPI and Django route below their mounts; asgi_path sets what scope["path"] holds', { skip: noStarlette || noFastapi || noDjango }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-mounts-'));
  const app = (name: string, spec: string, extra = '') => `[apps.${name}]\napp = "${spec}"\n${extra}\n[[routes]]\npath = "/${name}"\napp = "${name}"\n`;
  const config = [
    `workers = 1\npython = "${SYSTEM_PYTHON}"\ninterface = "asgi"\n\n[[listeners]]\nbind = "127.0.0.1:0"\n`,
    app('st', `${APP}:starlette_app`),
    app('fa', `${APP}:fastapi_app`),
    app('dj', 'project.asgi:application', `chdir = "${APPS}/djangoproject"`),
    app('full', `${APPS}/asgi_apps.py:app`),
    app('below', `${APPS}/asgi_apps.py:app`, 'asgi_path = "below-mount"'),
  ].join('\n');
  const server = await launchConfig(dir, config, 5);
  try {
    // Starlette before 0.33 (Debian 12 has 0.26) matches routes on scope["path"] alone: auto gives it the path below the mount.
    const st = json(await request(server.url, '/st/hello?x=1')) as Record<string, unknown>;
    assert.equal(st.path, '/st/hello');
    assert.equal(st.root_path, '/st');
    assert.deepEqual(json(await request(server.url, '/fa/items/42?q=tea')), { framework: 'fastapi', item_id: 42, q: 'tea' });
    assert.deepEqual(json(await request(server.url, '/dj/hello/')), { framework: 'django', path: '/dj/hello/', method: 'GET' });
    const full = JSON.parse((await request(server.url, '/full/scope')).body) as Record<string, unknown>;
    assert.deepEqual([full.path, full.root_path], ['/full/scope', '/full']);
    const below = JSON.parse((await request(server.url, '/below/scope')).body) as Record<string, unknown>;
    assert.deepEqual([below.path, below.root_path], ['/scope', '/below']);
  } finally {
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
