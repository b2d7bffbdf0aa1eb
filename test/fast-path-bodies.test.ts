/**
 * Requests the front reads itself (src/front/fast-path.ts) on a real
 * gatehouse (test/helpers/fast-path-site.ts), with their bodies: pipelined
 * mixes of static and app requests, bodies in pieces, chunked uploads,
 * repeated headers, Expect: 100-continue, bodies refused, and static GETs
 * that come with a body; with requests only the fast path reads after them,
 * to show the connection stayed on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dir, get, serveFastPathSite, served, TEXT, withConnection } from './helpers/fast-path-site.js';
import type { RawResponse } from './helpers/raw-connection.js';
import { sleep } from './helpers/wait.js';

serveFastPathSite();

test('pipelined in one write: static, app, static, a POST with a body, static: answered in order, nothing lost', async () => {
  await withConnection(async (c) => {
    const post = 'POST /form HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello';
    c.write(get('/static/a.txt') + get('/one') + get('/static/a.txt') + post + get('/static/a.txt'));
    const got = [];
    for (let i = 0; i < 5; i++) got.push(served(await c.readResponse()));
    assert.deepEqual(got, [TEXT, 'app:/one', TEXT, 'app:/form', TEXT]);
  });
});

test('a POST whose body comes in pieces reaches the app whole; the request after it on the connection is read right', async () => {
  await withConnection(async (c) => {
    const body = 'a=1&b=' + 'x'.repeat(3000);
    c.write(`POST /form HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    await sleep(100);
    c.write(body.slice(10, 2000));
    await sleep(100);
    c.write(body.slice(2000) + get('/after'));
    const res = await c.readResponse();
    const seen = JSON.parse(res.body.toString()) as { body: string; CONTENT_LENGTH: string; CONTENT_TYPE: string };
    assert.equal(seen.body, body);
    assert.equal(seen.CONTENT_LENGTH, String(body.length));
    assert.equal(seen.CONTENT_TYPE, 'application/x-www-form-urlencoded');
    assert.equal(served(await c.readResponse()), 'app:/after');
  });
});

/** What the app saw: method, raw target, body, CONTENT_LENGTH (echo_environ's JSON). */
function seen(res: RawResponse): { method: string; uri: string; body: string; length: string | undefined } {
  assert.equal(res.status, 200, `${res.status}: ${res.body.toString()}`);
  const e = JSON.parse(res.body.toString()) as Record<string, string>;
  return { method: e.REQUEST_METHOD!, uri: e.RAW_URI!, body: e.body!, length: e.CONTENT_LENGTH };
}

// llhttp refuses a method outside its table and raw UTF-8 in a target: once node:http reads a
// connection such requests get 400, so these show the connection stayed on the front's own reader.
const brew = (before: string) => Buffer.from(before + 'BREW /pot/caf\xc3\xa9 HTTP/1.1\r\nHost: test\r\n\r\n', 'latin1');
const brewSeen = { method: 'BREW', uri: '/pot/caf\xc3\xa9', body: '', length: undefined };

test('a chunked upload in pieces (an extension, trailers) reaches the app whole; a BREW with a raw UTF-8 target after it on the connection too', async () => {
  await withConnection(async (c) => {
    c.write('PUT /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5;name="a b"\r\nhel');
    await sleep(50);
    c.write('lo\r\n1000\r\n' + 'x'.repeat(4096));
    await sleep(50);
    c.write(brew('\r\n0\r\nX-Checksum: 1\r\n\r\n'));
    assert.deepEqual(seen(await c.readResponse()), { method: 'PUT', uri: '/up', body: 'hello' + 'x'.repeat(4096), length: '4101' });
    assert.deepEqual(seen(await c.readResponse()), brewSeen);
  });
});

test('repeated headers reach the app joined as node:http joins them; a BREW with a raw UTF-8 target after them on the connection too', async () => {
  await withConnection(async (c) => {
    c.write(brew('GET /r HTTP/1.1\r\nHost: test\r\nAccept: a\r\naccept: b\r\nCookie: c=1\r\nCookie: d=2\r\nX-Trace: 1\r\nX-Trace: 2\r\n\r\n'));
    const first = await c.readResponse();
    assert.deepEqual(seen(first), { method: 'GET', uri: '/r', body: '', length: undefined });
    const e = JSON.parse(first.body.toString()) as Record<string, string>;
    assert.deepEqual([e.HTTP_ACCEPT, e.HTTP_COOKIE, e.HTTP_X_TRACE], ['a, b', 'c=1; d=2', '1, 2']);
    assert.deepEqual(seen(await c.readResponse()), brewSeen);
  });
});

test('Expect: 100-continue: 100 Continue before the body is sent, then the answer; the connection goes on', async () => {
  await withConnection(async (c) => {
    c.write('POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    assert.equal((await c.readResponse()).status, 100);
    c.write('hello');
    assert.deepEqual(seen(await c.readResponse()), { method: 'POST', uri: '/e', body: 'hello', length: '5' });
    // A chunked one, sent without waiting for the 100 (as curl does after a second).
    c.write(brew('POST /e2 HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n'));
    assert.equal((await c.readResponse()).status, 100);
    assert.deepEqual(seen(await c.readResponse()), { method: 'POST', uri: '/e2', body: 'hi', length: '2' });
    assert.deepEqual(seen(await c.readResponse()), brewSeen);
  });
});

test('Expect: 100-continue on a body over max_request_body: 413 and no 100 (the client never sends it)', async () => {
  await withConnection(async (c) => {
    c.write('POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 999999999999\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 413);
    await c.waitClosed();
  });
});

test('a chunked body llhttp refuses (a chunk longer than its size): 400 and the connection closes, after the answers already written', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    c.write('POST /bad HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n' + get('/never'));
    assert.equal((await c.readResponse()).status, 400);
    await c.waitClosed();
    assert.equal(c.pending.length, 0, 'nothing after the 400');
  });
});

test('a GET of a static file with a chunked body: answered, its body read and dropped, the request after it answered too', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt', 'Transfer-Encoding: chunked\r\n') + '5\r\nhello\r\n0\r\n\r\n' + get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    assert.equal(served(await c.readResponse()), TEXT);
  });
});

test('a GET of a static file with a faulty chunked body, on both readers: the file, then the connection closes (nobody reads that body), no 400 after it', async () => {
  // node:http reads it when the fast path hands it over (a repeated Connection header). A file not
  // asked for before: its answer is still on its way (the file being looked up) when the fault is read.
  for (const [i, extra] of ['', 'Connection: keep-alive\r\nConnection: keep-alive\r\n'].entries()) {
    writeFileSync(join(dir, `fresh-${i}.txt`), TEXT);
    await withConnection(async (c) => {
      c.write(get(`/static/fresh-${i}.txt`, `Transfer-Encoding: chunked\r\n${extra}`) + '5; =v\r\nhello\r\n0\r\n\r\n' + get('/never'));
      // Connection: close when the fault is read before the answer's head is written (else keep-alive, then the close).
      assert.equal(served(await c.readResponse()), TEXT, extra);
      await c.waitClosed();
      assert.equal(c.pending.length, 0, `nothing after the answer ${extra}`);
    });
  }
});
