import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from './helpers/gatehouse.js';
import { launch } from './helpers/launch.js';
import { childPids, isAlive } from './helpers/processes.js';
import { waitUntil } from './helpers/wait.js';

test('serves a WSGI app over HTTP and leaves no worker behind', async () => {
  const gh = await launch([`${APPS}/basic.py:echo_environ`, '--workers', '2']);
  const workers = childPids(gh.proc.pid!);
  assert.equal(workers.length, 2);
  try {
    const res = await fetch(`${gh.url}/a%20b/caf%C3%A9?x=1&y=%20`, { method: 'POST', body: 'payload', headers: { 'X-Thing': 'one' } });
    assert.equal(res.status, 200);
    const env = (await res.json()) as Record<string, unknown>;
    assert.equal(env.REQUEST_METHOD, 'POST');
    assert.equal(env.PATH_INFO, '/a b/caf\xc3\xa9', 'percent-decoded, bytes as latin-1');
    assert.equal(env.QUERY_STRING, 'x=1&y=%20');
    assert.equal(env.HTTP_X_THING, 'one');
    assert.equal(env.CONTENT_LENGTH, '7');
    assert.equal(env.body, 'payload');
  } finally {
    assert.equal(await gh.stop(), 0);
  }
  assert.ok(await waitUntil(() => workers.every((p) => !isAlive(p)), 2000), 'no worker outlives the server');
});
