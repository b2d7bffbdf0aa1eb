/**
 * What a worker imports for itself: a WSGI worker does not load asyncio
 * (nor ssl, subprocess... under it), the bulk of an idle worker's memory; an
 * app marked as a coroutine function with asyncio's own marker is still told
 * to be ASGI under --interface auto, since such an app loaded asyncio itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { request } from './helpers/request.js';

const PY = ['--python', SYSTEM_PYTHON];

test('a WSGI worker (--interface auto, sync and threads) loads neither asyncio nor ssl or subprocess', async () => {
  for (const threads of ['1', '4']) {
    await withServer([`${APPS}/worker_imports.py:app`, ...PY, '--threads', threads], async (gh) => {
      const r = await request(gh.url, '/');
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), [], `--threads ${threads}`);
    });
  }
});

test('--interface auto: a callable marked with asyncio\'s coroutine marker is served as ASGI', async () => {
  await withServer([`${APPS}/marked_asgi.py:app`, ...PY, '--lifespan', 'off'], async (gh) => {
    const r = await request(gh.url, '/');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { interface: 'asgi' });
  });
});
