/**
 * The front gives V8's spare heap back once it has gone quiet after a burst
 * (src/idle-heap-trim.ts): after 2,000 WebSockets have opened and gone
 * silent, the debug log says the heap was trimmed; the sockets still echo,
 * the front still answers, and SIGTERM still stops it (an inspector session
 * closed from its own callback would hang the process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { nextMessage, opened } from './helpers/ws-client.js';

const SOCKETS = 2000;
const AT_ONCE = 50;

test('after a burst of WebSockets the quiet front trims its heap, and keeps serving and stopping', async () => {
  const gh = await launch([`${APPS}/asgi_websockets.py:app`, '--interface', 'asgi', '--python', SYSTEM_PYTHON, '--max-concurrency', '3000', '--log-level', 'debug']);
  const sockets: WebSocket[] = [];
  try {
    const base = gh.url.replace(/^http/, 'ws');
    for (let i = 0; i < SOCKETS; i += AT_ONCE) {
      const batch = Array.from({ length: AT_ONCE }, () => new WebSocket(`${base}/echo`));
      await Promise.all(batch.map((ws) => opened(ws)));
      sockets.push(...batch);
    }
    const trimmed = await gh.waitFor(/quiet: V8's heap trimmed from ([\d.]+) MB to ([\d.]+) MB/, 30000);
    assert.ok(Number(trimmed[2]) < Number(trimmed[1]), trimmed[0]);
    const last = sockets[sockets.length - 1]!;
    last.send('still here');
    assert.equal((await nextMessage(last)).data.toString(), 'still here');
    assert.equal((await request(gh.url, '/')).status, 200);
    for (const ws of sockets) ws.terminate();
    assert.equal(await gh.stop('SIGTERM', 15000), 0);
  } finally {
    for (const ws of sockets) ws.terminate();
    await gh.kill();
  }
});
