/**
 * The front's own reading of plain HTTP/1.1 requests (src/front/fast-path.ts):
 * which request heads it takes (a table: anything it does not read exactly as
 * llhttp would goes to node:http), and, on a real gatehouse serving static
 * files next to an app, that requests answered from memory, requests given to
 * the app (bodies included) and a connection moving on to node:http lose,
 * reorder and repeat nothing: pipelined mixes, split heads and bodies, HEAD,
 * 304, Connection: close, half-close, a client that does not read, the
 * timeouts and the access log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseHead } from '../src/front/request-head.js';
import { standInLine } from '../src/front/stand-in-line.js';
import { APPS } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { RawConnection, type RawResponse } from './helpers/raw-connection.js';
import { sleep, waitUntil } from './helpers/wait.js';

const HEAD_OK = 'GET /static/a.txt HTTP/1.1\r\nHost: example.com\r\nAccept: */*';

const heads: Array<[string, string, boolean]> = [
  ['a plain GET', HEAD_OK, true],
  ['HEAD', 'HEAD / HTTP/1.1\r\nHost: x', true],
  ['a query and an encoded path', 'GET /a%20b?x=1&y=%2F HTTP/1.1\r\nHost: x', true],
  ['Connection: keep-alive / close, any case', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Close', true],
  ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9', true],
  ['POST with a Content-Length', 'POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 12', true],
  ['DELETE', 'DELETE /x HTTP/1.1\r\nHost: x', true],
  ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443', false],
  ['one of llhttp\'s other methods', 'PROPFIND / HTTP/1.1\r\nHost: x', false],
  ['a method llhttp does not know', 'BREW /pot HTTP/1.1\r\nHost: x', true],
  ['a method with nginx\'s other characters', 'X_CUSTOM-M /x HTTP/1.1\r\nHost: x', true],
  ['CONNECT with an origin-form target', 'CONNECT /x HTTP/1.1\r\nHost: x', false],
  ['PRI (llhttp\'s, not in node:http\'s METHODS)', 'PRI /x HTTP/1.1\r\nHost: x', false],
  ['a lower-case method', 'get / HTTP/1.1\r\nHost: x', false],
  ['a method with a digit (nginx refuses it)', 'M1 / HTTP/1.1\r\nHost: x', false],
  ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x', false],
  ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x', true],
  ['HTTP/1.0 without a Host (node:http requires one of HTTP/1.1 only)', 'GET / HTTP/1.0\r\nAccept: */*', true],
  ['HTTP/2.0 on the request line', 'GET / HTTP/2.0\r\nHost: x', false],
  ['an absolute-form target', 'GET http://x/ HTTP/1.1\r\nHost: x', false],
  ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: x', false],
  ['a non-ASCII byte in the target', 'GET /caf\xe9 HTTP/1.1\r\nHost: x', true],
  ['a DEL in the target', 'GET /a\x7f HTTP/1.1\r\nHost: x', false],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: x', false],
  ['no Host', 'GET / HTTP/1.1\r\nAccept: */*', false],
  ['two Hosts', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y', false],
  ['a repeated header', 'GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\naccept: b', true],
  ['repeated Cookie and Set-Cookie', 'GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\nSet-Cookie: c\r\nSet-Cookie: d', true],
  ['a repeated Connection', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: keep-alive', false],
  ['a repeated Expect', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\nExpect: 100-continue', false],
  ['a name the headers object has from its prototype', 'GET / HTTP/1.1\r\nHost: x\r\nConstructor: a', false],
  ['Content-Length: 0', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0', true],
  ['Content-Length with a sign', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5', false],
  ['Content-Length as a list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5', false],
  ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5', false],
  ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked', false],
  ['a huge Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123456', false],
  ['Transfer-Encoding: chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked', true],
  ['Transfer-Encoding: Chunked (a coding name in any case, as llhttp reads it)', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked', true],
  ['Transfer-Encoding: CHUNKED', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED', true],
  ['Transfer-Encoding: gzip, chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked', false],
  ['Transfer-Encoding with a tab', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t', false],
  ['Transfer-Encoding in HTTP/1.0 (a framing fault)', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked', false],
  ['Expect: 100-continue', 'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3', true],
  ['Expect: 100-continue in HTTP/1.0 (node:http ignores it)', 'POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3', false],
  ['another Expect (417)', 'GET / HTTP/1.1\r\nHost: x\r\nExpect: foo', false],
  ['Upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket', false],
  ['Connection with another option', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, TE', false],
  ['a folded line', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two', false],
  ['a space before the colon', 'GET / HTTP/1.1\r\nHost : x', false],
  ['no colon', 'GET / HTTP/1.1\r\nHost: x\r\nnonsense', false],
  ['a control character in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b', false],
  ['a bare LF inside the head', 'GET / HTTP/1.1\r\nHost: x\nX-A: b', false],
  ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0', false],
];

for (const [what, head, taken] of heads) {
  test(`parseHead: ${what} → ${taken ? 'fast path' : 'node:http'}`, () => {
    assert.equal(parseHead(head, 'http') !== null, taken);
  });
}

test('parseHead: a method llhttp does not know is read as sent, and the same string each time', () => {
  const a = parseHead('BREW /pot HTTP/1.1\r\nHost: x', 'http')!;
  const b = parseHead('BREW /kettle HTTP/1.1\r\nHost: x', 'http')!;
  assert.equal(a.method, 'BREW');
  assert.equal(b.method, 'BREW');
  assert.equal(parseHead('GETS / HTTP/1.1\r\nHost: x', 'http')!.method, 'GETS');
  assert.equal(parseHead('PUTS / HTTP/1.1\r\nHost: x', 'http')!.method, 'PUTS');
});

test('standInLine: the line llhttp reads in place of one it would refuse, and the line as sent', () => {
  const line = (text: string) => standInLine(Buffer.from(text, 'latin1'));
  const s = line('\r\nBREW /caf\xc3\xa9?q=\xe2%41 HTTP/1.0\r\nHost: x\r\n\r\nbody')!;
  assert.equal(s.bytes.toString('latin1'), '\r\nGET /caf%C3%A9?q=%E2%41 HTTP/1.0\r\nHost: x\r\n\r\nbody');
  assert.deepEqual(s.sent, { method: 'BREW', url: '/caf\xc3\xa9?q=\xe2%41' });
  assert.equal(s.lineEnd, 29);
  // GET for BREW, three bytes as %XX.
  assert.equal(s.delta, -1 + 3 * 2);
  assert.equal(line('PROPFIND /\xe9 HTTP/1.1\r\n\r\n')!.bytes.toString('latin1'), 'PROPFIND /%E9 HTTP/1.1\r\n\r\n');
  // Read by llhttp as they are, or refused by it as nginx refuses them.
  for (const text of ['PROPFIND / HTTP/1.1\r\n\r\n', 'GET /a HTTP/1.1\r\n\r\n', 'brew / HTTP/1.1\r\n\r\n', 'BREW / HTTP/1.1', 'BREW /\x00 HTTP/1.1\r\n\r\n']) {
    assert.equal(line(text), null, JSON.stringify(text));
  }
});

test('parseHead: names lower case, raw names kept, values without the spaces and tabs around them (a non-breaking space stays)', () => {
  const h = parseHead('POST /x?q HTTP/1.1\r\nHost:  example.com\t\r\nX-Pad: \xa0v\xa0 \r\nContent-Length: 007\r\nConnection: Close', 'http')!;
  assert.equal(h.method, 'POST');
  assert.equal(h.url, '/x?q');
  assert.equal(h.headers.host, 'example.com');
  assert.equal(h.headers['x-pad'], '\xa0v\xa0');
  assert.deepEqual(h.rawHeaders, ['Host', 'example.com', 'X-Pad', '\xa0v\xa0', 'Content-Length', '007', 'Connection', 'Close']);
  assert.equal(h.bodyLength, 7);
  assert.equal(h.close, true);
});

test('parseHead: names read before (found in place, by length and first character) keep their spelling, also past a slot\'s few and past 64 characters', () => {
  const long = `X-${'l'.repeat(70)}`;
  const names = ['X-Aa', 'x-aa', 'X-AA', 'X-Ab', 'X-Ac', 'X-Ad', 'X-Ae', long, 'HOST'];
  const head = `GET / HTTP/1.1\r\nHost: x\r\n${names.map((n, i) => `${n}: ${i}`).join('\r\n')}`;
  for (let round = 0; round < 3; round++) {
    const h = parseHead(head, 'http');
    assert.ok(h === null, 'HOST repeats Host');
    const ok = parseHead(head.replace('\r\nHOST: 8', ''), 'http')!;
    assert.deepEqual(ok.rawHeaders.filter((_, i) => i % 2 === 0), ['Host', ...names.slice(0, -1)]);
    assert.deepEqual(ok.headers, { host: 'x', 'x-aa': '0, 1, 2', 'x-ab': '3', 'x-ac': '4', 'x-ad': '5', 'x-ae': '6', [long.toLowerCase()]: '7' });
  }
});

test('parseHead: repeated headers become the same headers object node:http makes of them', async () => {
  const lines = [
    'Host: x', 'Accept: a', 'accept: b', 'Cookie: c=1', 'Cookie: d=2', 'Set-Cookie: s', 'set-cookie: t', 'User-Agent: u1', 'User-Agent: u2',
    'Authorization: first', 'Authorization: second', 'X-Forwarded-For: 1.2.3.4', 'X-Forwarded-For: 5.6.7.8', 'Cache-Control: no-cache',
    'Cache-Control: max-age=0', 'Content-Type: text/plain', 'Content-Type: text/html', 'HasOwnProperty: a', 'hasownproperty: b',
  ];
  // Connection: close last, for the reference server to end the connection.
  for (const head of [`GET / HTTP/1.1\r\n${lines.join('\r\n')}\r\nConnection: close`, 'GET / HTTP/1.1\r\nHost: x\r\nSet-Cookie: one\r\nConnection: close']) {
    const ours = parseHead(head, 'http');
    assert.ok(ours !== null, head);
    assert.deepEqual({ ...ours.headers }, { ...(await nodeHeaders(head)) }, head);
  }
});

/** The headers node:http's IncomingMessage makes of a head, read by a real server. */
async function nodeHeaders(head: string): Promise<IncomingHttpHeaders> {
  const server = createServer();
  const seen = new Promise<IncomingHttpHeaders>((resolve) => server.once('request', (req: IncomingMessage, res: ServerResponse) => {
    resolve(req.headers);
    res.end();
  }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const c = await RawConnection.open((server.address() as AddressInfo).port);
  c.write(Buffer.from(`${head}\r\n\r\n`, 'latin1'));
  try {
    return await seen;
  } finally {
    c.close();
    server.close();
  }
}

const TEXT = 'a small static file\n';
const CSS = Array.from({ length: 200 }, (_, i) => `.rule-${i} { margin: ${i}px; }\n`).join('');
const BIG = Buffer.alloc(60 * 1024, 'x');
let dir = '';
let gh: Server;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-fast-path-'));
  writeFileSync(join(dir, 'a.txt'), TEXT);
  writeFileSync(join(dir, 'big.bin'), BIG);
  writeFileSync(join(dir, 'site.css'), CSS);
  gh = await launch([
    `${APPS}/basic.py:echo_environ`,
    '--static',
    `/static=${dir}`,
    '--header-timeout',
    '2',
    '--keepalive-timeout',
    '1',
    '--access-log',
    '-',
    '--forwarded-allow-ips',
    '127.0.0.1',
  ]);
});

after(async () => {
  await gh?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;

/** What the app saw as the path; the body of a static answer. */
function served(res: RawResponse): string {
  assert.equal(res.status, 200, `${res.status}: ${res.body.toString()}`);
  const type = res.header('content-type') ?? '';
  return type.startsWith('application/json') ? `app:${(JSON.parse(res.body.toString()) as { PATH_INFO: string }).PATH_INFO}` : res.body.toString();
}

async function withConnection(fn: (c: RawConnection) => Promise<void>): Promise<void> {
  const c = await RawConnection.open(gh.port);
  try {
    await fn(c);
  } finally {
    c.close();
  }
}

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

test('static requests before and after an app request on one keep-alive connection', async () => {
  await withConnection(async (c) => {
    for (const path of ['/static/a.txt', '/static/a.txt', '/two', '/static/a.txt']) {
      c.write(get(path));
      const res = await c.readResponse();
      assert.equal(served(res), path === '/two' ? 'app:/two' : TEXT);
      assert.equal(res.header('connection'), 'keep-alive');
      assert.equal(res.header('keep-alive'), 'timeout=1');
      assert.match(res.header('date') ?? '', /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    }
  });
});

test('a head split over two writes, and two requests split mid-head: both answered', async () => {
  await withConnection(async (c) => {
    const two = get('/static/a.txt') + get('/static/a.txt');
    c.write(two.slice(0, 10));
    await sleep(100);
    c.write(two.slice(10, 60));
    await sleep(100);
    c.write(two.slice(60));
    assert.equal(served(await c.readResponse()), TEXT);
    assert.equal(served(await c.readResponse()), TEXT);
  });
});

test('HEAD: the GET headers without a body, and the connection goes on', async () => {
  await withConnection(async (c) => {
    c.write(`HEAD /static/a.txt HTTP/1.1\r\nHost: test\r\n\r\n`);
    const head = await c.readResponse(5000, { headRequest: true });
    assert.equal(head.status, 200);
    assert.equal(head.header('content-length'), String(TEXT.length));
    c.write(get('/static/a.txt'));
    const res = await c.readResponse();
    assert.equal(served(res), TEXT);
    assert.equal(res.header('etag'), head.header('etag'));
  });
});

test('If-None-Match with the ETag: 304 without a body', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt'));
    const etag = (await c.readResponse()).header('etag')!;
    c.write(get('/static/a.txt', `If-None-Match: ${etag}\r\n`));
    const res = await c.readResponse();
    assert.equal(res.status, 304);
    assert.equal(res.header('etag'), etag);
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
  });
});

test('the same request asked again with Range, or another Accept-Encoding, gets its own answer (206, gzip), not the one before', async () => {
  await withConnection(async (c) => {
    for (let i = 0; i < 3; i++) {
      c.write(get('/static/site.css'));
      const res = await c.readResponse();
      assert.equal(res.body.toString(), CSS);
      assert.equal(res.header('content-encoding'), undefined);
    }
    c.write(get('/static/site.css', 'Accept-Encoding: gzip\r\n'));
    const zipped = await c.readResponse();
    assert.equal(zipped.header('content-encoding'), 'gzip');
    assert.equal(gunzipSync(zipped.body).toString(), CSS);
    assert.equal(zipped.header('vary'), 'Accept-Encoding');
    // Last: node:http answers ranges, and keeps the connection from then on.
    c.write(get('/static/site.css', 'Range: bytes=0-5\r\n'));
    const part = await c.readResponse();
    assert.equal(part.status, 206);
    assert.equal(part.body.toString(), CSS.slice(0, 6));
  });
});

test('Connection: close: answered with Connection: close, then the server closes; later pipelined bytes are ignored', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt', 'Connection: close\r\n') + get('/static/a.txt'));
    const res = await c.readResponse();
    assert.equal(served(res), TEXT);
    assert.equal(res.header('connection'), 'close');
    await c.waitClosed(3000);
    assert.equal(c.pending.length, 0);
  });
});

test('a client that half-closes after its request still gets the answer', async () => {
  await withConnection(async (c) => {
    c.socket.end(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    await c.waitClosed(3000);
  });
});

test('a client that pipelines 100 requests for a 60 KiB file and reads late gets all 100, whole and in order', async () => {
  await withConnection(async (c) => {
    const paths = Array.from({ length: 100 }, (_, i) => (i % 10 === 5 ? `/app-${i}` : '/static/big.bin'));
    c.write(paths.map((p) => get(p)).join(''));
    await sleep(300);
    for (const p of paths) {
      const res = await c.readResponse(10_000);
      if (p.startsWith('/app')) assert.equal(served(res), `app:${p}`);
      else assert.ok(res.body.equals(BIG), `${p}: ${res.body.length} bytes`);
    }
  });
});

test('keepalive_timeout: an idle connection after a static answer is closed without a word', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    await c.waitClosed(5000);
    assert.equal(c.pending.length, 0);
  });
});

test('header_timeout: a connection that sends nothing gets 408 and is closed, and the access log says so', async () => {
  await withConnection(async (c) => {
    await c.waitClosed(6000);
    assert.equal((await c.readResponse()).status, 408);
  });
  assert.ok(await waitUntil(() => /"-" 408 /.test(gh.output()), 3000), gh.output().slice(-500));
});

test('access log: a static answer has its line, with the client a trusted proxy forwarded', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt?from=fast-path-log', 'X-Forwarded-For: 203.0.113.9\r\nUser-Agent: fast-path-test\r\n'));
    assert.equal(served(await c.readResponse()), TEXT);
  });
  const line = new RegExp(`^203\\.0\\.113\\.9 - - \\[[^\\]]+\\] "GET /static/a\\.txt\\?from=fast-path-log HTTP/1\\.1" 200 ${TEXT.length} "-" "fast-path-test"$`, 'm');
  assert.ok(await waitUntil(() => line.test(gh.output()), 3000), gh.output().slice(-500));
});

test('SIGTERM: an idle keep-alive connection on the fast path is closed and the server exits', async () => {
  const server = await launch([`${APPS}/basic.py:hello`, '--static', `/static=${dir}`, '--graceful-timeout', '20']);
  try {
    const c = await RawConnection.open(server.port);
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    process.kill(server.pid, 'SIGTERM');
    // Well before the 20 s graceful timeout: the connection was idle.
    await c.waitClosed(5000);
    assert.equal((await server.exited(10_000)).code, 0);
  } finally {
    await server.kill();
  }
});

test('the heads an app sends reach the client byte for byte: its headers in order (latin-1 and empty values too), Date unless it gave one, Connection and Keep-Alive; HEAD, 204 and close', async () => {
  const heads = await launch([`${APPS}/basic.py:response_heads`, '--keepalive-timeout', '7']);
  try {
    const c = await RawConnection.open(heads.port);
    const paths = ['/json', '/dated', '/empty', '/latin', '/unsized'];
    c.write(paths.map((p) => get(p)).join('') + 'HEAD /json HTTP/1.1\r\nHost: test\r\n\r\n' + get('/json', 'Connection: close\r\n'));
    const got: string[] = [];
    for (let i = 0; i < paths.length + 2; i++) {
      const res = await c.readResponse(5000, { headRequest: i === paths.length });
      got.push(res.rawHead.replace(/\r\nDate: (?!Thu, 01 Jan 1970)[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT/, '\r\nDate: (now)') + res.body.toString('latin1'));
    }
    c.close();
    const alive = 'Connection: keep-alive\r\nKeep-Alive: timeout=7\r\n\r\n';
    assert.deepEqual(got, [
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: (now)\r\n${alive}{}`,
      `HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n${alive}ok`,
      `HTTP/1.1 204 No Content\r\nDate: (now)\r\n${alive}`,
      `HTTP/1.1 299 Fine Anyway\r\nX-Name: caf\xe9\r\nX-Empty: \r\nContent-Length: 1\r\nDate: (now)\r\n${alive}x`,
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nDate: (now)\r\n${alive}abc`,
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: (now)\r\n${alive}`,
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: (now)\r\nConnection: close\r\n\r\n{}',
    ]);
  } finally {
    await heads.kill();
  }
});
