/**
 * Static files as the client gets them (test/helpers/static-site.ts):
 * Content-Type, whole files and HEAD, keep-alive between static and app
 * answers, conditional requests (ETag, Last-Modified, 304), ranges (206,
 * 416, If-Range, multipart/byteranges) and the access log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { RawConnection } from './helpers/raw-connection.js';
import { accessLog, BLOB, bytesOf, contentType, CSS, CSS_MTIME, get, gh, HELLO, PNG, raw, README, serveStaticSite } from './helpers/static-site.js';
import { waitUntil } from './helpers/wait.js';

serveStaticSite();

// ---------------------------------------------------------------- Content-Type

test('Content-Type follows the extension', async () => {
  const cases: Array<[string, RegExp]> = [
    ['/static/style.css', /^text\/css(;|$)/],
    ['/static/app.js', /^(application|text)\/javascript(;|$)/],
    ['/static/logo.png', /^image\/png(;|$)/],
    ['/static/page.html', /^text\/html(;|$)/],
    ['/static/data.json', /^application\/json(;|$)/],
    ['/static/readme.txt', /^text\/plain(;|$)/],
  ];
  for (const [path, type] of cases) {
    const res = await get(path);
    assert.equal(res.status, 200, path);
    assert.match(contentType(res), type, path);
    await res.arrayBuffer();
  }
  const png = await bytesOf(await get('/static/logo.png'));
  assert.ok(png.equals(PNG), 'binary bytes unchanged');
});

// ---------------------------------------------------------------- whole files, HEAD

test('a 100 KiB binary file arrives whole, with Content-Length and Accept-Ranges', async () => {
  const res = await get('/static/blob.bin');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(BLOB.length));
  assert.equal(res.headers.get('accept-ranges'), 'bytes');
  const body = await bytesOf(res);
  assert.equal(body.length, BLOB.length);
  assert.ok(body.equals(BLOB), 'same bytes as on disk');
});

test('HEAD has the headers of GET and no body (the next response on the connection is intact)', async () => {
  const viaFetch = await get('/static/style.css', { method: 'HEAD' });
  assert.equal(viaFetch.status, 200);
  assert.match(contentType(viaFetch), /^text\/css/);
  assert.ok(viaFetch.headers.get('etag'), 'ETag on HEAD');
  assert.ok(viaFetch.headers.get('last-modified'), 'Last-Modified on HEAD');

  const c = await RawConnection.open(gh.port);
  try {
    c.write('HEAD /static/blob.bin HTTP/1.1\r\nHost: test\r\n\r\n');
    const head = await c.readResponse(5000, { headRequest: true });
    assert.equal(head.status, 200);
    assert.equal(head.header('content-length'), String(BLOB.length));
    // If HEAD had sent body bytes, they would be read as the start of this response.
    c.write('GET /static/readme.txt HTTP/1.1\r\nHost: test\r\n\r\n');
    const next = await c.readResponse();
    assert.equal(next.status, 200);
    assert.equal(next.body.toString(), README);
    assert.equal(c.pending.length, 0, 'nothing after the second response');
  } finally {
    c.close();
  }
});

test('keep-alive: static and app responses alternate correctly on one connection (pipelined)', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(
      'GET /static/style.css HTTP/1.1\r\nHost: test\r\n\r\n' +
        'GET /app HTTP/1.1\r\nHost: test\r\n\r\n' +
        'GET /static/missing HTTP/1.1\r\nHost: test\r\n\r\n' +
        'GET /static/blob.bin HTTP/1.1\r\nHost: test\r\n\r\n' +
        'GET /again HTTP/1.1\r\nHost: test\r\n\r\n',
    );
    const r1 = await c.readResponse();
    assert.equal(r1.status, 200);
    assert.equal(r1.body.toString(), CSS);
    const r2 = await c.readResponse();
    assert.equal(r2.status, 200);
    assert.equal(r2.body.toString(), HELLO);
    const r3 = await c.readResponse();
    assert.equal(r3.status, 404);
    const r4 = await c.readResponse();
    assert.equal(r4.status, 200);
    assert.ok(r4.body.equals(BLOB));
    const r5 = await c.readResponse();
    assert.equal(r5.status, 200);
    assert.equal(r5.body.toString(), HELLO);
  } finally {
    c.close();
  }
});

// ---------------------------------------------------------------- conditional requests

test('ETag and Last-Modified are sent; Last-Modified is the file mtime', async () => {
  const res = await get('/static/style.css');
  assert.equal(res.status, 200);
  await res.text();
  const etag = res.headers.get('etag');
  assert.ok(etag, 'ETag present');
  assert.match(etag, /^(W\/)?"[^"]+"$/, 'ETag is a quoted entity tag');
  assert.equal(res.headers.get('last-modified'), CSS_MTIME.toUTCString());
});

test('If-None-Match with the current ETag → 304 without a body; another ETag → 200', async () => {
  const first = await get('/static/style.css');
  await first.text();
  const etag = first.headers.get('etag')!;
  const c = await RawConnection.open(gh.port);
  try {
    c.write(`GET /static/style.css HTTP/1.1\r\nHost: test\r\nIf-None-Match: ${etag}\r\n\r\n`);
    const r = await c.readResponse();
    assert.equal(r.status, 304);
    assert.equal(r.header('etag'), etag, '304 repeats the ETag');
    // A 304 carries no body: the next response on the connection starts right after its head.
    c.write('GET /static/readme.txt HTTP/1.1\r\nHost: test\r\n\r\n');
    const next = await c.readResponse();
    assert.equal(next.status, 200);
    assert.equal(next.body.toString(), README);
  } finally {
    c.close();
  }
  const other = await raw('/static/style.css', 'GET', 'If-None-Match: "not-the-etag"\r\n');
  assert.equal(other.status, 200);
  assert.equal(other.body.toString(), CSS);
});

test('If-Modified-Since at or after Last-Modified → 304; before it → 200', async () => {
  // Over a raw socket: fetch() adds Cache-Control: no-cache to conditional requests.
  for (const date of [CSS_MTIME, new Date('2021-06-01T00:00:00Z')]) {
    const r = await raw('/static/style.css', 'GET', `If-Modified-Since: ${date.toUTCString()}\r\n`);
    assert.equal(r.status, 304, `If-Modified-Since: ${date.toUTCString()}`);
    assert.equal(r.body.length, 0);
  }
  const earlier = await raw('/static/style.css', 'GET', `If-Modified-Since: ${new Date('2019-01-01T00:00:00Z').toUTCString()}\r\n`);
  assert.equal(earlier.status, 200);
  assert.equal(earlier.body.toString(), CSS);
});

test('If-None-Match that does not match wins over a matching If-Modified-Since → 200', async () => {
  const r = await raw('/static/style.css', 'GET', `If-None-Match: "not-the-etag"\r\nIf-Modified-Since: ${CSS_MTIME.toUTCString()}\r\n`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), CSS);
});

// ---------------------------------------------------------------- ranges

test('Range: bytes=0-99 → 206 with Content-Range and exactly those bytes', async () => {
  const res = await get('/static/blob.bin', { headers: { Range: 'bytes=0-99' } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get('content-range'), `bytes 0-99/${BLOB.length}`);
  assert.equal(res.headers.get('content-length'), '100');
  assert.ok((await bytesOf(res)).equals(BLOB.subarray(0, 100)));
});

test('Range: a middle slice, a suffix and an open end → 206 with the right bytes', async () => {
  const n = BLOB.length;
  const cases: Array<[string, number, number]> = [
    ['bytes=1000-1999', 1000, 1999],
    ['bytes=-100', n - 100, n - 1],
    ['bytes=102000-', 102000, n - 1],
    ['bytes=102000-999999', 102000, n - 1],
  ];
  for (const [range, start, end] of cases) {
    const res = await get('/static/blob.bin', { headers: { Range: range } });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${n}`, range);
    const body = await bytesOf(res);
    assert.ok(body.equals(BLOB.subarray(start, end + 1)), `${range}: body is bytes ${start}-${end}`);
  }
});

test('an unsatisfiable Range → 416 with Content-Range: bytes */SIZE', async () => {
  for (const range of [`bytes=${BLOB.length}-`, 'bytes=200000-300000']) {
    const res = await get('/static/blob.bin', { headers: { Range: range } });
    assert.equal(res.status, 416, range);
    assert.equal(res.headers.get('content-range'), `bytes */${BLOB.length}`, range);
    const body = await bytesOf(res);
    assert.ok(body.length < 1000 && !body.equals(BLOB), `${range}: no file content in a 416`);
  }
});

test('If-Range: the current ETag gives 206, a stale one the whole file (200)', async () => {
  const first = await get('/static/blob.bin', { method: 'HEAD' });
  const etag = first.headers.get('etag')!;
  const fresh = await get('/static/blob.bin', { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
  assert.equal(fresh.status, 206);
  assert.ok((await bytesOf(fresh)).equals(BLOB.subarray(0, 10)));
  const stale = await get('/static/blob.bin', { headers: { Range: 'bytes=0-9', 'If-Range': '"stale-etag"' } });
  assert.equal(stale.status, 200);
  assert.ok((await bytesOf(stale)).equals(BLOB));
});

test('several ranges → one multipart/byteranges 206 (as nginx, and as the cache answers them), from disk and from memory', async () => {
  const cases: Array<[string, Buffer, string, Array<[number, number]>]> = [
    ['/static/blob.bin', BLOB, 'bytes=0-9,50000-50099,-10', [[0, 9], [50000, 50099], [BLOB.length - 10, BLOB.length - 1]]],
    ['/static/style.css', Buffer.from(CSS), 'bytes=0-3,10-', [[0, 3], [10, CSS.length - 1]]],
  ];
  for (const [path, content, range, parts] of cases) {
    const type = (await get(path, { method: 'HEAD' })).headers.get('content-type');
    const res = await get(path, { headers: { Range: range } });
    assert.equal(res.status, 206, path);
    const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(res.headers.get('content-type') ?? '')?.[1];
    assert.ok(boundary !== undefined, String(res.headers.get('content-type')));
    const expected = Buffer.concat([
      ...parts.map(([from, to], i) =>
        Buffer.concat([
          Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${from}-${to}/${content.length}\r\n\r\n`),
          content.subarray(from, to + 1),
        ]),
      ),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const body = await bytesOf(res);
    assert.ok(body.equals(expected), `${path}: ${body.toString('latin1').slice(0, 300)}`);
    assert.equal(res.headers.get('content-length'), String(expected.length));
  }
  const overlapping = await get('/static/blob.bin', { headers: { Range: 'bytes=0-9,5-19' } });
  assert.equal(overlapping.headers.get('content-range'), `bytes 0-19/${BLOB.length}`, 'overlapping ranges are one part');
  const stale = await get('/static/blob.bin', { headers: { Range: 'bytes=0-9,20-29', 'If-Range': '"stale-etag"' } });
  assert.equal(stale.status, 200);
});

// ---------------------------------------------------------------- access log

test('the access log has a line for each static request, with status and bytes', async () => {
  const full = await get('/static/readme.txt?log=1');
  assert.equal(full.status, 200);
  await full.text();
  const part = await get('/static/blob.bin?log=2', { headers: { Range: 'bytes=0-99' } });
  assert.equal(part.status, 206);
  await part.arrayBuffer();
  const missing = await get('/static/nope.txt?log=3');
  assert.equal(missing.status, 404);
  await missing.text();
  const etag = (await get('/static/style.css', { method: 'HEAD' })).headers.get('etag')!;
  const notModified = await raw('/static/style.css?log=4', 'GET', `If-None-Match: ${etag}\r\n`);
  assert.equal(notModified.status, 304);

  const lineFor = (target: string): string | undefined =>
    existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').find((l) => l.includes(`"GET ${target} HTTP/1.1"`)) : undefined;
  const targets = ['/static/readme.txt?log=1', '/static/blob.bin?log=2', '/static/nope.txt?log=3', '/static/style.css?log=4'];
  const all = await waitUntil(() => targets.every((t) => lineFor(t) !== undefined), 3000);
  assert.ok(all, `access log lines for every static request; log:\n${existsSync(accessLog) ? readFileSync(accessLog, 'utf8') : '(no file)'}`);

  const statusBytes = (target: string): [string, string] => {
    const line = lineFor(target)!;
    const m = /" (\d{3}) (\d+|-) "/.exec(line);
    assert.ok(m, `Combined Log Format line: ${line}`);
    assert.match(line, /^127\.0\.0\.1 - - \[[^\]]+\] "GET /, line);
    return [m[1]!, m[2]!];
  };
  assert.deepEqual(statusBytes('/static/readme.txt?log=1'), ['200', String(Buffer.byteLength(README))]);
  assert.deepEqual(statusBytes('/static/blob.bin?log=2'), ['206', '100']);
  assert.equal(statusBytes('/static/nope.txt?log=3')[0], '404');
  assert.deepEqual(statusBytes('/static/style.css?log=4'), ['304', '-']);
});
