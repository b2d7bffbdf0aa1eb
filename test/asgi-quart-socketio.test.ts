/**
 * Two more ASGI stacks users run, through gatehouse as they would deploy
 * them: a Quart app (HTTP, a streamed upload, `before_serving` lifespan, a
 * WebSocket route) on two workers, and a python-socketio server (its
 * Engine.IO long-polling handshake and exchange over HTTP, then events with
 * acknowledgements over its WebSocket transport). Debian's python3-quart and
 * python3-socketio; skipped without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { closed, nextMessage, opened } from './helpers/ws-client.js';
import { connectPolling, polled, postWhilePolling } from './helpers/engineio-polling.js';

const APP = `${APPS}/asgi_quart_socketio.py`;

test('Quart: a page, a 300 KiB upload read by a worker whose before_serving ran, a WebSocket route', { skip: !hasSystemModule('quart') && 'needs python3-quart' }, async () => {
  await withServer([`${APP}:quart_app`, '--python', SYSTEM_PYTHON, '--workers', '2'], async (server) => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), 'hello from quart');
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${server.url}/upload`, { method: 'POST', body: Buffer.alloc(300 * 1024, 'q') });
      assert.equal(res.status, 200);
      const got = (await res.json()) as { length: number; started_in: number; pid: number };
      assert.equal(got.length, 300 * 1024);
      assert.equal(got.started_in, got.pid, 'lifespan startup ran in the worker that served');
    }
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/ws?name=ann`);
    await opened(ws);
    for (const text of ['hi', 'again']) {
      ws.send(text);
      assert.equal((await nextMessage(ws)).data.toString(), `quart ann: ${text}`);
    }
    ws.close(1000);
    assert.equal((await closed(ws)).code, 1000);
  });
});

test('python-socketio: long-polling handshake and connect over HTTP; events and acks over its WebSocket transport', { skip: !hasSystemModule('socketio') && 'needs python3-socketio' }, async () => {
  await withServer([`${APP}:socketio_app`, '--python', SYSTEM_PYTHON], async (server) => {
    // Long-polling: the open packet, the namespace connect sent by POST, its answer and the server's event by GET.
    const [open] = await polled(await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`));
    assert.deepEqual((JSON.parse(open!.slice(1)) as { upgrades: string[] }).upgrades, ['websocket']);
    const { packets } = await connectPolling(server.url, 2);
    // The connect handler's event goes out before the namespace's connect answer (python-socketio sends that once the handler returns).
    assert.deepEqual(packets.map((p) => p.slice(0, 2)), ['42', '40']);
    assert.equal(JSON.parse(packets[0]!.slice(2))[0], 'welcome');

    // The WebSocket transport on its own: each packet one message.
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
    await opened(ws);
    assert.match((await nextMessage(ws)).data.toString(), /^0\{"sid":/);
    ws.send('40');
    assert.equal(JSON.parse((await nextMessage(ws)).data.toString().slice(2))[0], 'welcome');
    assert.match((await nextMessage(ws)).data.toString(), /^40\{"sid":/);
    ws.send('421["ping",{"n":1}]');
    assert.deepEqual(JSON.parse((await nextMessage(ws)).data.toString().slice(3)), [{ pong: { n: 1 } }]);
    ws.send('42["shout","hey"]');
    assert.deepEqual(JSON.parse((await nextMessage(ws)).data.toString().slice(2)), ['heard', { text: 'HEY' }]);
    ws.close(1000);
    await closed(ws);
  });
});

test('--sticky: on two workers a pending long poll and the next POST, then the WebSocket upgrade, reach the worker holding the session', { skip: !hasSystemModule('socketio') && 'needs python3-socketio' }, async () => {
  await withServer([`${APP}:socketio_app`, '--python', SYSTEM_PYTHON, '--workers', '2', '--sticky'], async (server) => {
    for (let round = 0; round < 3; round++) {
      const { sid, poll } = await connectPolling(server.url, 2);
      assert.deepEqual(await postWhilePolling(poll, `42["shout","round ${round}"]`), [`42["heard",{"text":"ROUND ${round}"}]`]);

      // Engine.IO's upgrade: the probe, then the switch; the session's events now travel on the WebSocket.
      const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await opened(ws);
      ws.send('2probe');
      assert.equal((await nextMessage(ws)).data.toString(), '3probe');
      ws.send('5');
      ws.send('42["shout","upgraded"]');
      let reply = (await nextMessage(ws)).data.toString();
      if (reply === '6') reply = (await nextMessage(ws)).data.toString(); // a noop, which python-engineio may send here too
      assert.equal(reply, '42["heard",{"text":"UPGRADED"}]');
      ws.close(1000);
      await closed(ws);
    }
  });
});

/** GET /pid from the source address `from` (any 127.x.y.z is this machine's): the worker's pid. */
const pidFrom = async (url: string, from: string) => (await request(url, '/pid', { localAddress: from })).body;

test('--sticky: each client address is always served by the same worker, and addresses spread over the workers', { skip: !hasSystemModule('quart') && 'needs python3-quart' }, async () => {
  await withServer([`${APP}:quart_app`, '--python', SYSTEM_PYTHON, '--workers', '2', '--sticky'], async (server) => {
    const workerOf = new Map<string, string>();
    const ask = async (from: string) => {
      const pid = await pidFrom(server.url, from);
      assert.equal(workerOf.get(from) ?? pid, pid, `${from} stays with worker ${workerOf.get(from)}`);
      workerOf.set(from, pid);
    };
    const addresses = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);
    // One at a time (both workers idle: unsticky, the first would take them all), then all at once.
    for (let round = 0; round < 2; round++) for (const from of addresses) await ask(from);
    for (let round = 0; round < 3; round++) await Promise.all(addresses.map(ask));
    assert.equal(new Set(workerOf.values()).size, 2, 'both workers serve some of the addresses');

    // The replacement of a worker that died takes its slot: its clients move to it together, the others stay.
    const [gone, kept] = [...new Set(workerOf.values())] as [string, string];
    process.kill(Number(gone), 'SIGKILL');
    const before = new Map(workerOf);
    let replacement = gone;
    for (let i = 0; i < 100 && (replacement === gone || replacement === kept); i++) {
      await new Promise((r) => setTimeout(r, 100));
      replacement = await pidFrom(server.url, addresses.find((a) => before.get(a) === gone)!);
    }
    workerOf.clear();
    for (const from of addresses) await ask(from);
    for (const from of addresses) assert.equal(workerOf.get(from), before.get(from) === gone ? replacement : kept, from);
  });
});
