/**
 * The static route's options beyond serving files: `cache_control`,
 * `expires`, `precompressed` siblings (FILE.br / FILE.gz), the `index` list,
 * `allow_outside_symlinks`; and the in-memory file cache (`static_cache`):
 * edits, new and deleted files show up within its validity window, 304s come
 * from it, and a file has the same validators from memory as from send.
 *
 * One gatehouse from a config file mounts the same root at several prefixes,
 * one per set of options.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { APPS } from './helpers/gatehouse.js';
import { launch, withServer, type Server } from './helpers/launch.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/basic.py:hello`;
const JS = Buffer.from(Array.from({ length: 120 }, (_, i) => `console.log('original app.js line ${i}');\n`).join(''));
/** The siblings say which file they are: a test can tell a sibling from compression on the fly. */
const JS_BR = Buffer.from('/* the app.js.br sibling */\n');
const JS_GZ = Buffer.from('/* the app.js.gz sibling */\n');
const CSS = Buffer.from(Array.from({ length: 80 }, (_, i) => `.only-gz-${i} { color: red; }\n`).join(''));
const CSS_GZ = Buffer.from('/* the only-gz.css.gz sibling */\n');
const OUTSIDE = 'a file outside the root\n';

let tmp = '';
let root = '';
let gh: Server;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gh-static-extras-'));
  root = join(tmp, 'public');
  mkdirSync(root);
  writeFileSync(join(root, 'app.js'), JS);
  writeFileSync(join(root, 'app.js.br'), brotliCompressSync(JS_BR));
  writeFileSync(join(root, 'app.js.gz'), gzipSync(JS_GZ));
  writeFileSync(join(root, 'only-gz.css'), CSS);
  writeFileSync(join(root, 'only-gz.css.gz'), gzipSync(CSS_GZ));
  writeFileSync(join(root, 'page.txt'), 'version 1\n');
  writeFileSync(join(tmp, 'outside.txt'), OUTSIDE);
  symlinkSync('../outside.txt', join(root, 'link.txt'));
  for (const [dir, files] of [['both', ['index.htm', 'index.html']], ['htmlonly', ['index.html']], ['none', []]] as const) {
    mkdirSync(join(root, dir));
    for (const f of files) writeFileSync(join(root, dir, f), `${dir}/${f}\n`);
  }
  const route = (path: string, options: string) => `[[routes]]\npath = "${path}"\nstatic = { root = "public"${options} }\n`;
  writeFileSync(
    join(tmp, 'gatehouse.toml'),
    [
      `app = ${JSON.stringify(APP)}\nworkers = 1\nbind = ["127.0.0.1:0"]\n`,
      route('/plain', ''),
      route('/cached', ', cache_control = "public, max-age=86400, immutable"'),
      route('/expires', ', expires = 3600'),
      route('/both', ', cache_control = "no-cache", expires = 60'),
      route('/nopre', ', precompressed = false'),
      route('/outside', ', allow_outside_symlinks = true'),
      route('/idx', ', index = ["index.htm", "index.html"]'),
      '[[routes]]\npath = "/"\napp = "main"\n',
    ].join('\n'),
  );
  gh = await launch(['--config', join(tmp, 'gatehouse.toml')], { workers: 1 });
});

after(async () => {
  await gh?.kill();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}, method = 'GET', base = gh.url): Promise<SimpleResponse> {
  return request(base, path, { headers, method });
}

function decoded(r: SimpleResponse): Buffer {
  const coding = r.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(r.raw);
  if (coding === 'gzip') return gunzipSync(r.raw);
  return r.raw;
}

/** waitUntil for an asynchronous check: polls it (one request at a time) until true or `ms` passes. */
async function waitUntilAsync(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

/** Seconds from the response's Date to its Expires. */
function expiresIn(r: SimpleResponse): number {
  return (Date.parse(String(r.headers.expires)) - Date.parse(String(r.headers.date))) / 1000;
}

/** A GET, then the responses it makes possible: HEAD, a range (send's path), a 304. */
async function variants(path: string): Promise<Record<string, SimpleResponse>> {
  const full = await get(path);
  return {
    full,
    head: await get(path, {}, 'HEAD'),
    range: await get(path, { Range: 'bytes=0-3' }),
    notModified: await get(path, { 'If-None-Match': String(full.headers.etag) }),
  };
}

// ---------------------------------------------------------------- cache headers

test('cache_control is the Cache-Control of every answer (200, HEAD, 206, 304); the default is send’s, without Expires', async () => {
  const got = await variants('/cached/page.txt');
  assert.deepEqual(Object.values(got).map((r) => r.status), [200, 200, 206, 304]);
  for (const [name, r] of Object.entries(got)) {
    assert.equal(r.headers['cache-control'], 'public, max-age=86400, immutable', name);
    assert.equal(r.headers.expires, undefined, name);
  }
  for (const [name, r] of Object.entries(await variants('/plain/page.txt'))) {
    assert.equal(r.headers['cache-control'], 'public, max-age=0', name);
    assert.equal(r.headers.expires, undefined, name);
  }
});

test('expires = 3600: Expires an hour after Date and Cache-Control max-age=3600, on every answer', async () => {
  for (const [name, r] of Object.entries(await variants('/expires/page.txt'))) {
    assert.equal(r.headers['cache-control'], 'public, max-age=3600', name);
    const ahead = expiresIn(r);
    assert.ok(ahead >= 3599 && ahead <= 3601, `${name}: Expires is ${ahead} s after Date`);
  }
});

test('expires with cache_control: Cache-Control is cache_control’s, Expires is still sent', async () => {
  const r = await get('/both/page.txt');
  assert.equal(r.headers['cache-control'], 'no-cache');
  const ahead = expiresIn(r);
  assert.ok(ahead >= 59 && ahead <= 61, `Expires is ${ahead} s after Date`);
});

// ---------------------------------------------------------------- precompressed

test('precompressed: the .br or .gz sibling the client prefers, with the original’s Content-Type and Vary', async () => {
  const cases: Array<[string, string, Buffer]> = [
    ['br', 'br', JS_BR],
    ['gzip', 'gzip', JS_GZ],
    ['gzip, deflate, br', 'br', JS_BR],
    ['br;q=0.5, gzip', 'gzip', JS_GZ],
    ['*', 'br', JS_BR],
  ];
  for (const [ae, coding, content] of cases) {
    const r = await get('/plain/app.js', { 'Accept-Encoding': ae });
    assert.equal(r.status, 200, ae);
    assert.equal(r.headers['content-encoding'], coding, ae);
    assert.ok(decoded(r).equals(content), `${ae}: the ${coding} sibling's content`);
    assert.match(String(r.headers['content-type']), /^(text|application)\/javascript/, ae);
    assert.equal(r.headers.vary, 'Accept-Encoding', ae);
    assert.equal(Number(r.headers['content-length']), r.raw.length, ae);
  }
  const onlyGz = await get('/plain/only-gz.css', { 'Accept-Encoding': 'br, gzip' });
  assert.equal(onlyGz.headers['content-encoding'], 'gzip', 'no .br sibling: the .gz one');
  assert.ok(decoded(onlyGz).equals(CSS_GZ));
  assert.match(String(onlyGz.headers['content-type']), /^text\/css/);
});

test('precompressed: no Accept-Encoding or identity gets the original; a Range is cut from the original; HEAD describes the sibling', async () => {
  for (const headers of [{}, { 'Accept-Encoding': 'identity' }, { 'Accept-Encoding': 'br;q=0, gzip;q=0' }] as Record<string, string>[]) {
    const r = await get('/plain/app.js', headers);
    assert.equal(r.headers['content-encoding'], undefined, JSON.stringify(headers));
    assert.ok(r.raw.equals(JS), JSON.stringify(headers));
  }
  const range = await get('/plain/app.js', { 'Accept-Encoding': 'br, gzip', Range: 'bytes=0-10' });
  assert.equal(range.status, 206);
  assert.equal(range.headers['content-encoding'], undefined);
  assert.equal(range.headers['content-range'], `bytes 0-10/${JS.length}`);
  assert.ok(range.raw.equals(JS.subarray(0, 11)));
  const head = await get('/plain/app.js', { 'Accept-Encoding': 'br' }, 'HEAD');
  assert.equal(head.headers['content-encoding'], 'br');
  assert.equal(Number(head.headers['content-length']), brotliCompressSync(JS_BR).length);
});

test('precompressed = false: the siblings are ignored, the original is served (compressed on the fly)', async () => {
  for (const ae of ['br', 'gzip']) {
    const r = await get('/nopre/app.js', { 'Accept-Encoding': ae });
    assert.equal(r.headers['content-encoding'], ae);
    assert.ok(decoded(r).equals(JS), `${ae}: the original app.js, not a sibling`);
  }
});

// ---------------------------------------------------------------- index, symlinks

test('index: the first of the list that exists; none → 403 (a directory that exists, never listed, as nginx)', async () => {
  const cases: Array<[string, number, string]> = [
    ['/idx/both/', 200, 'both/index.htm\n'],
    ['/idx/htmlonly/', 200, 'htmlonly/index.html\n'],
    ['/plain/both/', 200, 'both/index.html\n'],
    ['/idx/none/', 403, ''],
  ];
  for (const [path, status, body] of cases) {
    const r = await get(path);
    assert.equal(r.status, status, path);
    if (status === 200) assert.equal(r.raw.toString(), body, path);
  }
});

test('allow_outside_symlinks: a link out of the root is 404 by default, served when allowed', async () => {
  const denied = await get('/plain/link.txt');
  assert.equal(denied.status, 404);
  assert.ok(!denied.raw.toString().includes(OUTSIDE));
  const allowed = await get('/outside/link.txt');
  assert.equal(allowed.status, 200);
  assert.equal(allowed.raw.toString(), OUTSIDE);
});

// ---------------------------------------------------------------- the file cache

test('memory cache: an edited file (same size) shows up within the validity window; 304s follow the new validators', async () => {
  const path = '/plain/page.txt';
  const before = await get(path);
  assert.equal(before.raw.toString(), 'version 1\n');
  const oldTag = String(before.headers.etag);
  // A later mtime than the first write, whatever the clock's granularity.
  writeFileSync(join(root, 'page.txt'), 'version 2\n');
  let latest = before;
  const changed = await waitUntilAsync(async () => (latest = await get(path)).raw.toString() === 'version 2\n', 5000);
  assert.ok(changed, `still ${JSON.stringify(latest.raw.toString())} after 5 s`);
  const newTag = String(latest.headers.etag);
  assert.notEqual(newTag, oldTag, 'a new ETag');
  assert.equal((await get(path, { 'If-None-Match': newTag })).status, 304);
  assert.equal((await get(path, { 'If-Modified-Since': String(latest.headers['last-modified']) })).status, 304);
  const stale = await get(path, { 'If-None-Match': oldTag });
  assert.equal(stale.status, 200);
  assert.equal(stale.raw.toString(), 'version 2\n');
});

test('memory cache: a file that appears or goes away is noticed', async () => {
  const path = '/plain/appears.txt';
  assert.equal((await get(path)).status, 404);
  writeFileSync(join(root, 'appears.txt'), 'here now\n');
  const appeared = await waitUntilAsync(async () => (await get(path)).status === 200, 5000);
  assert.ok(appeared, 'the new file is served');
  unlinkSync(join(root, 'appears.txt'));
  const gone = await waitUntilAsync(async () => (await get(path)).status === 404, 5000);
  assert.ok(gone, 'the deleted file is 404');
});

test('a file has the same ETag and Last-Modified from memory as from send (a range)', async () => {
  const full = await get('/plain/only-gz.css');
  const range = await get('/plain/only-gz.css', { Range: 'bytes=0-9' });
  assert.equal(range.status, 206);
  assert.equal(range.headers.etag, full.headers.etag);
  assert.equal(range.headers['last-modified'], full.headers['last-modified']);
  const ifRange = await get('/plain/only-gz.css', { Range: 'bytes=0-9', 'If-Range': String(full.headers.etag) });
  assert.equal(ifRange.status, 206, 'If-Range with the ETag from memory');
});

test('--static-cache 0: files come from disk, an edit shows at once', async () => {
  const dir = join(tmp, 'nocache');
  mkdirSync(dir);
  writeFileSync(join(dir, 'f.txt'), 'one\n');
  await withServer([APP, '--static', `/s=${dir}`, '--static-cache', '0'], async (s) => {
    assert.equal((await get('/s/f.txt', {}, 'GET', s.url)).raw.toString(), 'one\n');
    writeFileSync(join(dir, 'f.txt'), 'two\n');
    assert.equal((await get('/s/f.txt', {}, 'GET', s.url)).raw.toString(), 'two\n');
  });
});
