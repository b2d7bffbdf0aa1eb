/**
 * Response compression (`compress`, `compress_min_size`), for app responses
 * and static files: the coding follows Accept-Encoding (q-values, `*`, q=0,
 * identity) and our order; only compressible types of at least the minimum
 * size; never an encoded body, a range, a 206, no-transform or HEAD; Vary on
 * every compressible response; the body decompresses to the exact bytes sent
 * without compression, whether it was one frame, streamed, a FILE frame or a
 * static file from memory or disk.
 *
 * One gatehouse from a config file (compress_apps.py at /, a static root at
 * /static) serves most tests; two more check --compress gzip / off and the
 * minimum size.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync } from 'node:zlib';
import { APPS } from './helpers/gatehouse.js';
import { launch, withServer, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const APP = `${APPS}/compress_apps.py:app`;

/** Static files: text of several sizes (memory and disk paths), an image, a small file. */
const CSS = Buffer.from(Array.from({ length: 600 }, (_, i) => `.rule-${i} { margin: ${i % 17}px; color: #${(i * 7919).toString(16).slice(-3)}; }\n`).join(''));
const BIG_JSON = Buffer.from(JSON.stringify(Array.from({ length: 4000 }, (_, i) => ({ id: i, label: `row ${i}`, even: i % 2 === 0 }))));
const PNG = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(20000, 'IDAT')]);
const SMALL = Buffer.from('a small text file, under the minimum size\n');

let tmp = '';
let gh: Server;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gh-compress-'));
  const root = join(tmp, 'public');
  mkdirSync(root);
  writeFileSync(join(root, 'style.css'), CSS);
  writeFileSync(join(root, 'big.json'), BIG_JSON);
  writeFileSync(join(root, 'logo.png'), PNG);
  writeFileSync(join(root, 'small.txt'), SMALL);
  const config = join(tmp, 'gatehouse.toml');
  writeFileSync(
    config,
    `app = ${JSON.stringify(APP)}
workers = 1
bind = ["127.0.0.1:0"]

[[routes]]
path = "/static"
static = { root = "public" }

[[routes]]
path = "/"
app = "main"
`,
  );
  gh = await launch(['--config', config], { workers: 1 });
});

after(async () => {
  await gh?.kill();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<SimpleResponse> {
  return request(base, path, { headers, method });
}

const fetchGh = (path: string, acceptEncoding?: string, method = 'GET') =>
  get(gh.url, path, acceptEncoding === undefined ? {} : { 'Accept-Encoding': acceptEncoding }, method);

/** The body with its Content-Encoding undone. */
function decoded(r: SimpleResponse): Buffer {
  const coding = r.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(r.raw);
  if (coding === 'gzip') return gunzipSync(r.raw);
  assert.equal(coding, undefined, `unexpected Content-Encoding ${coding}`);
  return r.raw;
}

function varies(r: SimpleResponse): boolean {
  return String(r.headers.vary ?? '')
    .split(',')
    .some((v) => v.trim().toLowerCase() === 'accept-encoding');
}

/** The coding each Accept-Encoding gets for `path`, checking every compressed body against the identity one. */
async function codingsFor(path: string, headers: string[]): Promise<Record<string, string>> {
  const plain = await fetchGh(path);
  assert.equal(plain.status, 200, path);
  assert.equal(plain.headers['content-encoding'], undefined, `${path} without Accept-Encoding is not compressed`);
  const got: Record<string, string> = {};
  for (const ae of headers) {
    const r = await fetchGh(path, ae);
    assert.equal(r.status, 200, `${path} (${ae})`);
    got[ae] = r.headers['content-encoding'] ?? 'identity';
    assert.ok(decoded(r).equals(plain.raw), `${path} (${ae}): decompressed body equals the uncompressed one`);
    if (r.headers['content-length'] !== undefined) assert.equal(Number(r.headers['content-length']), r.raw.length, `${path} (${ae}): Content-Length is the compressed size`);
  }
  return got;
}

// ---------------------------------------------------------------- app: codings

test('app: the coding follows Accept-Encoding, br preferred on a tie; the body decompresses to the exact bytes', async () => {
  const got = await codingsFor('/json', ['br', 'gzip', 'gzip, deflate, br', 'br, gzip', 'deflate, gzip', 'GZIP', 'x-gzip']);
  assert.deepEqual(got, { br: 'br', gzip: 'gzip', 'gzip, deflate, br': 'br', 'br, gzip': 'br', 'deflate, gzip': 'gzip', GZIP: 'gzip', 'x-gzip': 'gzip' });
  const r = await fetchGh('/json', 'br');
  assert.ok(r.raw.length < 20000 / 2, `compressed (${r.raw.length} bytes of 20000)`);
  assert.ok(varies(r), 'Vary: Accept-Encoding');
});

test('app: q-values, *, q=0 and identity', async () => {
  const got = await codingsFor('/json', [
    'br;q=0.5, gzip;q=0.8',
    'gzip;q=0, br',
    'br;q=0, gzip',
    'br;q=0, gzip;q=0',
    '*',
    '*;q=0.5, br;q=0',
    '*;q=0',
    'identity',
    'deflate',
    'identity;q=1, gzip;q=0.001',
  ]);
  assert.deepEqual(got, {
    'br;q=0.5, gzip;q=0.8': 'gzip',
    'gzip;q=0, br': 'br',
    'br;q=0, gzip': 'gzip',
    'br;q=0, gzip;q=0': 'identity',
    '*': 'br',
    '*;q=0.5, br;q=0': 'gzip',
    '*;q=0': 'identity',
    identity: 'identity',
    deflate: 'identity',
    'identity;q=1, gzip;q=0.001': 'gzip',
  });
});

test('app: Vary is on compressible responses whatever the client accepts, merged with the app’s own; a strong ETag becomes weak', async () => {
  const plain = await fetchGh('/json');
  assert.ok(varies(plain), 'Vary: Accept-Encoding without Accept-Encoding too');
  const tagged = await fetchGh('/etag', 'gzip');
  assert.equal(tagged.headers['content-encoding'], 'gzip');
  assert.equal(tagged.headers.etag, 'W/"v1"');
  assert.equal(tagged.headers.vary, 'Cookie, Accept-Encoding');
  const identity = await fetchGh('/etag');
  assert.equal(identity.headers.etag, '"v1"', 'uncompressed, the ETag stays strong');
  assert.equal(identity.headers.vary, 'Cookie, Accept-Encoding');
});

test('app: never compressed: images, an encoded body, a 206, no-transform, a body under the minimum', async () => {
  const cases: Array<[string, boolean]> = [
    ['/png', false],
    ['/encoded', true],
    ['/partial', true],
    ['/no-transform', true],
    ['/json?size=500', true],
  ];
  for (const [path, vary] of cases) {
    const plain = await fetchGh(path);
    const r = await fetchGh(path, 'br, gzip');
    assert.equal(r.status, plain.status, path);
    assert.equal(r.headers['content-encoding'], plain.headers['content-encoding'], `${path}: Content-Encoding untouched`);
    assert.ok(r.raw.equals(plain.raw), `${path}: the same bytes with or without Accept-Encoding`);
    assert.equal(r.headers['content-length'], String(plain.raw.length), `${path}: Content-Length kept`);
    if (!vary) assert.ok(!varies(r), `${path}: no Vary on a type that is never compressed`);
  }
  // The app's gzip body passes through as it is (not compressed twice).
  const encoded = await fetchGh('/encoded', 'gzip');
  assert.equal(encoded.headers['content-encoding'], 'gzip');
  assert.ok(gunzipSync(encoded.raw).length > 10000);
  // Under the minimum: nothing varies either.
  assert.ok(!varies(await fetchGh('/json?size=500', 'gzip')), 'no Vary under the minimum size');
});

test('app: HEAD is not compressed but has Vary and the identity Content-Length', async () => {
  const r = await fetchGh('/json', 'br, gzip', 'HEAD');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.headers['content-length'], '20000');
  assert.ok(varies(r));
  assert.equal(r.raw.length, 0);
});

// ---------------------------------------------------------------- app: streamed bodies

test('app: a streamed body, a FILE frame and a one-frame body over 64 KiB are compressed as they flow (chunked)', async () => {
  const file = join(tmp, 'lines.txt');
  writeFileSync(file, Array.from({ length: 4000 }, (_, i) => `line ${i} of a text file the front streams\n`).join(''));
  for (const path of ['/stream?chunks=300', `/file?path=${encodeURIComponent(file)}`, '/json?size=200000']) {
    const got = await codingsFor(path, ['br', 'gzip']);
    assert.deepEqual(got, { br: 'br', gzip: 'gzip' }, path);
    const r = await fetchGh(path, 'gzip');
    assert.equal(r.headers['content-length'], undefined, `${path}: no Content-Length (its length is not known ahead)`);
    assert.equal(r.headers['transfer-encoding'], 'chunked', path);
    assert.ok(varies(r), path);
  }
});

test('app: what a streaming app has sent reaches the client before the app is done (the encoder is flushed)', async () => {
  const marker = join(tmp, `go-on-${process.hrtime.bigint()}`);
  const u = new URL(gh.url);
  let text = '';
  let status = 0;
  let encoding: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: Number(u.port), path: `/wait?until=${encodeURIComponent(marker)}`, headers: { 'Accept-Encoding': 'br' }, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      encoding = res.headers['content-encoding'];
      const out = res.pipe(createBrotliDecompress());
      out.on('data', (c: Buffer) => (text += c.toString()));
      out.on('end', resolve);
      out.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  const firstArrived = await waitUntil(() => text.includes('first part'), 5000);
  writeFileSync(marker, ''); // let the app go on either way
  await done;
  assert.equal(status, 200);
  assert.equal(encoding, 'br');
  assert.ok(firstArrived, 'the first part arrived while the app was still waiting');
  assert.equal(text, 'first part '.repeat(200) + 'second part '.repeat(200));
});

test('app: a slow client of a big compressed stream does not hold up the worker (spooled before the encoder), and gets every byte', async () => {
  const mib = 16;
  const u = new URL(gh.url);
  const res = await new Promise<IncomingMessage>((resolve, reject) =>
    httpRequest({ host: u.hostname, port: Number(u.port), path: `/noise?mib=${mib}`, headers: { 'Accept-Encoding': 'gzip' }, agent: false }, resolve)
      .on('error', reject)
      .end(),
  );
  res.pause();
  assert.equal(res.headers['content-encoding'], 'gzip');
  // The app's only worker must be free again while this client reads nothing.
  const other = await get(gh.url, '/json?size=100');
  assert.equal(other.status, 200, 'the only worker answered while the first client read nothing');
  const hash = createHash('sha256');
  let received = 0;
  const gunzip = res.pipe(createGunzip());
  gunzip.on('data', (d: Buffer) => {
    received += d.length;
    hash.update(d);
  });
  res.resume();
  await new Promise((resolve, reject) => gunzip.on('end', resolve).on('error', reject));
  const expected = createHash('sha256');
  for (let i = 0; i < mib * 2 ** 15; i++) expected.update(createHash('sha256').update(String(i)).digest());
  assert.equal(received, mib * 2 ** 20);
  assert.equal(hash.digest('hex'), expected.digest('hex'), 'byte-exact after the spool and the encoder');
});

test('app: HTTP/1.0 gets a one-frame body compressed (with its length) but a streamed one as it is', async () => {
  const ask = async (target: string) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write(`GET ${target} HTTP/1.0\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n`);
      return await c.readResponse();
    } finally {
      c.close();
    }
  };
  const whole = await ask('/json');
  assert.equal(whole.header('content-encoding'), 'gzip');
  assert.equal(Number(whole.header('content-length')), whole.body.length);
  const streamed = await ask('/stream?chunks=100');
  assert.equal(streamed.status, 200);
  assert.equal(streamed.header('content-encoding'), undefined);
  assert.ok(streamed.body.toString().includes('chunk 99 of a streamed page'));
});

// ---------------------------------------------------------------- static files

test('static: text files are compressed from memory (with a length) and from disk (chunked), byte for byte', async () => {
  assert.deepEqual(await codingsFor('/static/style.css', ['br', 'gzip', 'gzip;q=1, br;q=0.9']), { br: 'br', gzip: 'gzip', 'gzip;q=1, br;q=0.9': 'gzip' });
  const css = await fetchGh('/static/style.css', 'br');
  assert.ok(decoded(css).equals(CSS));
  assert.equal(Number(css.headers['content-length']), css.raw.length, 'from memory: the compressed length is known');
  assert.match(String(css.headers['content-type']), /^text\/css/);
  assert.ok(varies(css));
  assert.deepEqual(await codingsFor('/static/big.json', ['br', 'gzip']), { br: 'br', gzip: 'gzip' });
  const big = await fetchGh('/static/big.json', 'gzip');
  assert.ok(decoded(big).equals(BIG_JSON));
  assert.equal(big.headers['transfer-encoding'], 'chunked', 'over 64 KiB: streamed from disk through the encoder');
});

test('static: images and small files are sent as they are; only compressible ones carry Vary', async () => {
  const png = await fetchGh('/static/logo.png', 'br, gzip');
  assert.equal(png.headers['content-encoding'], undefined);
  assert.ok(png.raw.equals(PNG));
  assert.ok(!varies(png));
  const small = await fetchGh('/static/small.txt', 'br, gzip');
  assert.equal(small.headers['content-encoding'], undefined);
  assert.ok(small.raw.equals(SMALL));
  assert.ok(!varies(small));
  const none = await fetchGh('/static/style.css', 'identity');
  assert.equal(none.headers['content-encoding'], undefined);
  assert.ok(none.raw.equals(CSS));
  assert.ok(varies(none), 'a compressible file varies even when sent as it is');
});

test('static: a Range is served from the original bytes, never compressed', async () => {
  const r = await get(gh.url, '/static/style.css', { 'Accept-Encoding': 'br, gzip', Range: 'bytes=100-199' });
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.headers['content-range'], `bytes 100-199/${CSS.length}`);
  assert.ok(r.raw.equals(CSS.subarray(100, 200)));
  assert.ok(varies(r));
});

test('static: HEAD is not compressed; a compressed response answers If-None-Match with 304', async () => {
  const head = await fetchGh('/static/style.css', 'br', 'HEAD');
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(head.headers['content-length'], String(CSS.length));
  assert.ok(varies(head));
  const full = await fetchGh('/static/style.css', 'br');
  const etag = String(full.headers.etag);
  const again = await get(gh.url, '/static/style.css', { 'Accept-Encoding': 'br', 'If-None-Match': etag });
  assert.equal(again.status, 304);
  assert.equal(again.raw.length, 0);
  assert.ok(varies(again), '304 keeps Vary');
});

// ---------------------------------------------------------------- settings

test('--compress gzip offers gzip only; --compress-min-size moves the threshold', async () => {
  await withServer([APP, '--compress', 'gzip', '--compress-min-size', '30k'], async (s) => {
    const small = await get(s.url, '/json?size=20000', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(small.headers['content-encoding'], undefined, 'under 30k: as it is');
    assert.ok(!varies(small));
    const big = await get(s.url, '/json?size=40000', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(big.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(big.raw).length, 40000);
    const brOnly = await get(s.url, '/json?size=40000', { 'Accept-Encoding': 'br' });
    assert.equal(brOnly.headers['content-encoding'], undefined, 'br is not offered');
  });
});

test('--compress off (compress = "off" in the file): nothing is compressed and nothing varies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-compress-off-'));
  const file = join(dir, 'gatehouse.toml');
  writeFileSync(file, 'compress = "off"\n');
  try {
    for (const args of [[APP, '--compress', 'off'], [APP, '--config', file]]) {
      await withServer(args, async (s) => {
        const r = await get(s.url, '/json', { 'Accept-Encoding': 'br, gzip' });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-encoding'], undefined, args.join(' '));
        assert.equal(r.raw.length, 20000);
        assert.ok(!varies(r));
        const streamed = await get(s.url, '/stream', { 'Accept-Encoding': 'gzip' });
        assert.equal(streamed.headers['content-encoding'], undefined);
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
