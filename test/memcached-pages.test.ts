/**
 * A route's `memcached` option (src/cache/memcached-pages.ts), against
 * Debian's memcached started here: pages the app put in memcached are served
 * from there, a miss goes to the app (test/apps/cache_origin.py, which
 * counts its calls), and so does every request once memcached is gone; a
 * client that leaves while memcached is asked gets nothing, logged as 499.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import memjs from 'memjs';
import { freePorts } from './helpers/back-ends.js';
import { APP, get } from './helpers/cache-origin.js';
import { accepts, calls } from './helpers/cache-stores.js';
import { hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { stopProcess } from './helpers/processes.js';
import { RawConnection } from './helpers/raw-connection.js';
import { sleep } from './helpers/wait.js';

describe("the memcached route option: pages the app put in memcached, the app on a miss", { skip: hasCommand('memcached') ? false : 'needs memcached (Debian package memcached)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-memcached-pages-'));
  let port = 0;
  let memcached: ChildProcess | null = null;
  let server: Server;
  let writer: memjs.Client;

  before(async () => {
    port = (await freePorts(1))[0]!;
    memcached = spawn('memcached', ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '16', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !(await accepts(port)); i++) await sleep(25);
    const config = join(dir, 'gatehouse.toml');
    writeFileSync(
      config,
      `python = "${SYSTEM_PYTHON}"
workers = 1
bind = ["127.0.0.1:0"]
app = "${APP}"
access_log = "-"

[[routes]]
path = "/"
app = "main"
memcached = { server = "127.0.0.1:${port}", key = "page:$uri" }
`,
    );
    server = await launch(['--config', config], { workers: 1 });
    writer = memjs.Client.create(`127.0.0.1:${port}`, { logger: { log: () => {} } });
  });

  after(async () => {
    writer?.close();
    await server?.kill();
    memcached?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('a client that leaves while memcached is asked: its page is not sent, and the line says 499', async () => {
    await writer.set('page:/left', Buffer.from('cached'), {});
    await stopProcess(memcached!);
    try {
      const c = await RawConnection.open(server.port);
      c.write('GET /left HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(50);
      c.close();
      await sleep(30);
    } finally {
      // Well before the lookup's deadline: memcached answers the page after the client has gone.
      memcached!.kill('SIGCONT');
    }
    await server.waitFor(/"GET \/left HTTP\/1\.1" 499 /, 3000);
    assert.equal(await calls(server, '/left'), 0);
  });

  test('a page in memcached is served from there; a miss goes to the app; memcached gone: the app', async () => {
    const miss = await get(server, '/article?x=1');
    assert.match(miss.body, /^GET \/article call 1 /);
    await writer.set('page:/article', Buffer.from('<h1>from memcached</h1>'), {});
    const hit = await get(server, '/article?x=1');
    assert.equal(hit.status, 200);
    assert.equal(hit.body, '<h1>from memcached</h1>');
    assert.equal(hit.headers['content-type'], 'text/html; charset=utf-8');
    const head = await get(server, '/article', {}, 'HEAD');
    assert.equal(head.headers['content-length'], String('<h1>from memcached</h1>'.length));
    assert.equal(head.body, '');
    const post = await get(server, '/article', {}, 'POST');
    assert.match(post.body, /^POST \/article call 2 /, 'only GET and HEAD look memcached up');
    memcached!.kill('SIGKILL');
    await sleep(100);
    const fallback = await get(server, '/article');
    assert.equal(fallback.status, 200);
    assert.match(fallback.body, /^GET \/article call 3 /);
    assert.equal(await calls(server, '/article'), 3);
  });
});
