/**
 * ASGI WebSockets through a real gatehouse, with raw apps of our own
 * (test/apps/asgi_websockets.py) and the npm `ws` client (Debian's
 * python3-websockets too): echo of text and bytes, the subprotocol and the
 * accept headers, the scope, the denial response, 403 for a close before
 * accept, 500 and 1011 for failures, close codes both ways, 1009 past
 * ws_max_size, permessage-deflate, pings, backpressure both ways, many
 * sockets on one worker, and a WSGI route that serves an upgrade request as
 * any other. Supervision (1012 on reload and stop, 1011 when a worker dies)
 * is in asgi-websocket-supervision.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, launchConfig, runCli, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';
import { closed, denied, nextMessage, opened } from './helpers/ws-client.js';

const APP = `${APPS}/asgi_websockets.py`;
const dir = mkdtempSync(join(tmpdir(), 'gh-asgi-ws-'));
let server: Server;
let base: string;

const CONFIG = `
workers = 1
python = "${SYSTEM_PYTHON}"
keepalive_timeout = 1
ws_ping_interval = 0.3
ws_ping_timeout = 0.6
ws_max_size = "1m"

[[listeners]]
bind = "127.0.0.1:0"

[apps.web]
app = "${APP}:wsgi_app"

[apps.live]
app = "${APP}:app"
interface = "asgi"

[[routes]]
path = "/"
app = "web"

[[routes]]
path = "/live"
app = "live"
`;

before(async () => {
  server = await launchConfig(dir, CONFIG, 2);
  base = server.url.replace(/^http/, 'ws');
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function appLog(): Promise<{ disconnects: Array<[number, string]>; sent: number; open: number }> {
  const r = await request(server.url, '/live/log');
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as { disconnects: Array<[number, string]>; sent: number; open: number };
}

test('echo: text and bytes come back as they went, the app picks the subprotocol and adds accept headers', async () => {
  let headers: Record<string, unknown> = {};
  const ws = new WebSocket(`${base}/live/echo`, ['other', 'chat']);
  ws.on('upgrade', (res) => (headers = res.headers));
  await opened(ws);
  assert.equal(ws.protocol, 'chat');
  assert.equal(headers['x-accepted-by'], 'gatehouse-test');
  ws.send('héllo wörld');
  let m = await nextMessage(ws);
  assert.equal(m.binary, false);
  assert.equal(m.data.toString('utf8'), 'héllo wörld');
  const bytes = Buffer.from([0, 1, 2, 255, 254]);
  ws.send(bytes);
  m = await nextMessage(ws);
  assert.equal(m.binary, true);
  assert.deepEqual(m.data, bytes);
  ws.close(1000);
  assert.equal((await closed(ws)).code, 1000);
});

test('a cached route passes WebSockets on to its app (--cache)', async () => {
  const cached = await launch([`${APP}:app`, '--interface', 'asgi', '--python', SYSTEM_PYTHON, '--cache', '1m'], { workers: 1 });
  try {
    const ws = new WebSocket(`${cached.url.replace(/^http/, 'ws')}/echo`, ['chat']);
    await opened(ws);
    ws.send('through the cache');
    assert.equal((await nextMessage(ws)).data.toString(), 'through the cache');
    ws.close(1000);
    assert.equal((await closed(ws)).code, 1000);
  } finally {
    await cached.stop();
  }
});

test('no subprotocol offered: none chosen; permessage-deflate is taken when offered and compresses a large message', async () => {
  const ws = new WebSocket(`${base}/live/echo`);
  await opened(ws);
  assert.equal(ws.protocol, '');
  assert.match(ws.extensions, /permessage-deflate/);
  const big = 'abc'.repeat(200_000);
  ws.send(big);
  const m = await nextMessage(ws);
  assert.equal(m.data.toString(), big);
  // The echo came back compressed: far fewer bytes on the wire than the message.
  assert.ok((ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead < big.length / 10);
  ws.close();
  await closed(ws);
});

test('the WebSocket scope: type, asgi 2.4, ws scheme, path under the mount, raw_path, query, headers, subprotocols, extensions', async () => {
  const ws = new WebSocket(`${base}/live/scope?room=caf%C3%A9&x=1`, ['a', 'b']);
  await opened(ws);
  const scope = JSON.parse((await nextMessage(ws)).data.toString()) as Record<string, unknown>;
  await closed(ws);
  assert.equal(scope.type, 'websocket');
  assert.deepEqual(scope.asgi, { version: '3.0', spec_version: '2.4' });
  assert.equal(scope.http_version, '1.1');
  assert.equal(scope.scheme, 'ws');
  assert.equal(scope.path, '/live/scope');
  assert.equal(scope.root_path, '/live');
  assert.equal(scope.raw_path, '/live/scope');
  assert.equal(scope.query_string, 'room=caf%C3%A9&x=1');
  assert.deepEqual(scope.subprotocols, ['a', 'b']);
  assert.deepEqual(scope.extensions, { 'websocket.http.response': {} });
  assert.equal((scope.client as unknown[])[0], '127.0.0.1');
  assert.deepEqual(scope.server, ['127.0.0.1', server.port]);
  assert.ok(!('method' in scope));
  const headers = scope.headers as Array<[string, string]>;
  assert.ok(headers.some(([n, v]) => n === 'upgrade' && v === 'websocket'));
  assert.ok(headers.some(([n]) => n === 'sec-websocket-key'));
  assert.ok(headers.every(([n]) => n === n.toLowerCase()));
});

test('the denial extension: the client gets the app\'s HTTP response, status, headers and body', async () => {
  const r = await denied(`${base}/live/deny`);
  assert.equal(r.status, 401);
  assert.equal(r.headers['www-authenticate'], 'Token');
  assert.equal(r.body, 'no entry without a token');
});

test('a close before accept is a 403; an exception before accept a 500; after accept the socket closes with 1011', async () => {
  assert.equal((await denied(`${base}/live/reject`)).status, 403);
  assert.equal((await denied(`${base}/live/boom-early`)).status, 500);
  const ws = new WebSocket(`${base}/live/boom-late`);
  await opened(ws);
  ws.send('go');
  assert.equal((await closed(ws)).code, 1011);
  assert.match(server.output(), /RuntimeError: failed after accepting/);
});

test('close codes both ways: the app\'s code and reason reach the client, the client\'s reach the app', async () => {
  const ws = new WebSocket(`${base}/live/echo`);
  await opened(ws);
  ws.send('close 4001 see you');
  assert.deepEqual(await closed(ws), { code: 4001, reason: 'see you' });
  const ws2 = new WebSocket(`${base}/live/echo`);
  await opened(ws2);
  ws2.close(4002, 'ciao');
  await closed(ws2);
  await sleep(100);
  const log = await appLog();
  assert.deepEqual(log.disconnects.slice(-2), [[4001, 'see you'], [4002, 'ciao']]);
});

test('a client gone while the app decides: the app\'s receive() says websocket.disconnect 1006, and nothing is logged as an error', async () => {
  const ws = new WebSocket(`${base}/live/slow-accept`);
  ws.on('error', () => {});
  await sleep(100);
  ws.terminate();
  await sleep(800);
  assert.deepEqual((await appLog()).disconnects.at(-1), [1006, '']);
  assert.doesNotMatch(server.output(), /slow-accept.*(Traceback|ERROR)|ERROR.*slow-accept/);
});

test('an app that returns: before accepting, a 500 and a log line; after accepting, the socket closes with 1000', async () => {
  assert.equal((await denied(`${base}/live/silent`)).status, 500);
  await server.waitFor(/the app returned without accepting or closing the WebSocket/, 2000);
  const ws = new WebSocket(`${base}/live/bye`);
  const message = nextMessage(ws);
  await opened(ws);
  assert.equal((await message).data.toString(), 'bye');
  assert.equal((await closed(ws)).code, 1000);
});

test('a close code the app may not send (1005): the client gets 1011 and the error log says why', async () => {
  const ws = new WebSocket(`${base}/live/bad-close`);
  await opened(ws);
  assert.equal((await closed(ws)).code, 1011);
  await server.waitFor(/bad-close: the app closed its WebSocket with a code or reason RFC 6455 does not allow/, 2000);
});

test('a message over ws_max_size is refused with 1009, and the app hears 1009', async () => {
  const ws = new WebSocket(`${base}/live/echo`);
  await opened(ws);
  ws.send(Buffer.alloc(1024 * 1024 + 1));
  assert.equal((await closed(ws)).code, 1009);
  await sleep(100);
  assert.deepEqual((await appLog()).disconnects.at(-1), [1009, '']);
});

test('pings: a client that answers stays open past keepalive_timeout; one that never answers is cut after ws_ping_timeout', async () => {
  const live = new WebSocket(`${base}/live/echo`);
  const mute = new WebSocket(`${base}/live/echo`, { autoPong: false });
  let pings = 0;
  live.on('ping', () => pings++);
  await Promise.all([opened(live), opened(mute)]);
  const muteClosed = closed(mute);
  await sleep(1800);
  assert.ok(pings >= 3, `pings seen: ${pings}`);
  live.send('still here');
  assert.equal((await nextMessage(live)).data.toString(), 'still here');
  assert.equal((await muteClosed).code, 1006);
  live.close();
  await closed(live);
});

test('a front held up past ws_ping_timeout (a stalled machine, a stopped process) does not cut a socket whose pong waits unread', async () => {
  const ws = new WebSocket(`${base}/live/echo`, { autoPong: false });
  await opened(ws);
  // Stopped right after a ping goes out; the pong then waits in the front's socket until it runs again.
  await new Promise<void>((resolve) => ws.once('ping', () => resolve()));
  process.kill(server.pid, 'SIGSTOP');
  ws.pong();
  ws.on('ping', () => ws.pong());
  await sleep(2000);
  process.kill(server.pid, 'SIGCONT');
  await sleep(1000);
  assert.equal(ws.readyState, WebSocket.OPEN);
  ws.send('still here');
  assert.equal((await nextMessage(ws)).data.toString(), 'still here');
  ws.close();
  await closed(ws);
});

test('receive and send wrapped by a middleware (functools.wraps, as tracing middleware do): echo works through them', async () => {
  const ws = new WebSocket(`${base}/live/wrapped`);
  await opened(ws);
  ws.send('through');
  assert.equal((await nextMessage(ws)).data.toString(), 'through');
  ws.close(1000);
  assert.equal((await closed(ws)).code, 1000);
});

test('receive() in a task of its own, and cancelled by a timeout while it waits, as apps use it: the messages still come in order', async () => {
  const ws = new WebSocket(`${base}/live/tasked`);
  await opened(ws);
  assert.equal((await nextMessage(ws)).data.toString(), 'timed out');
  ws.send('a');
  assert.equal((await nextMessage(ws)).data.toString(), 'got a');
  ws.send('b');
  assert.equal((await nextMessage(ws)).data.toString(), 'got b');
  ws.close(1000);
  assert.equal((await closed(ws)).code, 1000);
  await sleep(100);
  assert.deepEqual((await appLog()).disconnects.at(-1), [1000, '']);
});

test('a silent socket lets its frame parser go and makes one again: a frame or a message in pieces across the silence still arrives whole', async () => {
  // The sweep (every 150 ms here) lets a socket's parser go once it was silent since the last sweep with nothing under way.
  const ws = new WebSocket(`${base}/live/echo`, { perMessageDeflate: false });
  await opened(ws);
  await sleep(700);
  ws.send('after the silence');
  assert.equal((await nextMessage(ws)).data.toString(), 'after the silence');
  // One message in two frames, the silence between them.
  ws.send('first half, ', { fin: false });
  await sleep(700);
  ws.send('second half', { fin: true });
  assert.equal((await nextMessage(ws)).data.toString(), 'first half, second half');
  ws.close(4000, 'done');
  assert.equal((await closed(ws)).code, 4000);
  await sleep(100);
  assert.deepEqual((await appLog()).disconnects.at(-1), [4000, 'done']);
  // One frame in two writes, a silence of more than two sweeps inside its header (written by hand: with
  // no pong of the client's between them, it must be over before ws_ping_timeout).
  const quiet = new WebSocket(`${base}/live/echo`, { perMessageDeflate: false, autoPong: false });
  await opened(quiet);
  const payload = Buffer.from('split frame');
  const mask = Buffer.from([1, 2, 3, 4]);
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
  const raw = (quiet as unknown as { _socket: import('node:net').Socket })._socket;
  raw.write(frame.subarray(0, 3));
  await sleep(400);
  raw.write(frame.subarray(3));
  assert.equal((await nextMessage(quiet)).data.toString(), 'split frame');
  quiet.terminate();
});

test('an app that does not read: the front stops reading the client (its send buffer stays full)', async () => {
  const ws = new WebSocket(`${base}/live/deaf`, { perMessageDeflate: false });
  await opened(ws);
  const chunk = Buffer.alloc(512 * 1024);
  for (let i = 0; i < 128; i++) ws.send(chunk); // 64 MiB
  await sleep(1500);
  // Without backpressure the front would take it all and the client's buffer would be empty.
  assert.ok(ws.bufferedAmount > 32 * 1024 * 1024, `client still holds ${ws.bufferedAmount} bytes`);
  ws.terminate();
});

test('a client that does not read: the app\'s send() waits (it does not push everything to the front)', async () => {
  const before = (await appLog()).sent;
  const ws = new WebSocket(`${base}/live/firehose`, { perMessageDeflate: false });
  await opened(ws);
  ws.pause();
  await sleep(1500);
  const sent = (await appLog()).sent - before;
  ws.terminate();
  assert.ok(sent > 0, 'the app sent something');
  assert.ok(sent < 24 * 1024 * 1024, `the app got ${sent} bytes through to a client that reads nothing`);
});

test('many sockets at once on one worker', async () => {
  const sockets = Array.from({ length: 300 }, () => new WebSocket(`${base}/live/echo`, { perMessageDeflate: false }));
  await Promise.all(sockets.map((ws) => opened(ws)));
  // The app counts a socket once its accept has gone out, which can be just after the client saw it.
  let open = 0;
  for (const deadline = Date.now() + 5000; open < 300 && Date.now() < deadline; await sleep(50)) open = (await appLog()).open;
  assert.ok(open >= 300, `the app holds all 300 sockets open at once: ${open}`);
  const answers = await Promise.all(
    sockets.map(async (ws, i) => {
      ws.send(`n${i}`);
      return (await nextMessage(ws)).data.toString();
    }),
  );
  assert.deepEqual(answers, sockets.map((_, i) => `n${i}`));
  for (const ws of sockets) ws.close();
  await Promise.all(sockets.map((ws) => closed(ws)));
});

test('an upgrade request to a WSGI app is served as an ordinary request', async () => {
  const r = await denied(`${base}/hello`);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { interface: 'wsgi', upgrade: 'websocket', connection: 'Upgrade', body: '' });
});

test('a malformed handshake gets 400 before the app hears of it', async () => {
  const r = await request(server.url, '/live/echo', { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } });
  assert.equal(r.status, 400);
  assert.match(r.body, /Sec-WebSocket-Key/);
});

test('python3-websockets as the client: echo and the subprotocol', { skip: !hasSystemModule('websockets') && 'needs python3-websockets' }, () => {
  const script = `
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], subprotocols=["chat"]) as ws:
        await ws.send("from python")
        text = await ws.recv()
        await ws.send(b"\\x00\\x01")
        data = await ws.recv()
        print(ws.subprotocol, text, data.hex())
asyncio.run(main())
`;
  const r = spawnSync(SYSTEM_PYTHON, ['-c', script, `${base}/live/echo`], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'chat from python 0001');
});

test('bad WebSocket settings: exit 1 naming the flag and the value', async () => {
  const r = await runCli([APP + ':app', '--python', SYSTEM_PYTHON, '--ws-max-size', 'lots', '--ws-per-message-deflate', 'maybe', '--check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--ws-max-size: must be a size .*\(got "lots"\)/);
  assert.match(r.stderr, /--ws-per-message-deflate: must be true, false, on or off \(got "maybe"\)/);
});
