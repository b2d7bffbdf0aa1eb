/** The FastCGI, SCGI and uwsgi codecs and the CGI response head reader: table-driven fixtures, each also fed split at every byte boundary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeEndRequest,
  decodePairs,
  encodeBeginRequest,
  encodeEndRequest,
  encodePairs,
  encodeRecord,
  encodeRequest,
  encodeStream,
  FCGI,
  RecordReader,
  type FcgiRecord,
} from '../src/upstream/fastcgi-records.js';
import { decodeScgiHead, encodeScgiHead } from '../src/upstream/netstring.js';
import { decodeUwsgiPacket, encodeUwsgiPacket } from '../src/upstream/uwsgi-packet.js';
import { CgiHeadReader, type CgiHead } from '../src/upstream/cgi-response.js';
import { parseUpstream } from '../src/upstream/upstream-address.js';
import { scriptTarget } from '../src/upstream/cgi-params.js';

/** `data` cut in two at every position (and whole). */
function splits(data: Buffer): Buffer[][] {
  const out: Buffer[][] = [[data]];
  for (let i = 1; i < data.length; i++) out.push([data.subarray(0, i), data.subarray(i)]);
  return out;
}

test('FastCGI records: header bytes, padding to 8, and 65535-byte pieces', () => {
  assert.deepEqual([...encodeRecord(FCGI.STDIN, 1, Buffer.from('abc'))], [1, 5, 0, 1, 0, 3, 5, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeRecord(FCGI.PARAMS, 1)], [1, 4, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual([...encodeBeginRequest(1, true)], [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeBeginRequest(1, false)].slice(8, 11), [0, 1, 0]);
  const big = encodeStream(FCGI.STDIN, 1, Buffer.alloc(65535 * 2 + 10, 7));
  assert.deepEqual(big.map((r) => r.readUInt16BE(4)), [65535, 65535, 10]);
  assert.deepEqual(decodeEndRequest(encodeEndRequest(1, 3, 2).subarray(8)), { appStatus: 3, protocolStatus: 2 });
});

test('FastCGI name-value pairs: 1-byte lengths below 128, 4-byte ones (high bit set) from 128', () => {
  const cases: [string, string, number[]][] = [
    ['A', 'b', [1, 1, 0x41, 0x62]],
    ['N', 'x'.repeat(127), [1, 127]],
    ['N', 'x'.repeat(128), [1, 0x80, 0, 0, 128]],
    ['N'.repeat(300), '', [0x80, 0, 1, 44, 0]],
  ];
  for (const [name, value, prefix] of cases) {
    const enc = encodePairs([[name, value]]);
    assert.deepEqual([...enc.subarray(0, prefix.length)], prefix, `${name.length}/${value.length}`);
    assert.deepEqual(decodePairs(enc), [[name, value]]);
  }
  const many: [string, string][] = [['REQUEST_METHOD', 'GET'], ['HTTP_X', 'é'.repeat(200)], ['EMPTY', '']];
  assert.deepEqual(decodePairs(encodePairs(many)), many);
  assert.equal(decodePairs(Buffer.from([5, 1, 0x41])), null, 'lengths past the end');
  assert.equal(decodePairs(Buffer.from([0x80, 0])), null, 'a cut 4-byte length');
});

test('FastCGI request in one buffer: the same bytes as its records one by one, whatever the params, body and end', () => {
  const short: [string, string][] = [['REQUEST_METHOD', 'GET'], ['HTTP_X', 'é'.repeat(200)], ['EMPTY', ''], ['X'.repeat(40), 'long enough for a native write']];
  // Params past one record's 65535 bytes are cut into several PARAMS records.
  const long: [string, string][] = [...short, ['BIG', 'v'.repeat(70_000)]];
  for (const pairs of [[], short, long]) {
    const params = encodePairs(pairs);
    for (const stdin of [null, Buffer.alloc(0), Buffer.from('abc'), Buffer.alloc(65535 + 9, 1)]) {
      for (const [keep, end] of [[true, true], [false, false]] as const) {
        const expected = Buffer.concat([
          encodeBeginRequest(3, keep),
          ...encodeStream(FCGI.PARAMS, 3, params),
          encodeRecord(FCGI.PARAMS, 3),
          ...(stdin === null ? [] : encodeStream(FCGI.STDIN, 3, stdin)),
          ...(end ? [encodeRecord(FCGI.STDIN, 3)] : []),
        ]);
        assert.ok(encodeRequest(3, keep, pairs, stdin, end).equals(expected), `${pairs.length} pairs, stdin ${stdin?.length}, keep ${keep}`);
      }
    }
  }
  const records = new RecordReader().push(encodeRequest(1, true, short, null, true)) as FcgiRecord[];
  assert.deepEqual(records.map((r) => r.type), [FCGI.BEGIN_REQUEST, FCGI.PARAMS, FCGI.PARAMS, FCGI.STDIN]);
  assert.deepEqual(decodePairs(records[1]!.content), short);
});

test('FastCGI record reader: the same records whatever the chunking; a bad version is an error', () => {
  const stream = Buffer.concat([
    encodeRecord(FCGI.STDOUT, 1, Buffer.from('Status: 200\r\n\r\nhi')),
    encodeRecord(FCGI.STDERR, 1, Buffer.from('warn')),
    encodeRecord(FCGI.STDOUT, 1),
    encodeEndRequest(1, 0, 0),
  ]);
  const expected = ['6:Status: 200\r\n\r\nhi', '7:warn', '6:', '3:' + '\0'.repeat(8)];
  for (const parts of splits(stream)) {
    const reader = new RecordReader();
    const got: FcgiRecord[] = [];
    for (const part of parts) {
      const records = reader.push(part);
      assert.ok(Array.isArray(records));
      got.push(...records);
    }
    assert.deepEqual(got.map((r) => `${r.type}:${r.content.toString('latin1')}`), expected);
    assert.equal(reader.buffered, 0);
  }
  assert.match(new RecordReader().push(Buffer.from([2, 6, 0, 1, 0, 0, 0, 0])) as string, /version 2/);
});

test('SCGI netstring: CONTENT_LENGTH first, SCGI=1, the exact bytes; decoded whatever the chunking', () => {
  const head = encodeScgiHead(5, [['REQUEST_METHOD', 'POST']]);
  const text = 'CONTENT_LENGTH\x005\0SCGI\x001\0REQUEST_METHOD\0POST\0';
  assert.equal(head.toString('latin1'), `${text.length}:${text},`);
  const withBody = Buffer.concat([head, Buffer.from('hello')]);
  for (const [a, b] of splits(withBody).slice(1)) {
    const first = decodeScgiHead(a!, 1024);
    if (first !== null && typeof first !== 'string') assert.ok(first.used <= a!.length);
    else assert.equal(first, null, `prefix of ${a!.length}`);
    const whole = decodeScgiHead(Buffer.concat([a!, b!]), 1024);
    assert.ok(whole !== null && typeof whole !== 'string');
    assert.deepEqual(whole.pairs, [['CONTENT_LENGTH', '5'], ['SCGI', '1'], ['REQUEST_METHOD', 'POST']]);
    assert.equal(withBody.subarray(whole.used).toString(), 'hello');
  }
  const bad: [string, RegExp][] = [
    ['x5:abc', /not a netstring/],
    ['4:a\0b\0;', /comma/],
    ['3:a\0b,', /pairs/],
    ['99999:', /over the limit/],
  ];
  for (const [input, message] of bad) assert.match(decodeScgiHead(Buffer.from(input, 'latin1'), 1024) as string, message, input);
});

test('uwsgi packet: 4-byte header with the little-endian size, length-prefixed vars; over 64 KiB refused', () => {
  const packet = encodeUwsgiPacket([['A', 'bc']], 0, 0)!;
  assert.deepEqual([...packet], [0, 7, 0, 0, 1, 0, 0x41, 2, 0, 0x62, 0x63]);
  const pairs: [string, string][] = [['REQUEST_METHOD', 'GET'], ['PATH_INFO', '/é'], ['X', 'y'.repeat(300)]];
  const enc = encodeUwsgiPacket(pairs, 5, 9)!;
  for (const parts of splits(enc)) {
    const got = decodeUwsgiPacket(parts[0]!);
    if (parts.length === 2) assert.equal(got, null, `prefix of ${parts[0]!.length}`);
    const whole = decodeUwsgiPacket(Buffer.concat(parts));
    assert.deepEqual(whole, { modifier1: 5, modifier2: 9, pairs, used: enc.length });
  }
  assert.notEqual(encodeUwsgiPacket([['X', 'v'.repeat(65535 - 4 - 1)]]), null, 'exactly 65535 bytes of vars fit');
  assert.equal(encodeUwsgiPacket([['X', 'v'.repeat(65535 - 4)]]), null, 'one byte more does not');
  assert.match(decodeUwsgiPacket(Buffer.from([0, 3, 0, 0, 5, 0, 0x41])) as string, /length-prefixed/);
});

type HeadCase = { name: string; input: string; status?: number; reason?: string; headers?: string[]; body?: string; error?: RegExp; contentLength?: number };

const HEAD_CASES: HeadCase[] = [
  { name: 'no Status: 200', input: 'Content-Type: text/plain\r\n\r\nbody', status: 200, reason: 'OK', headers: ['Content-Type', 'text/plain'], body: 'body' },
  { name: 'Status with reason', input: 'Status: 404 Not Here\r\n\r\n', status: 404, reason: 'Not Here', headers: [] },
  { name: 'Status without reason', input: 'Status: 201\n\nx', status: 201, reason: 'Created', body: 'x' },
  { name: 'Location alone: 302', input: 'Location: /next\r\n\r\n', status: 302, headers: ['Location', '/next'] },
  { name: 'Location with Status', input: 'Status: 301\r\nLocation: http://e/\r\n\r\n', status: 301 },
  { name: 'HTTP status line (uwsgi)', input: 'HTTP/1.1 418 Teapot\r\nX-A: 1\r\n\r\n', status: 418, reason: 'Teapot', headers: ['X-A', '1'] },
  { name: 'status line with the request\'s HTTP/2.0', input: 'HTTP/2.0 200 OK\r\n\r\n', status: 200, reason: 'OK', headers: [] },
  { name: 'hop-by-hop dropped', input: 'Connection: close\r\nTransfer-Encoding: chunked\r\nKeep-Alive: 5\r\nX: y\r\n\r\n', headers: ['X', 'y'] },
  { name: 'Content-Length kept and known', input: 'Content-Length: 3\r\n\r\nabc', contentLength: 3, headers: ['Content-Length', '3'], body: 'abc' },
  { name: 'empty head', input: '\r\nbody', status: 200, headers: [], body: 'body' },
  { name: 'bad status', input: 'Status: abc\r\n\r\n', error: /invalid status/ },
  { name: 'status out of range', input: 'Status: 99\r\n\r\n', error: /invalid status/ },
  { name: 'line without colon', input: 'garbage\r\n\r\n', error: /invalid header line/ },
  { name: 'a CR inside a value', input: 'X-A: 1\r\nX-B: a\rb\r\n\r\n', error: /invalid value in the X-B header/ },
  { name: 'a NUL in a value', input: 'X-A: a\0b\n\n', error: /invalid value in the X-A header/ },
  { name: 'a CR before the line\'s own CRLF is trimmed with the spaces', input: 'X-A: 1\r\r\n\r\n', headers: ['X-A', '1'] },
  { name: 'the same names in any case, Status and Location among them', input: 'status: 404\r\nLOCATION: /x\r\nx-a: 1\r\nX-A: 2\r\n\r\n', status: 404, headers: ['LOCATION', '/x', 'x-a', '1', 'X-A', '2'] },
  { name: 'bad Content-Length', input: 'Content-Length: -1\r\n\r\n', error: /Content-Length/ },
  { name: 'conflicting Content-Length', input: 'Content-Length: 1\r\nContent-Length: 2\r\n\r\n', error: /Content-Length/ },
];

test('CGI response heads: the table, whatever the chunking', () => {
  for (const c of HEAD_CASES) {
    for (const parts of splits(Buffer.from(c.input, 'latin1'))) {
      const reader = new CgiHeadReader(1024);
      let got: { head: CgiHead; rest: Buffer } | string | null = null;
      for (const part of parts) got ??= reader.push(part);
      if (c.error) {
        assert.match(got as string, c.error, c.name);
        continue;
      }
      assert.ok(got !== null && typeof got !== 'string', `${c.name}: ${String(got)}`);
      if (c.status !== undefined) assert.equal(got.head.status, c.status, c.name);
      if (c.reason !== undefined) assert.equal(got.head.reason, c.reason, c.name);
      if (c.headers !== undefined) assert.deepEqual(got.head.headers, c.headers, c.name);
      if (c.contentLength !== undefined) assert.equal(got.head.contentLength, c.contentLength, c.name);
      // The body bytes that came with the head's last piece.
      if (c.body !== undefined && parts.length === 1) assert.equal(got.rest.toString(), c.body, c.name);
    }
  }
  assert.match(new CgiHeadReader(10).push(Buffer.from('X-Long: aaaaaaaaaaaaaaa')) as string, /over 10 bytes/);
});

test('upstream addresses: host:port, [v6]:port, unix:PATH; anything else names the forms', () => {
  assert.deepEqual(parseUpstream('127.0.0.1:9000'), { kind: 'tcp', host: '127.0.0.1', port: 9000 });
  assert.deepEqual(parseUpstream('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
  assert.deepEqual(parseUpstream('php:9000'), { kind: 'tcp', host: 'php', port: 9000 });
  assert.deepEqual(parseUpstream('unix:/run/php.sock'), { kind: 'unix', path: '/run/php.sock' });
  for (const bad of ['127.0.0.1', '127.0.0.1:0', 'h:70000', 'unix:', '::1:9000', 'http://h:1']) assert.equal(typeof parseUpstream(bad), 'string', bad);
});

test('script targets: split_path_info, the index file, SCRIPT_FILENAME under the root', () => {
  const split = /^(.+\.php)(\/.*)$/;
  assert.deepEqual(scriptTarget('/a/b.php/x/y', '/srv/www/', 'index.php', split), {
    scriptName: '/a/b.php', pathInfo: '/x/y', documentRoot: '/srv/www/', scriptFilename: '/srv/www/a/b.php',
  });
  assert.equal(scriptTarget('/dir/', '/srv', 'index.php', split).scriptFilename, '/srv/dir/index.php');
  assert.deepEqual(scriptTarget('/x.php', '/srv', 'index.php', undefined).pathInfo, '');
});
