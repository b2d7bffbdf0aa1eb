/**
 * The front's own reading of plain HTTP/1.1 request heads
 * (src/front/request-head.ts, src/front/stand-in-line.ts), without a
 * server: which heads it takes (a table: anything it does not read exactly
 * as llhttp would goes to node:http), the stand-in line llhttp reads in
 * place of one it would refuse, and header names and values as node:http
 * makes them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseHead } from '../src/front/request-head.js';
import { standInLine } from '../src/front/stand-in-line.js';
import { RawConnection } from './helpers/raw-connection.js';

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
