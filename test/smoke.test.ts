import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startGatehouse, workerPids } from './helpers/gatehouse.js';

test('serves a WSGI app over HTTP and leaves no worker behind', async () => {
  const before = workerPids();
  const gh = await startGatehouse([`${APPS}/basic.py:echo_environ`, '--workers', '2']);
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
  assert.deepEqual(workerPids().filter((p) => !before.includes(p)), []);
});
