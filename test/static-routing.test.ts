/**
 * `--static URL=DIR` (test/helpers/static-site.ts): which requests the
 * front serves from which DIR, without Python: routing (longest prefix,
 * segment boundaries, everything else to the app), directories (index.html,
 * the redirect to the slash form, 403 without a listing), a relative DIR and
 * a busy worker, and bad --static values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { runCli, withServer } from './helpers/launch.js';
import { request } from './helpers/request.js';
import {
  accessLog,
  APP,
  assert404,
  contentType,
  CSS,
  FROM_SPECIAL,
  get,
  gh,
  HELLO,
  HTML_INDEX,
  HTML_PAGE,
  raw,
  README,
  root,
  serveStaticSite,
  SPACE,
  SPECIALFOO,
  tmp,
} from './helpers/static-site.js';
import { waitUntil } from './helpers/wait.js';

serveStaticSite();

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
