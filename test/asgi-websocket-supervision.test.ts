/**
 * ASGI WebSockets and the supervisor, through a real gatehouse and the npm
 * `ws` client: a socket holds one of its worker's --max-concurrency slots;
 * on reload the old worker's sockets go on for --graceful-timeout, then the
 * client gets 1012 and new sockets reach the new worker; a worker that dies
 * closes its sockets with 1011; a graceful stop closes them with 1012.
 * Also the listeners: wss:// on a TLS listener (scheme wss) and a unix socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { APPS, hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { countMatches, launch, withServer } from './helpers/launch.js';
import { workerPidsFor } from './helpers/processes.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { closed, nextMessage, opened } from './helpers/ws-client.js';

const APP = `${APPS}/asgi_websockets.py:app`;
const ARGS = [APP, '--python', SYSTEM_PYTHON, '--interface', 'asgi', '--graceful-timeout', '1'];

async function echoes(ws: WebSocket, text: string): Promise<void> {
  ws.send(text);
  assert.equal((await nextMessage(ws)).data.toString(), text);
}

test('a WebSocket holds a --max-concurrency slot: the third waits until one closes (and --ws-per-message-deflate off)', async () => {
  await withServer([...ARGS, '--max-concurrency', '2', '--ws-per-message-deflate', 'off'], async (server) => {
    const base = server.url.replace(/^http/, 'ws');
    const a = new WebSocket(`${base}/echo`);
    const b = new WebSocket(`${base}/echo`);
    await Promise.all([opened(a), opened(b)]);
    assert.equal(a.extensions, '', 'permessage-deflate is off');
    const c = new WebSocket(`${base}/echo`);
    let open = false;
    c.on('open', () => (open = true));
    await sleep(500);
    assert.equal(open, false, 'the third socket opened while two held the worker');
    a.close();
    await opened(c);
    await echoes(c, 'third');
    for (const ws of [b, c]) ws.close();
  });
});

test('reload: the old worker\'s socket goes on, then gets 1012 after --graceful-timeout; new sockets reach the new worker', async () => {
  await withServer(ARGS, async (server) => {
    const base = server.url.replace(/^http/, 'ws');
    const old = new WebSocket(`${base}/echo`);
    await opened(old);
    const closing = closed(old, 10000);
    const [oldPid] = workerPidsFor(APP);
    server.proc.kill('SIGHUP');
    await server.waitFor(/Reload complete/);
    await echoes(old, 'still served by the old worker');
    assert.deepEqual(await closing, { code: 1012, reason: 'service restart' });
    const fresh = new WebSocket(`${base}/echo`);
    await opened(fresh);
    await echoes(fresh, 'new worker');
    fresh.close();
    await closed(fresh);
    await server.waitFor(new RegExp(`Worker \\(pid:${oldPid}\\) exited \\(reload\\)`), 5000);
  });
});

test('a worker that dies closes its sockets with 1011, and a new worker takes new ones', async () => {
  await withServer(ARGS, async (server) => {
    const base = server.url.replace(/^http/, 'ws');
    const ws = new WebSocket(`${base}/echo`);
    await opened(ws);
    const [pid] = workerPidsFor(APP);
    process.kill(pid!, 'SIGKILL');
    assert.equal((await closed(ws)).code, 1011);
    assert.ok(await waitUntil(() => countMatches(server.output(), /Booting worker with pid/) >= 2, 10000), 'a new worker booted');
    const again = new WebSocket(`${base}/echo`);
    await opened(again);
    await echoes(again, 'after the crash');
    again.close();
  });
});

test('a graceful stop closes open sockets with 1012 after --graceful-timeout, and exits 0', async () => {
  const server = await launch(ARGS);
  try {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/echo`);
    await opened(ws);
    const closing = closed(ws, 10000);
    const started = Date.now();
    server.proc.kill('SIGTERM');
    assert.equal((await closing).code, 1012);
    assert.ok(Date.now() - started >= 900, 'the socket was given --graceful-timeout');
    assert.equal((await server.exited()).code, 0);
  } finally {
    await server.kill();
  }
});

test('wss:// on a TLS listener (scope scheme wss), and ws+unix:// on a unix-socket listener (server [path, None])', { skip: !hasCommand('openssl') && 'openssl is not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-ws-tls-'));
  try {
    const crt = join(dir, 'ws.crt');
    const key = join(dir, 'ws.key');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const sock = join(dir, 'ws.sock');
    await withServer([...ARGS, '--certfile', crt, '--keyfile', key], async (server) => {
      const tls = new WebSocket(`wss://127.0.0.1:${server.port}/scope`, { rejectUnauthorized: false });
      await opened(tls);
      const scope = JSON.parse((await nextMessage(tls)).data.toString()) as { scheme: string };
      assert.equal(scope.scheme, 'wss');
      tls.close();
    });
    await withServer([...ARGS, '--bind', `unix:${sock}`], async () => {
      const unix = new WebSocket(`ws+unix://${sock}:/scope`);
      await opened(unix);
      const unixScope = JSON.parse((await nextMessage(unix)).data.toString()) as { scheme: string; server: unknown; client: unknown };
      assert.deepEqual(unixScope.server, [sock, null]);
      assert.equal(unixScope.client, null);
      unix.close();
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
