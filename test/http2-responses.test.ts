/**
 * HTTP/2 responses and streams on the config-file site
 * (test/helpers/tls-site.ts): every kind of response (app, streamed, file,
 * spooled, static, HEAD, 413), request bodies with and without a length,
 * Expect: 100-continue and gzip on a stream, a body cut short, many streams
 * on one connection (h2load), and a reset stream cancelling only its own
 * request, each in the access log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants as h2 } from 'node:http2';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { h2close, h2request, h2session, run } from './helpers/tls-clients.js';
import { accessLines, CSS, NO_H2LOAD, NO_OPENSSL, portOf, serveTlsSite, site, tmp } from './helpers/tls-site.js';
import { waitUntil } from './helpers/wait.js';
import { pattern } from './helpers/wsgi-cases.js';

serveTlsSite({ site: true });

test('HTTP/2 responses: one-piece, streamed, file_wrapper file, spooled to a slow reader, HEAD, 413 refusal', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  try {
    const one = await h2request(session, '/cases/one');
    assert.equal(one.body.toString(), 'hello, world');
    const gen = await h2request(session, '/cases/gen');
    assert.equal(gen.body.toString(), 'abcdef');
    const blob = readFileSync(join(tmp, 'public', 'blob.bin'));
    const file = await h2request(session, `/cases/file?path=${encodeURIComponent(join(tmp, 'public', 'blob.bin'))}`);
    assert.equal(file.status, 200);
    assert.ok(file.body.equals(blob), 'the file_wrapper file arrives whole');
    // 5 MB to a reader that waits before reading: more than the front keeps in memory.
    const size = 5_000_000;
    const stream = session.request({ ':path': `/cases/bytesio?size=${size}` });
    stream.pause();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    setTimeout(() => stream.resume(), 1000);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    assert.ok(Buffer.concat(chunks).equals(pattern(size)), 'the spooled response arrives whole and in order');
    const head = await h2request(session, '/cases/one', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const big = await h2request(session, '/', { method: 'POST', headers: { 'content-length': String(2 * 1024 * 1024) }, body: Buffer.alloc(2 * 1024 * 1024) }).catch((e: Error) => e);
    if (!(big instanceof Error)) assert.equal(big.status, 413);
    const after = await h2request(session, '/cases/one');
    assert.equal(after.status, 200, 'the session still serves after a refused stream');
  } finally {
    await h2close(session);
  }
});

test('HTTP/2 request bodies: with Content-Length, without one, and spilled to a file past 256 KiB reach the app', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  try {
    const sized = await h2request(session, '/post', { method: 'POST', headers: { 'content-length': '11' }, body: 'hello there' });
    assert.equal(JSON.parse(sized.body.toString()).body, 'hello there');
    // No Content-Length: the body is the DATA frames up to END_STREAM.
    const unsized = await h2request(session, '/post', { method: 'POST', body: 'streamed body' });
    const echoed = JSON.parse(unsized.body.toString()) as { body: string; content_length: string };
    assert.equal(echoed.body, 'streamed body');
    assert.equal(echoed.content_length, '13');
    const large = Buffer.alloc(400_000, 'x');
    const spilled = await h2request(session, '/post', { method: 'PUT', body: large });
    assert.equal((JSON.parse(spilled.body.toString()) as { body: string }).body.length, large.length);
  } finally {
    await h2close(session);
  }
});

test('HTTP/2 streams: Expect: 100-continue, a gzip answer, app and static file on one session, each in the access log', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  const tag = randomBytes(4).toString('hex');
  try {
    // Expect: the 100 comes first (the client sends the body only then), then the answer.
    const continued = await new Promise<{ interim: number[]; status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': `/post-${tag}`, ':method': 'POST', expect: '100-continue', 'content-length': '5' }, { endStream: false });
      const interim: number[] = [];
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('continue', () => {
        interim.push(100);
        stream.end('hello');
      });
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', reject);
      stream.on('end', () => resolve({ interim, status, body: Buffer.concat(chunks).toString() }));
    });
    assert.deepEqual(continued.interim, [100]);
    assert.equal(continued.status, 200);
    assert.equal((JSON.parse(continued.body) as { body: string }).body, 'hello');
    // A compressible answer past compress_min_size is gzipped on the stream.
    const text = 'gatehouse '.repeat(500);
    const zipped = await h2request(session, `/post-${tag}`, { method: 'POST', headers: { 'accept-encoding': 'gzip' }, body: text });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal((JSON.parse(gunzipSync(zipped.body).toString()) as { body: string }).body, text);
    // A static file (node:http2's own objects, made for that action) beside the app's streams.
    const css = await h2request(session, `/static/style.css?${tag}`);
    assert.equal(css.status, 200);
    assert.equal(css.body.toString(), CSS);
    const missing = await h2request(session, `/static/none-${tag}.css`);
    assert.equal(missing.status, 404);
  } finally {
    await h2close(session);
  }
  assert.ok(await waitUntil(() => accessLines().filter((l) => l.includes(tag)).length === 4, 5000), accessLines().filter((l) => l.includes(tag)).join('\n'));
  const lines = accessLines().filter((l) => l.includes(tag));
  assert.ok(lines.every((l) => l.startsWith('127.0.0.1 ') && l.includes('HTTP/2.0"')), lines.join('\n'));
  assert.deepEqual(lines.map((l) => / (\d{3}) /.exec(l)?.[1]).sort(), ['200', '200', '200', '404']);
});

test('a body cut short (END_STREAM before its Content-Length) never reaches the app', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  const path = `/truncated-${randomBytes(4).toString('hex')}`;
  try {
    const stream = session.request({ ':path': path, ':method': 'POST', 'content-length': '100000' }, { endStream: false });
    stream.on('error', () => {}); // the server resets it
    const closed = new Promise((r) => stream.on('close', r));
    stream.write(Buffer.alloc(1000, 'x'));
    await new Promise((r) => setTimeout(r, 100));
    stream.end();
    await closed;
    const after = await h2request(session, '/after');
    assert.equal(after.status, 200);
  } finally {
    await h2close(session);
  }
  assert.ok(await waitUntil(() => accessLines().some((l) => l.includes('/after')), 5000));
  assert.deepEqual(accessLines().filter((l) => l.includes(path) && / 200 /.test(l)), [], 'the app answered a truncated body');
});

test('static files over HTTP/2: content, type, ETag and 304, range; a directory: 301 to its slash form, 403 without an index file', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  try {
    const css = await h2request(session, '/static/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.body.toString(), CSS);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    const etag = String(css.headers.etag);
    const again = await h2request(session, '/static/style.css', { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    const range = await h2request(session, '/static/blob.bin', { headers: { range: 'bytes=10-19' } });
    assert.equal(range.status, 206);
    assert.ok(range.body.equals(readFileSync(join(tmp, 'public', 'blob.bin')).subarray(10, 20)));
    const bare = await h2request(session, '/static/no-index');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/static/no-index/');
    assert.equal((await h2request(session, '/static/no-index/')).status, 403);
    assert.equal((await h2request(session, '/static/no-such-dir/')).status, 404);
  } finally {
    await h2close(session);
  }
});

test('many concurrent streams: h2load -n 2000 -c 4 -m 10 on an app route and a static file, all 2xx', { skip: NO_H2LOAD }, async () => {
  for (const path of ['/hello', '/static/style.css']) {
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '10', '-T', '20', `https://${site!.addresses[0]}${path}`], 60_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/, r.stdout);
    assert.match(r.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/, r.stdout);
    const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(r.stdout)?.[1];
    console.log(`# h2load ${path}: ${rate} req/s`);
  }
});

test('a stream reset by the client cancels its request only: the other streams on the session are answered', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  const tag = randomBytes(4).toString('hex');
  try {
    const slow = session.request({ ':path': `/slow?ms=3000&tag=${tag}` });
    slow.on('error', () => {});
    const before = h2request(session, `/before?tag=${tag}`);
    // Reset once the server has it (the app is sleeping on it).
    await new Promise((r) => setTimeout(r, 300));
    slow.close(h2.NGHTTP2_CANCEL);
    const others = await Promise.all([before, ...Array.from({ length: 10 }, (_, i) => h2request(session, `/other-${i}?tag=${tag}`))]);
    for (const r of others) assert.equal(r.status, 200);
    assert.equal(slow.rstCode, h2.NGHTTP2_CANCEL);
  } finally {
    await h2close(session);
  }
  // The reset request is logged as nginx does (499), with the client's address.
  assert.ok(await waitUntil(() => accessLines().some((l) => l.includes(`/slow?ms=3000&tag=${tag}`)), 5000), 'the reset request is logged');
  const line = accessLines().find((l) => l.includes(`/slow?ms=3000&tag=${tag}`))!;
  assert.match(line, /^127\.0\.0\.1 - - .*"GET \/slow\?ms=3000&tag=\w+ HTTP\/2\.0" 499 - /);
  // The log file is written asynchronously: wait for the answered requests' lines too.
  const answered = () => accessLines().filter((l) => l.includes(tag) && / 200 /.test(l)).length;
  await waitUntil(() => answered() >= 11, 5000);
  assert.equal(answered(), 11);
});
