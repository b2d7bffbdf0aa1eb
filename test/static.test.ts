/**
 * `--static URL=DIR`: files served by the front itself, nginx-like, without
 * Python. Routing (longest prefix, segment boundaries, everything else to the
 * app), conditional requests (ETag, Last-Modified, 304), ranges (206, 416),
 * HEAD, Content-Type, index.html and the directory redirect, no listings
 * (403 for a directory without an index file, as nginx),
 * dotfiles, `..` traversal over raw sockets, symlinks, methods (405), the
 * access log, and bad --static values.
 *
 * The static tree is built once in a temp dir; one gatehouse (basic.py:hello,
 * which answers "hello\n" to anything) serves most tests.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch, runCli, withServer, type Server } from './helpers/launch.js';
import { RawConnection, type RawResponse } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const APP = `${APPS}/basic.py:hello`;
const HELLO = 'hello\n';

/** Markers that must never appear in a response: they live outside every static root. */
const SECRET = `TOP-SECRET-OUTSIDE-${randomBytes(6).toString('hex')}`;
const SIBLING_SECRET = `SIBLING-SECRET-${randomBytes(6).toString('hex')}`;
const DIR_SECRET = `OUTSIDE-DIR-SECRET-${randomBytes(6).toString('hex')}`;
const DOTENV = `SECRET_KEY=dotenv-${randomBytes(6).toString('hex')}`;
const GITCONFIG = `[core]\n\trepositoryformatversion = 0 ${randomBytes(6).toString('hex')}\n`;
const HIDDEN = `hidden-${randomBytes(6).toString('hex')}`;
const ALL_SECRETS = [SECRET, SIBLING_SECRET, DIR_SECRET, DOTENV, GITCONFIG, HIDDEN];

const CSS = 'body { color: red; }\n';
const JS = "console.log('hi');\n";
const HTML_INDEX = '<!doctype html><h1>docs index</h1>\n';
const HTML_PAGE = '<!doctype html><p>page</p>\n';
const JSON_TEXT = '{"a": 1}\n';
const README = 'just a readme\n';
const SPACE = 'a file with a space in its name\n';
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(64)]);
const BLOB = randomBytes(100 * 1024);
const FROM_ROOT = 'special/x.txt from the /static root\n';
const FROM_SPECIAL = 'x.txt from the /static/special mount\n';
const SPECIALFOO = 'specialfoo.txt from the /static root\n';
/** style.css's mtime, so Last-Modified is known exactly. */
const CSS_MTIME = new Date('2020-01-02T03:04:05Z');

let tmp = '';
/** The /static root. */
let root = '';
/** The /static/special root (a sibling of root, so `..` from it reaches tmp/secret.txt). */
let special = '';
/** A symlink to root, given as the /via-link root. */
let rootLink = '';
let accessLog = '';
let gh: Server;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gh-static-'));
  root = join(tmp, 'public');
  special = join(tmp, 'special');
  rootLink = join(tmp, 'public-link');
  accessLog = join(tmp, 'access.log');

  // Outside every root: next to it, in a sibling whose name starts with the root's, in another dir.
  writeFileSync(join(tmp, 'secret.txt'), SECRET);
  mkdirSync(join(tmp, 'public-evil'));
  writeFileSync(join(tmp, 'public-evil', 'secret.txt'), SIBLING_SECRET);
  mkdirSync(join(tmp, 'outside-dir'));
  writeFileSync(join(tmp, 'outside-dir', 'secret.txt'), DIR_SECRET);

  mkdirSync(root);
  writeFileSync(join(root, 'style.css'), CSS);
  utimesSync(join(root, 'style.css'), CSS_MTIME, CSS_MTIME);
  writeFileSync(join(root, 'app.js'), JS);
  writeFileSync(join(root, 'logo.png'), PNG);
  writeFileSync(join(root, 'data.json'), JSON_TEXT);
  writeFileSync(join(root, 'readme.txt'), README);
  writeFileSync(join(root, 'page.html'), HTML_PAGE);
  writeFileSync(join(root, 'blob.bin'), BLOB);
  writeFileSync(join(root, 'with space.txt'), SPACE);
  writeFileSync(join(root, 'café €.txt'), SPACE);
  writeFileSync(join(root, 'specialfoo.txt'), SPECIALFOO);
  mkdirSync(join(root, 'special'));
  writeFileSync(join(root, 'special', 'x.txt'), FROM_ROOT);
  mkdirSync(join(root, 'docs'));
  writeFileSync(join(root, 'docs', 'index.html'), HTML_INDEX);
  writeFileSync(join(root, 'docs', 'page.html'), HTML_PAGE);
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'empty', 'listed-if-listing.txt'), 'x');
  writeFileSync(join(root, '.env'), DOTENV);
  mkdirSync(join(root, '.git'));
  writeFileSync(join(root, '.git', 'config'), GITCONFIG);
  mkdirSync(join(root, 'sub'));
  writeFileSync(join(root, 'sub', '.hidden'), HIDDEN);
  writeFileSync(join(root, 'sub', 'visible.txt'), 'visible\n');

  // Symlinks inside the root.
  symlinkSync('style.css', join(root, 'link-inside.css'));
  symlinkSync('docs', join(root, 'linkdir-inside'));
  symlinkSync('../secret.txt', join(root, 'link-outside.txt'));
  symlinkSync(join(tmp, 'secret.txt'), join(root, 'link-outside-abs.txt'));
  symlinkSync(join(tmp, 'outside-dir'), join(root, 'linkdir-outside'));
  symlinkSync(join(tmp, 'public-evil', 'secret.txt'), join(root, 'link-sibling.txt'));
  symlinkSync('/etc/passwd', join(root, 'link-passwd.txt'));

  mkdirSync(special);
  writeFileSync(join(special, 'x.txt'), FROM_SPECIAL);
  symlinkSync(root, rootLink);

  gh = await launch([
    APP,
    '--workers',
    '1',
    // The shorter prefix first: the longest must win whatever the order.
    '--static',
    `/static=${root}`,
    '--static',
    `/static/special=${special}`,
    '--static',
    `/via-link=${rootLink}`,
    '--access-log',
    accessLog,
  ]);
});

after(async () => {
  await gh?.kill();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

function get(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(gh.url + path, { redirect: 'manual', ...init });
}

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

/** One request on its own raw connection, the target sent exactly as given (no normalisation). */
async function raw(target: string, method = 'GET', extra = ''): Promise<RawResponse> {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(`${method} ${target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${extra}\r\n`);
    return await c.readResponse(5000, { headRequest: method === 'HEAD' });
  } finally {
    c.close();
  }
}

function assertNoSecret(body: string | Buffer, what: string): void {
  const text = Buffer.isBuffer(body) ? body.toString('latin1') : body;
  for (const s of ALL_SECRETS) assert.ok(!text.includes(s), `${what} leaked a file it must not serve: ${JSON.stringify(text.slice(0, 200))}`);
  assert.ok(!/root:x?:0:0:/.test(text), `${what} leaked /etc/passwd`);
}

/** A 404 from the static handler: not the app's "hello\n", not a secret. */
async function assert404(path: string): Promise<void> {
  const res = await get(path);
  const body = await res.text();
  assertNoSecret(body, path);
  assert.equal(res.status, 404, `${path}: expected 404, got ${res.status}: ${JSON.stringify(body.slice(0, 200))}`);
  assert.notEqual(body, HELLO, `${path}: answered by the app, not the static handler`);
}

function contentType(res: Response): string {
  return res.headers.get('content-type') ?? '';
}

// ---------------------------------------------------------------- help

test('--help lists --static', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--static\b/);
});

// ---------------------------------------------------------------- routing

test('a file under the prefix is served from DIR, not by the app', async () => {
  const res = await get('/static/readme.txt');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), README);
  const css = await get('/static/style.css');
  assert.equal(css.status, 200);
  assert.equal(await css.text(), CSS);
});

test('paths outside every prefix still reach the WSGI app', async () => {
  for (const path of ['/', '/other', '/staticfoo', '/staticfoo/style.css', '/static.css', '/Static/style.css', '/x/static/style.css']) {
    const res = await get(path);
    assert.equal(res.status, 200, path);
    assert.equal(await res.text(), HELLO, `${path} should reach the app`);
  }
  // A POST outside the prefixes is the app's too.
  const post = await get('/staticfoo', { method: 'POST', body: 'data' });
  assert.equal(post.status, 200);
  assert.equal(await post.text(), HELLO);
});

test('the longest matching prefix wins, whatever the order on the command line', async () => {
  const res = await get('/static/special/x.txt');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), FROM_SPECIAL, '/static/special/x.txt comes from the /static/special mount');
  // `/static/special` matches on a segment boundary only: /static/specialfoo.txt is the /static root's.
  const foo = await get('/static/specialfoo.txt');
  assert.equal(foo.status, 200);
  assert.equal(await foo.text(), SPECIALFOO);
});

test('a query string is ignored when looking up the file', async () => {
  const res = await get('/static/style.css?v=123&x=%2F..');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), CSS);
});

test('percent-encoded file names are decoded', async () => {
  const res = await get('/static/with%20space.txt');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), SPACE);
});

test('a file name in raw UTF-8 in the target (as curl and scripts send it, unencoded) is served, as nginx does', async () => {
  // A string written to the socket goes out as UTF-8 bytes.
  const res = await raw('/static/café%20€.txt');
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), SPACE);
  assert.equal((await get('/static/caf%C3%A9%20%E2%82%AC.txt')).status, 200);
});

test('a method outside llhttp\'s table on a static file: 405, from the static handler', async () => {
  const res = await raw('/static/readme.txt', 'BREW');
  assert.equal(res.status, 405);
});

test('a missing file is a 404 from the static handler (not passed to the app)', async () => {
  await assert404('/static/missing.txt');
  await assert404('/static/no/such/dir/file.css');
  await assert404('/static/special/missing.txt');
});

test('a file path with a trailing slash is a 404', async () => {
  await assert404('/static/style.css/');
});

test('DIR given through a symlink to a directory serves its files', async () => {
  const res = await get('/via-link/style.css');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), CSS);
  const docs = await get('/via-link/docs/');
  assert.equal(docs.status, 200);
  assert.equal(await docs.text(), HTML_INDEX);
});

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

// ---------------------------------------------------------------- directories

test('a directory with a trailing slash serves its index.html', async () => {
  const res = await get('/static/docs/');
  assert.equal(res.status, 200);
  assert.match(contentType(res), /^text\/html/);
  assert.equal(await res.text(), HTML_INDEX);
  const page = await get('/static/docs/page.html');
  assert.equal(page.status, 200);
  assert.equal(await page.text(), HTML_PAGE);
});

test('a directory without a trailing slash → 301 to the slash form, under the URL prefix', async () => {
  const cases: Array<[string, string]> = [
    ['/static/docs', '/static/docs/'],
    ['/static/sub', '/static/sub/'],
    ['/static', '/static/'],
    ['/static/special', '/static/special/'],
    ['/via-link/docs', '/via-link/docs/'],
  ];
  const wrong: string[] = [];
  for (const [path, want] of cases) {
    const res = await get(path);
    const body = await res.text();
    const location = res.headers.get('location');
    const got = location === null ? null : new URL(location, gh.url + path).pathname;
    if (res.status !== 301 || got !== want) {
      wrong.push(`${path} → ${res.status} Location ${JSON.stringify(location)} ${JSON.stringify(body.slice(0, 60))} (want 301 to ${want})`);
    }
  }
  assert.deepEqual(wrong, [], `directory redirects:\n${wrong.join('\n')}`);
});

test('no directory listing: a directory without index.html → 403 Forbidden, as nginx without autoindex; one that does not exist → 404', async () => {
  for (const path of ['/static/empty/', '/static/', '/static/sub/', '/static/special/', '/via-link/empty/']) {
    const r = await raw(path);
    const body = r.body.toString('latin1');
    assert.equal(`${r.version} ${r.status} ${r.reason}`, 'HTTP/1.1 403 Forbidden', `${path}: ${JSON.stringify(body.slice(0, 200))}`);
    assert.ok(!body.includes('listed-if-listing') && !body.includes('visible.txt') && !body.includes('style.css'), `${path}: no listing`);
    assert.notEqual(body, HELLO, `${path}: answered by the app`);
  }
  assert.equal((await get('/static/empty/', { method: 'HEAD' })).status, 403);
  for (const path of ['/static/no-such-dir/', '/static/empty/no-such-dir/', '/static/no/such/dir/', '/static/style.css/']) await assert404(path);
  // Its name without the slash still gets the redirect first (nginx's 301 too).
  const bare = await get('/static/empty');
  assert.equal(bare.status, 301);
  assert.equal(new URL(bare.headers.get('location')!, gh.url).pathname, '/static/empty/');
  // The access log says what the client got.
  assert.equal((await raw('/static/empty/?dir-log=1')).status, 403);
  assert.equal((await raw('/static/no-such-dir/?dir-log=2')).status, 404);
  const lineFor = (target: string) => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').find((l) => l.includes(`"GET ${target} HTTP/1.1"`)) : undefined);
  assert.ok(await waitUntil(() => lineFor('/static/no-such-dir/?dir-log=2') !== undefined && lineFor('/static/empty/?dir-log=1') !== undefined, 3000), 'access log lines');
  assert.match(lineFor('/static/empty/?dir-log=1')!, /" 403 \d+ "/);
  assert.match(lineFor('/static/no-such-dir/?dir-log=2')!, /" 404 \d+ "/);
});

// ---------------------------------------------------------------- dotfiles

test('dotfiles and dot-directories → 404', async () => {
  for (const path of ['/static/.env', '/static/.git/config', '/static/.git/', '/static/.git', '/static/sub/.hidden', '/via-link/.env']) {
    await assert404(path);
  }
  // The same, with the dot percent-encoded (sent raw so nothing rewrites it).
  for (const target of ['/static/%2eenv', '/static/%2Egit/config', '/static/sub/%2ehidden']) {
    const r = await raw(target);
    assertNoSecret(r.body, target);
    assert.equal(r.status, 404, `${target}: expected 404, got ${r.status}`);
  }
});

// ---------------------------------------------------------------- traversal

/** Targets sent verbatim over a raw socket; each would reach a file outside its root if `..` were honoured. */
const TRAVERSALS = [
  '/static/../secret.txt',
  '/static/%2e%2e/secret.txt',
  '/static/%2E%2E/secret.txt',
  '/static/..%2fsecret.txt',
  '/static/..%2Fsecret.txt',
  '/static/%2e%2e%2fsecret.txt',
  '/static/.%2e/secret.txt',
  '/static/sub/../../secret.txt',
  '/static/sub/..%2f..%2fsecret.txt',
  '/static//../secret.txt',
  '/static/..%5csecret.txt',
  '/static/..\\secret.txt',
  '/static/%252e%252e/secret.txt',
  '/static/..%2fpublic-evil/secret.txt',
  '/static/..%2foutside-dir/secret.txt',
  '/static/special/../secret.txt',
  '/static/special/..%2fsecret.txt',
  '/static/special/%2e%2e/secret.txt',
  '/via-link/..%2fsecret.txt',
  '/static/..',
  '/static/%2e%2e',
  '/static/%2e%2e/',
  '/static//etc/passwd',
  '/static/%2fetc%2fpasswd',
  '/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
  '/static/..%2fsecret.txt%00.css',
];

test('`..` traversal (raw and encoded) never serves a file outside DIR', async () => {
  const leaks: string[] = [];
  for (const target of TRAVERSALS) {
    const r = await raw(target);
    const text = r.body.toString('latin1');
    if (ALL_SECRETS.some((s) => text.includes(s)) || /root:x?:0:0:/.test(text)) leaks.push(`${target} → ${r.status}`);
  }
  assert.deepEqual(leaks, [], `served a file outside the root for: ${leaks.join(', ')}`);
});

test('`..` traversal attempts are answered 400 or 404', async () => {
  const wrong: string[] = [];
  for (const target of TRAVERSALS) {
    const r = await raw(target);
    if (r.status !== 400 && r.status !== 404) wrong.push(`${target} → ${r.status} ${JSON.stringify(r.body.toString('latin1').slice(0, 60))}`);
  }
  assert.deepEqual(wrong, [], `expected 400 or 404:\n${wrong.join('\n')}`);
});

// ---------------------------------------------------------------- symlinks

test('a symlink inside DIR to a file or directory inside DIR works', async () => {
  const file = await get('/static/link-inside.css');
  assert.equal(file.status, 200);
  assert.equal(await file.text(), CSS);
  const dir = await get('/static/linkdir-inside/page.html');
  assert.equal(dir.status, 200);
  assert.equal(await dir.text(), HTML_PAGE);
});

test('a symlink inside DIR pointing outside DIR → 404', async () => {
  for (const path of [
    '/static/link-outside.txt',
    '/static/link-outside-abs.txt',
    '/static/linkdir-outside/secret.txt',
    '/static/linkdir-outside/',
    // Points into tmp/public-evil, whose name starts with the root's: a naive prefix check lets it through.
    '/static/link-sibling.txt',
    '/static/link-passwd.txt',
    '/via-link/link-outside.txt',
    '/via-link/link-sibling.txt',
  ]) {
    await assert404(path);
  }
  // HEAD must not reveal the size or type of the target either.
  const head = await get('/static/link-outside.txt', { method: 'HEAD' });
  assert.equal(head.status, 404);
});

// ---------------------------------------------------------------- methods

test('only GET and HEAD: POST, PUT, DELETE to a static path → 405 with Allow: GET, HEAD', async () => {
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const res = await get('/static/style.css', { method, body: method === 'DELETE' ? undefined : 'payload' });
    const body = await res.text();
    assert.equal(res.status, 405, `${method}: expected 405, got ${res.status}: ${JSON.stringify(body.slice(0, 100))}`);
    assert.notEqual(body, HELLO, `${method}: answered by the app`);
    assert.notEqual(body, CSS, `${method}: served the file`);
    const allow = res.headers.get('allow');
    assert.ok(allow, `${method}: Allow header`);
    const methods = allow.split(',').map((m) => m.trim().toUpperCase());
    assert.ok(methods.includes('GET') && methods.includes('HEAD'), `${method}: Allow ${JSON.stringify(allow)} lists GET and HEAD`);
    assert.ok(!methods.includes('POST'), `Allow ${JSON.stringify(allow)} does not list POST`);
  }
});

test('a 405 to a POST with a body leaves the connection usable', async () => {
  const c = await RawConnection.open(gh.port);
  try {
    const body = 'x'.repeat(500);
    c.write(`POST /static/readme.txt HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const r1 = await c.readResponse();
    assert.equal(r1.status, 405);
    if (r1.header('connection')?.toLowerCase() === 'close') return; // closing is acceptable too
    c.write('GET /static/readme.txt HTTP/1.1\r\nHost: test\r\n\r\n');
    const r2 = await c.readResponse();
    assert.equal(r2.status, 200, 'the body of the POST was not read as the next request');
    assert.equal(r2.body.toString(), README);
  } finally {
    c.close();
  }
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

// ---------------------------------------------------------------- a second server: relative DIR, busy worker

test('a relative DIR is resolved against the working directory, and static files do not wait for a busy worker', async () => {
  await withServer(
    [`${APPS}/pool_apps.py:sleepy`, '--workers', '1', '--static', '/rel=./public'],
    async (s) => {
      const ok = await request(s.url, '/rel/style.css');
      assert.equal(ok.status, 200);
      assert.equal(ok.body, CSS);
      // Occupy the only worker for 3 s; a static file must still come at once.
      const slow = request(s.url, '/sleep/3', { timeoutMs: 15000 });
      await new Promise((r) => setTimeout(r, 300));
      const during = await request(s.url, '/rel/blob.bin', { timeoutMs: 5000 });
      assert.equal(during.status, 200);
      assert.ok(during.ms < 1500, `static answered in ${during.ms} ms while the worker was busy`);
      const miss = await request(s.url, '/rel/missing.txt', { timeoutMs: 5000 });
      assert.equal(miss.status, 404);
      assert.ok(miss.ms < 1500, `static 404 answered in ${miss.ms} ms while the worker was busy`);
      const done = await slow;
      assert.equal(done.status, 200);
      assert.match(done.body, /^\/sleep\/3 \d+$/);
    },
    { cwd: tmp },
  );
});

// ---------------------------------------------------------------- bad values

/** The lines of stderr that gatehouse's error reporter wrote. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('gatehouse: '));
}

/** What is wrong with how gatehouse reports `--static VALUE` (an empty list when it is a clean config error). */
async function staticErrorProblems(value: string): Promise<string[]> {
  const r = await runCli([APP, '--bind', '127.0.0.1:0', '--workers', '1', '--static', value], { timeoutMs: 8000 });
  const v = `--static ${JSON.stringify(value)}`;
  if (r.timedOut) return [`${v}: accepted, the server started (killed after 8 s); output: ${JSON.stringify((r.stdout + r.stderr).split('\n')[0])}`];
  const problems: string[] = [];
  const lines = errorLines(r.stderr);
  if (r.code === 0 || r.code === null) problems.push(`${v}: exit ${r.code}, want non-zero`);
  if (lines.length !== 1) problems.push(`${v}: ${lines.length} gatehouse error lines, want 1; stderr: ${JSON.stringify(r.stderr)}`);
  else if (!lines[0]!.includes('--static')) problems.push(`${v}: the error does not name --static: ${lines[0]}`);
  if (r.stderr.trimEnd().split('\n').length !== 1) problems.push(`${v}: more than one line on stderr: ${JSON.stringify(r.stderr)}`);
  if (/^\s+at /m.test(r.stderr)) problems.push(`${v}: stack trace on stderr`);
  if (/Listening at/.test(r.stdout + r.stderr)) problems.push(`${v}: listened`);
  return problems;
}

test('bad --static values: one-line error naming --static, non-zero exit', async () => {
  const problems: string[] = [];
  for (const value of [
    'static', // no '='
    '/static', // no '='
    'static=./public', // URL does not start with '/'
    `static=${tmpdir()}`, // URL does not start with '/', DIR exists
    '/static=', // no DIR
    `/static=${join(tmpdir(), 'gh-static-does-not-exist-' + randomBytes(4).toString('hex'))}`, // DIR missing
  ]) {
    problems.push(...(await staticErrorProblems(value)));
  }
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('--static whose DIR is a file, not a directory: one-line error naming --static', async () => {
  const problems = await staticErrorProblems(`/static=${join(root, 'style.css')}`);
  assert.deepEqual(problems, [], problems.join('\n'));
});
