/**
 * PEP 3333 conformance, end to end (test/helpers/wsgi-cases.ts): how a
 * response goes out: the write() callable, start_response(exc_info),
 * wsgi.file_wrapper (a real file, one seek()ed, a file-like, a client that
 * reads late), framing (Content-Length, chunked, HTTP/1.0's close), HEAD,
 * 204 and 304 without a body, and a status given as its code alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { deletedFiles } from './helpers/processes.js';
import { bodyTmp, expectServing, get, gh, header, parseAll, parseResponse, pattern, rawRequest, scratch, serveWsgiCases, T } from './helpers/wsgi-cases.js';

serveWsgiCases();

// ---- write() ---------------------------------------------------------------------------

test('write(): the callable returned by start_response sends the body on its own', T, async () => {
  const res = await fetch(`${gh.url}/write?mode=alone`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'one,two,');
});

test('write(): output mixed with a returned iterable (generator or list) arrives in order', T, async () => {
  for (const mode of ['gen', 'list']) {
    const res = await fetch(`${gh.url}/write?mode=${mode}`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'one,two,three,four', mode);
  }
});

// ---- exc_info ----------------------------------------------------------------------------

test('start_response(exc_info) before any output: the replacement status and headers win', T, async () => {
  const res = await fetch(`${gh.url}/excinfo-before`);
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('x-second'), '2');
  assert.equal(res.headers.get('x-first'), null, 'the first headers are discarded');
  assert.equal(await res.text(), 'replacement body');
});

test('start_response(exc_info) after the headers went out re-raises: the client sees a truncated response', T, async () => {
  const reply = await rawRequest(gh.port, get('/excinfo-after'));
  assert.equal(reply.closedByServer, true, 'the connection is cut');
  const r = parseResponse(reply.data, { closed: true });
  assert.ok(r, `the headers went out: ${reply.data.toString('latin1')}`);
  assert.equal(r.status, 200);
  assert.equal(r.complete, false, `no clean end: ${reply.data.toString('latin1')}`);
  assert.ok(!reply.data.includes('MUST-NOT-BE-SENT'), 'start_response re-raised, so the app stopped');
  await expectServing();
});
// ---- wsgi.file_wrapper -------------------------------------------------------------------

let bigFile: { path: string; data: Buffer } | null = null;
function threeMiB(): { path: string; data: Buffer } {
  if (bigFile === null) {
    const data = randomBytes(3 * 1024 * 1024);
    const path = join(scratch, 'random-3mib.bin');
    writeFileSync(path, data);
    bigFile = { path, data };
  }
  return bigFile;
}

test('wsgi.file_wrapper: a real 3 MiB file is served byte-exact, with Content-Length', T, async () => {
  const { path, data } = threeMiB();
  const res = await fetch(`${gh.url}/file?path=${encodeURIComponent(path)}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(data.length));
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.length, data.length);
  assert.ok(got.equals(data), 'same bytes');
});

test('wsgi.file_wrapper to a client that reads nothing for a while: the file waits for it (no temp file), then arrives byte-exact', T, async () => {
  const { path, data } = threeMiB();
  const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet(`${gh.url}/file?path=${encodeURIComponent(path)}`, resolve).on('error', reject));
  res.pause();
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(deletedFiles(gh.pid), [], 'no temp file while the client does not read');
  const chunks: Buffer[] = [];
  res.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise((resolve) => res.on('end', resolve));
  res.resume();
  await ended;
  assert.ok(Buffer.concat(chunks).equals(data), 'same bytes');
});

test('wsgi.file_wrapper: a file seek()ed to an offset is served from that offset', T, async () => {
  const { path, data } = threeMiB();
  const offset = 1_000_001;
  const res = await fetch(`${gh.url}/file?path=${encodeURIComponent(path)}&offset=${offset}`);
  assert.equal(res.status, 200);
  const want = data.subarray(offset);
  const cl = res.headers.get('content-length');
  if (cl !== null) assert.equal(cl, String(want.length));
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.length, want.length);
  assert.ok(got.equals(want), 'same bytes, from the offset');
});

test('wsgi.file_wrapper: a file-like that is not a real file (io.BytesIO) is streamed', T, async () => {
  const size = 300_001;
  const res = await fetch(`${gh.url}/bytesio?size=${size}`);
  assert.equal(res.status, 200);
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.length, size);
  assert.ok(got.equals(pattern(size)), 'same bytes');
});

// ---- framing -------------------------------------------------------------------------------

test('framing: a one-element list gets a Content-Length and is not chunked', T, async () => {
  const reply = await rawRequest(gh.port, get('/one', 'Connection: close\r\n'));
  const r = parseResponse(reply.data, { closed: reply.closedByServer });
  assert.ok(r && r.complete, reply.data.toString('latin1'));
  assert.equal(r.status, 200);
  assert.equal(header(r, 'content-length'), '12');
  assert.equal(header(r, 'transfer-encoding'), undefined);
  assert.equal(r.body.toString(), 'hello, world');
  assert.equal(r.rest.length, 0);
});

test('framing: a generator response on HTTP/1.1 is sent chunked and ends with 0\\r\\n\\r\\n', T, async () => {
  const reply = await rawRequest(gh.port, get('/gen'), { until: (d) => d.includes('\r\n0\r\n\r\n') });
  const text = reply.data.toString('latin1');
  const r = parseResponse(reply.data);
  assert.ok(r, text);
  assert.equal(r.status, 200);
  assert.match(header(r, 'transfer-encoding') ?? '', /^chunked$/i);
  assert.equal(header(r, 'content-length'), undefined);
  assert.ok(text.endsWith('\r\n0\r\n\r\n'), `terminating chunk: ${JSON.stringify(text)}`);
  assert.equal(r.complete, true);
  assert.equal(r.body.toString(), 'abcdef', 'an empty yield does not end the body early');
  assert.equal(reply.closedByServer, false, 'the connection stays open (keep-alive)');
});

test('framing: a generator response to an HTTP/1.0 request is delimited by closing the connection', T, async () => {
  const reply = await rawRequest(gh.port, 'GET /gen HTTP/1.0\r\n\r\n');
  assert.equal(reply.closedByServer, true, 'the server closes the connection');
  const r = parseResponse(reply.data, { closed: true });
  assert.ok(r, reply.data.toString('latin1'));
  assert.equal(r.status, 200);
  assert.equal(header(r, 'transfer-encoding'), undefined, 'no chunked encoding for HTTP/1.0');
  assert.equal(header(r, 'content-length'), undefined);
  assert.equal(r.body.toString(), 'abcdef');
});

test('HEAD: no body is sent, and the next pipelined request is answered correctly', T, async () => {
  const reply = await rawRequest(
    gh.port,
    'HEAD /one HTTP/1.1\r\nHost: test\r\n\r\nHEAD /gen HTTP/1.1\r\nHost: test\r\n\r\n' + get('/one', 'Connection: close\r\n'),
  );
  assert.equal(reply.closedByServer, true);
  const [a, b, c] = parseAll(reply.data, ['HEAD', 'HEAD', 'GET']);
  assert.equal(a!.status, 200);
  assert.equal(b!.status, 200);
  assert.equal(c!.status, 200);
  assert.equal(c!.body.toString(), 'hello, world');
  assert.ok(!reply.data.includes('abcdef') && reply.data.indexOf('hello, world') === reply.data.lastIndexOf('hello, world'));
});

test('204 and 304: no body is sent even when the app returns one; the next pipelined request is answered', T, async () => {
  const reqs = [
    '/status?code=204&mode=list',
    '/status?code=204&mode=gen',
    '/status?code=204&mode=empty',
    '/status?code=304&mode=list',
    '/status?code=304&mode=gen',
  ];
  const reply = await rawRequest(gh.port, reqs.map((p) => get(p)).join('') + get('/one', 'Connection: close\r\n'));
  assert.equal(reply.closedByServer, true);
  const rs = parseAll(reply.data, [...reqs.map(() => 'GET'), 'GET']);
  assert.deepEqual(
    rs.map((r) => r.status),
    [204, 204, 204, 304, 304, 200],
  );
  assert.equal(rs[5]!.body.toString(), 'hello, world');
  assert.ok(!reply.data.includes('SHOULD-NOT'), 'no app body on the wire');
});

test('204: the response carries no Content-Length announcing a body (RFC 9110 §8.6), not even the app\'s own', T, async () => {
  for (const target of ['mode=list', 'mode=gen', 'mode=empty', 'mode=list&length=18', 'mode=empty&length=0']) {
    const reply = await rawRequest(gh.port, get(`/status?code=204&${target}`, 'Connection: close\r\n'));
    const r = parseResponse(reply.data);
    assert.ok(r, reply.data.toString('latin1'));
    assert.equal(r.status, 204);
    const cl = header(r, 'content-length');
    assert.equal(cl, undefined, `204 (${target}) sent Content-Length: ${cl}`);
  }
});

test('hop-by-hop headers from the app are dropped with one log line each, as gunicorn drops them; Connection: close closes after the answer', T, async () => {
  for (let i = 0; i < 2; i++) {
    const reply = await rawRequest(gh.port, get('/hop') + get('/one', 'Connection: close\r\n'), { ms: 3000 });
    const rs = parseAll(reply.data, ['GET', 'GET']);
    assert.equal(rs[0]!.status, 200);
    assert.equal(rs[0]!.body.toString(), 'hop body');
    assert.equal(header(rs[0]!, 'transfer-encoding'), undefined);
    assert.equal(header(rs[0]!, 'upgrade'), undefined);
    assert.notEqual(header(rs[0]!, 'keep-alive'), 'timeout=99');
    assert.equal(rs[1]!.body.toString(), 'hello, world', 'the connection goes on to the next answer');
  }
  for (const name of ['Connection', 'Keep-Alive', 'Transfer-Encoding', 'Upgrade']) {
    await gh.waitFor(new RegExp(`the app sent a hop-by-hop ${name} header \\(PEP 3333 leaves those to the server\\); dropped`), 3000);
  }
  const closing = await rawRequest(gh.port, get('/hop?close=1') + get('/one'), { ms: 3000 });
  assert.equal(closing.closedByServer, true);
  const r = parseResponse(closing.data);
  assert.equal(r?.body.toString(), 'hop body');
  assert.equal(header(r!, 'connection'), 'close');
  assert.ok(!closing.data.includes('hello, world'), 'nothing is answered after Connection: close');
});

test('an app that passes the same header list to every start_response: each answer gets its own Content-Length', T, async () => {
  for (const body of ['hello', '', 'hello, world', '', 'abc']) {
    const reply = await rawRequest(gh.port, get(`/shared?body=${encodeURIComponent(body)}`, 'Connection: close\r\n'), { ms: 3000 });
    const r = parseResponse(reply.data);
    assert.ok(r?.complete, `a complete answer for ${JSON.stringify(body)}: ${reply.data.toString('latin1')}`);
    assert.equal(header(r, 'content-length'), String(body.length));
    assert.equal(r.body.toString(), body);
  }
});

// A status of the code alone breaks PEP 3333, yet gunicorn and uWSGI take it, and apps written
// against them give it: it is answered with the code's standard reason phrase.
const CODE_ONLY: Array<{ target: string; line: string; body: string }> = [
  { target: '/status?code=200&reason=none&mode=list', line: 'HTTP/1.1 200 OK', body: 'SHOULD-NOT-BE-SENT' },
  { target: '/status?code=200&reason=none&mode=body', line: 'HTTP/1.1 200 OK', body: 'streamed body' },
  { target: '/status?code=200&reason=none&mode=empty', line: 'HTTP/1.1 200 OK', body: '' },
  { target: '/status?code=404&reason=none&mode=list', line: 'HTTP/1.1 404 Not Found', body: 'SHOULD-NOT-BE-SENT' },
  { target: '/status?code=204&reason=none&mode=empty', line: 'HTTP/1.1 204 No Content', body: '' },
  { target: '/status?code=299&reason=none&mode=list', line: 'HTTP/1.1 299 ', body: 'SHOULD-NOT-BE-SENT' },
];

test('a status given as its code alone ("200"): answered with its standard reason phrase', T, async () => {
  for (const { target, line, body } of CODE_ONLY) {
    const reply = await rawRequest(gh.port, get(target, 'Connection: close\r\n'));
    const r = parseResponse(reply.data, { closed: reply.closedByServer });
    assert.ok(r, `${target}: ${reply.data.toString('latin1')}`);
    assert.equal(r.statusLine, line, target);
    assert.equal(r.body.toString(), body, target);
  }
  assert.doesNotMatch(gh.output(), /status must look like/);
});

test('temp files that cannot be made (TMPDIR gone, a full disk): a large request body gets 500 and a log line; a slow client still gets its whole large response, from memory', { timeout: 30_000 }, async () => {
  rmSync(bodyTmp, { recursive: true, force: true });
  try {
    const post = await fetch(`${gh.url}/input?op=read`, { method: 'POST', body: Buffer.alloc(400 * 1024, 97) });
    assert.equal(post.status, 500);
    await post.text();
    await gh.waitFor(/POST \/input\?op=read: cannot keep its request body in a temp file in .* \(TMPDIR\): ENOENT/, 3000);

    const size = 6 * 1024 * 1024;
    const socket = connect(gh.port, '127.0.0.1');
    socket.pause(); // the client reads nothing at first: past 1 MiB the front would use a temp file
    socket.write(get('/big?size=' + size, 'Connection: close\r\n'));
    await gh.waitFor(/cannot hold a response for a slow client in a temp file in .* \(TMPDIR\): ENOENT/, 5000);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.resume();
    await new Promise((resolve) => socket.once('close', resolve));
    const r = parseResponse(Buffer.concat(chunks), { closed: true });
    assert.ok(r?.complete, 'the whole response');
    assert.ok(r.body.equals(pattern(size)), 'every byte in order');
  } finally {
    mkdirSync(bodyTmp, { recursive: true });
  }
  await expectServing();
});

