/**
 * PEP 3333 as the standard library checks it: apps wrapped in
 * wsgiref.validate.validator (test/apps/validated_apps.py), served by a real
 * gatehouse. The validator raises AssertionError on anything the server does
 * wrong: an environ or wsgi.input out of spec, iterating before
 * start_response, not closing the iterable, closing wsgi.input (the server
 * must close only what it created: the validator swaps in its own wrapper).
 * One worker, so "the same pid" means no worker died in between.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { APPS } from './helpers/gatehouse.js';
import { withServer, type Server } from './helpers/launch.js';
import { childPids } from './helpers/processes.js';
import { request } from './helpers/request.js';

const T = { timeout: 30_000 };

/** What a worker must never log while serving validated apps. */
const TROUBLE = /died|AssertionError|WSGIWarning|garbage collected|Error handling request|Traceback/;

function onlyWorker(gh: Server): number {
  const pids = childPids(gh.pid);
  assert.equal(pids.length, 1, `one worker: ${pids.join(', ')}`);
  return pids[0]!;
}

function pidAtEnd(body: string): number {
  const m = /(\d+)$/.exec(body);
  assert.ok(m, `no pid at the end of ${JSON.stringify(body)}`);
  return Number(m[1]);
}

/** Open files of a process that are request bodies the front spilled to disk. */
function bodyFilesOpen(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.includes('gatehouse-body-')) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

test('validator: requests in a row on one worker all get 200, and the worker survives every one', T, async () => {
  await withServer([`${APPS}/validated_apps.py:app`, '--workers', '1'], async (gh) => {
    const worker = onlyWorker(gh);
    for (let i = 0; i < 6; i++) {
      const res = await request(gh.url, '/hello');
      assert.equal(res.status, 200, `request ${i}: ${res.status} ${res.body}`);
      assert.equal(res.body, `hello from ${worker}`, `request ${i} was served by the first worker`);
    }
    assert.deepEqual(childPids(gh.pid), [worker], 'the same worker is alive');
    assert.doesNotMatch(gh.output(), TROUBLE);
  });
});

test('validator: GET, POST bodies (in the frame and spilled to a file), streaming, write(), wsgi.errors, file_wrapper, 204, HEAD', T, async () => {
  await withServer([`${APPS}/validated_apps.py:app`, '--workers', '1'], async (gh) => {
    const worker = onlyWorker(gh);
    const served = (body: string) => assert.equal(pidAtEnd(body), worker, `served by the first worker: ${body}`);

    const hello = await request(gh.url, '/hello');
    assert.equal(hello.status, 200);
    served(hello.body);

    for (const size of [0, 1000, 300 * 1024, 3 * 1024 * 1024]) {
      const body = Buffer.alloc(size, 'validated body ');
      const res = await request(gh.url, '/echo', { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(res.status, 200, `POST ${size} bytes: ${res.body}`);
      const [got, digest] = res.body.split(' ');
      assert.equal(Number(got), size, `POST ${size} bytes: all of them read`);
      assert.equal(digest, createHash('sha256').update(body).digest('hex'));
      served(res.body);
    }
    const lines = await request(gh.url, '/lines', { method: 'POST', body: 'one\ntwo\nthree' });
    assert.equal(lines.status, 200);
    assert.match(lines.body, /^3 lines, last b'three' \d+$/);
    served(lines.body);

    const stream = await request(gh.url, '/stream');
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['transfer-encoding'], 'chunked');
    assert.equal(stream.body, `piece 0\npiece 1\npiece 2\npiece 3\npiece 4\nfrom ${worker}`);

    const write = await request(gh.url, '/write');
    assert.equal(write.status, 200);
    assert.equal(write.body, `written,returned from ${worker}`);

    const errors = await request(gh.url, '/errors');
    assert.equal(errors.status, 200);
    served(errors.body);
    await gh.waitFor(/validated app writes to wsgi\.errors/, 5000);

    const file = await request(gh.url, '/file');
    assert.equal(file.status, 200);
    assert.equal(file.body, readFileSync(`${APPS}/validated_apps.py`, 'utf8'));

    const empty = await request(gh.url, '/empty');
    assert.equal(empty.status, 204);
    assert.equal(empty.body, '');

    const head = await request(gh.url, '/hello', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String(`hello from ${worker}`.length));

    const last = await request(gh.url, '/hello');
    assert.equal(last.body, `hello from ${worker}`);
    assert.deepEqual(childPids(gh.pid), [worker], 'the same worker is alive');
    assert.deepEqual(bodyFilesOpen(worker), [], 'the worker closed the spilled bodies it opened');
    assert.doesNotMatch(gh.output(), TROUBLE);
  });
});
