/**
 * What static files never serve (test/helpers/static-site.ts): dotfiles,
 * `..` traversal (raw and encoded, over raw sockets), symlinks that lead out
 * of DIR, and methods other than GET and HEAD (405).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawConnection } from './helpers/raw-connection.js';
import { ALL_SECRETS, assert404, assertNoSecret, CSS, get, gh, HELLO, HTML_PAGE, raw, README, serveStaticSite } from './helpers/static-site.js';

serveStaticSite();

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
