/**
 * What the static-file test files share (test/static-routing.test.ts,
 * static-responses, static-security): a static tree built in a temp dir
 * (files of every type, an index, dotfiles, symlinks in and out, secrets
 * outside every root that must never be served) and one gatehouse serving
 * it with `--static` next to basic.py:hello (which answers "hello\n" to
 * anything), started by serveStaticSite() before a file's tests and stopped
 * after them; and the clients the tests use.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './gatehouse.js';
import { launch, type Server } from './launch.js';
import { RawConnection, type RawResponse } from './raw-connection.js';

export const APP = `${APPS}/basic.py:hello`;
export const HELLO = 'hello\n';

/** Markers that must never appear in a response: they live outside every static root. */
export const SECRET = `TOP-SECRET-OUTSIDE-${randomBytes(6).toString('hex')}`;
export const SIBLING_SECRET = `SIBLING-SECRET-${randomBytes(6).toString('hex')}`;
export const DIR_SECRET = `OUTSIDE-DIR-SECRET-${randomBytes(6).toString('hex')}`;
export const DOTENV = `SECRET_KEY=dotenv-${randomBytes(6).toString('hex')}`;
export const GITCONFIG = `[core]\n\trepositoryformatversion = 0 ${randomBytes(6).toString('hex')}\n`;
export const HIDDEN = `hidden-${randomBytes(6).toString('hex')}`;
export const ALL_SECRETS = [SECRET, SIBLING_SECRET, DIR_SECRET, DOTENV, GITCONFIG, HIDDEN];

export const CSS = 'body { color: red; }\n';
export const JS = "console.log('hi');\n";
export const HTML_INDEX = '<!doctype html><h1>docs index</h1>\n';
export const HTML_PAGE = '<!doctype html><p>page</p>\n';
export const JSON_TEXT = '{"a": 1}\n';
export const README = 'just a readme\n';
export const SPACE = 'a file with a space in its name\n';
export const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(64)]);
export const BLOB = randomBytes(100 * 1024);
export const FROM_ROOT = 'special/x.txt from the /static root\n';
export const FROM_SPECIAL = 'x.txt from the /static/special mount\n';
export const SPECIALFOO = 'specialfoo.txt from the /static root\n';
/** style.css's mtime, so Last-Modified is known exactly. */
export const CSS_MTIME = new Date('2020-01-02T03:04:05Z');

export let tmp = '';
/** The /static root. */
export let root = '';
/** The /static/special root (a sibling of root, so `..` from it reaches tmp/secret.txt). */
export let special = '';
/** A symlink to root, given as the /via-link root. */
export let rootLink = '';
export let accessLog = '';
export let gh: Server;

/** Builds the tree and starts the server before the tests of the file that calls it; stops it and removes the tree after them. */
export function serveStaticSite(): void {
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
}

export function get(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(gh.url + path, { redirect: 'manual', ...init });
}

export async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

/** One request on its own raw connection, the target sent exactly as given (no normalisation). */
export async function raw(target: string, method = 'GET', extra = ''): Promise<RawResponse> {
  const c = await RawConnection.open(gh.port);
  try {
    c.write(`${method} ${target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${extra}\r\n`);
    return await c.readResponse(5000, { headRequest: method === 'HEAD' });
  } finally {
    c.close();
  }
}

export function assertNoSecret(body: string | Buffer, what: string): void {
  const text = Buffer.isBuffer(body) ? body.toString('latin1') : body;
  for (const s of ALL_SECRETS) assert.ok(!text.includes(s), `${what} leaked a file it must not serve: ${JSON.stringify(text.slice(0, 200))}`);
  assert.ok(!/root:x?:0:0:/.test(text), `${what} leaked /etc/passwd`);
}

/** A 404 from the static handler: not the app's "hello\n", not a secret. */
export async function assert404(path: string): Promise<void> {
  const res = await get(path);
  const body = await res.text();
  assertNoSecret(body, path);
  assert.equal(res.status, 404, `${path}: expected 404, got ${res.status}: ${JSON.stringify(body.slice(0, 200))}`);
  assert.notEqual(body, HELLO, `${path}: answered by the app, not the static handler`);
}

export function contentType(res: Response): string {
  return res.headers.get('content-type') ?? '';
}
