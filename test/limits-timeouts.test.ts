/**
 * Timeouts against bad or slow clients, over raw sockets
 * (test/helpers/limits-app.ts): header_timeout (slowloris, also trickled
 * byte by byte and on a keep-alive connection's second request),
 * body_timeout (an upload that stalls never reaches a worker, its temp file
 * is removed) and keepalive_timeout (0 too), while a slow answer is still
 * delivered.
 *
 * The waits are bounded so that each test fails, instead of hanging, when a
 * limit is not applied: the defaults (60 s, 5 s) are far above the bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { withServer } from './helpers/launch.js';
import { answer, APP, bodyDir, get, gh, serveLimitsApp } from './helpers/limits-app.js';
import { RawConnection } from './helpers/raw-connection.js';
import { sleep, waitUntil } from './helpers/wait.js';

serveLimitsApp();

/** Writes `text` one byte every `ms` until the connection closes or `max` bytes are sent. */
async function trickle(c: RawConnection, text: string, ms: number): Promise<number> {
  let sent = 0;
  for (const ch of text) {
    if (c.closed) break;
    c.write(ch);
    sent++;
    await sleep(ms);
  }
  return sent;
}

/** A head that would take 40 s to send at one byte a second. */
const LONG_HEAD = `GET /never-finished HTTP/1.1\r\nHost: test\r\nX-Padding: ${'p'.repeat(40)}\r\n\r\n`;

/** How many requests the (single) worker has served so far, this one included. */
async function served(): Promise<number> {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(get('/served'));
    return answer(await c.readResponse()).served;
  } finally {
    c.close();
  }
}

test('header_timeout: an unfinished request head gets 408 and the connection is closed', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write('GET /half HTTP/1.1\r\nHost: test\r\n');
    await c.waitClosed(8000);
    const res = await c.readResponse();
    assert.equal(res.status, 408);
  } finally {
    c.close();
  }
});

test('header_timeout: a connection that sends nothing is closed', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    await c.waitClosed(8000);
  } finally {
    c.close();
  }
});

test('header_timeout: trickling the head one byte a second does not restart the clock (slowloris)', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    const sending = trickle(c, LONG_HEAD, 1000);
    await c.waitClosed(8000);
    const sent = await sending;
    assert.ok(sent < LONG_HEAD.length, 'the server closed before the head was complete');
    assert.equal((await c.readResponse()).status, 408);
  } finally {
    c.close();
  }
});

test("header_timeout: a keep-alive connection's second request head is timed too", async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(get('/first'));
    assert.equal(answer(await c.readResponse()).path, '/first');
    const sending = trickle(c, LONG_HEAD, 300);
    await c.waitClosed(8000);
    assert.ok((await sending) < LONG_HEAD.length);
    assert.equal((await c.readResponse()).status, 408);
  } finally {
    c.close();
  }
});

test('a response slower than header_timeout and keepalive_timeout is still delivered, and the connection kept', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(get('/slow?ms=2500'));
    const res = await c.readResponse(10000);
    assert.equal(answer(res).path, '/slow');
    c.write(get('/after'));
    assert.equal(answer(await c.readResponse()).path, '/after');
  } finally {
    c.close();
  }
});

test('an idle keep-alive connection whose last answer was slower than keepalive_timeout is still closed', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(get('/slow?ms=2500'));
    assert.equal(answer(await c.readResponse(10000)).path, '/slow');
    await c.waitClosed(4000);
    assert.equal(c.pending.length, 0, 'closed without a word');
  } finally {
    c.close();
  }
});

test('body_timeout: a body that stops arriving gets 408 and close; no worker sees the request', async () => {
  const before = await served();
  const c = await RawConnection.open(gh.port);
  try {
    c.write('POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789');
    await c.waitClosed(8000);
    const res = await c.readResponse();
    assert.equal(res.status, 408);
    assert.equal(res.header('connection')?.toLowerCase(), 'close');
  } finally {
    c.close();
  }
  assert.equal(await served(), before + 1, 'the worker saw only the /served requests');
});

test('body_timeout: the clock restarts with each piece of data (a slow, steady upload passes)', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write('POST /steady HTTP/1.1\r\nHost: test\r\nContent-Length: 8\r\n\r\n');
    // 8 pieces, 400 ms apart: 3.2 s in all, over body_timeout, but never 1 s without data.
    await trickle(c, 'abcdefgh', 400);
    const a = answer(await c.readResponse());
    assert.equal(a.path, '/steady');
    assert.equal(a.body_length, 8);
  } finally {
    c.close();
  }
});

test('body_timeout: a large body spilled to a temp file then stalled: 408, and the temp file is removed', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    // Past the 256 KiB kept in memory, so the front writes a temp file.
    c.write(`POST /big HTTP/1.1\r\nHost: test\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
    c.write(Buffer.alloc(400 * 1024, 0x61));
    const spilled = await waitUntil(() => readdirSync(bodyDir).some((f) => f.startsWith('gatehouse-body-')), 5000);
    assert.ok(spilled, `a temp body file appeared in ${bodyDir}`);
    await c.waitClosed(8000);
    assert.equal((await c.readResponse()).status, 408);
  } finally {
    c.close();
  }
  const removed = await waitUntil(() => readdirSync(bodyDir).every((f) => !f.startsWith('gatehouse-body-')), 5000);
  assert.ok(removed, `temp body files left behind: ${readdirSync(bodyDir).join(', ')}`);
});

test('keepalive_timeout: the idle connection is closed, and the client was told the timeout', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(get('/ka'));
    const res = await c.readResponse();
    assert.equal(answer(res).path, '/ka');
    assert.equal(res.header('keep-alive'), 'timeout=1');
    // Node closes a second after the announced time, so a request racing the close is not lost.
    await c.waitClosed(4000);
    assert.equal(c.pending.length, 0, 'closed without sending anything (no 408 for an idle keep-alive connection)');
  } finally {
    c.close();
  }
});

test('keepalive_timeout 0: no keep-alive (Connection: close), not connections kept forever', async () => {
  await withServer([APP, '--keepalive-timeout', '0'], async (server) => {
    const c = await RawConnection.open(server.port);
    try {
      c.write(get('/once'));
      const res = await c.readResponse();
      assert.equal(answer(res).path, '/once');
      assert.equal(res.header('connection')?.toLowerCase(), 'close');
      await c.waitClosed(3000);
    } finally {
      c.close();
    }
  });
});
