/**
 * WebSockets of real frameworks through gatehouse: a Starlette
 * WebSocketRoute and a FastAPI websocket endpoint (Debian's
 * python3-starlette and python3-fastapi; skipped without them), with the
 * npm `ws` client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { closed, nextMessage, opened } from './helpers/ws-client.js';

const APP = `${APPS}/asgi_ws_frameworks.py`;

test('Starlette WebSocketRoute and FastAPI websocket endpoint', { skip: !(hasSystemModule('starlette') && hasSystemModule('fastapi')) && 'needs python3-starlette and python3-fastapi' }, async () => {
  await withServer([`${APP}:starlette_app`, '--python', SYSTEM_PYTHON], async (server) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/echo?name=ann`, ['chat']);
    await opened(ws);
    assert.equal(ws.protocol, 'chat');
    ws.send('hi');
    assert.equal((await nextMessage(ws)).data.toString(), 'starlette ann: hi');
    ws.close(4000);
    await closed(ws);
  });
  await withServer([`${APP}:fastapi_app`, '--python', SYSTEM_PYTHON], async (server) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/items/7/ws`);
    await opened(ws);
    ws.send(JSON.stringify({ q: 'tea' }));
    assert.deepEqual(JSON.parse((await nextMessage(ws)).data.toString()), { item: 7, got: { q: 'tea' } });
    assert.equal((await closed(ws)).code, 4321);
  });
});
