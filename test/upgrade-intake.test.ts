/**
 * Upgrade requests through the front's intake (src/front/request-intake.ts),
 * real gatehouse on loopback: an upgrade the front itself refuses (no route,
 * max_request_body, two Hosts) or that its app declines (a WSGI app) is
 * answered as any request, and a declined one's connection goes on with the
 * next request; one with a body is read again as an ordinary request; one
 * pipelined behind a request node:http reads waits for its answer (and a
 * CONNECT's 405 too); a WebSocket the app accepts gets its access log line (101)
 * when it closes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launchConfig, type Server } from './helpers/launch.js';
import { isAlive } from './helpers/processes.js';
import { RawConnection } from './helpers/raw-connection.js';
import { waitUntil } from './helpers/wait.js';
import { closed, nextMessage, opened } from './helpers/ws-client.js';

const APP = `${APPS}/asgi_websockets.py`;
const dir = mkdtempSync(join(tmpdir(), 'gh-upgrade-'));
const accessLog = join(dir, 'access.log');
let server: Server;

const CONFIG = `
workers = 1
python = "${SYSTEM_PYTHON}"
access_log = "${accessLog}"

[[listeners]]
bind = "127.0.0.1:0"

[apps.web]
app = "${APP}:wsgi_app"

[apps.live]
app = "${APP}:app"
interface = "asgi"

[[routes]]
path = "/web"
app = "web"
max_request_body = "1k"

[[routes]]
path = "/live"
app = "live"
`;

before(async () => {
  server = await launchConfig(dir, CONFIG, 2);
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const upgrade = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n`;

test('an upgrade the app declines is answered as any request, and the connection goes on', async () => {
  const c = await RawConnection.open(server.port);
  try {
    c.write(upgrade('/web/first'));
    const first = await c.readResponse();
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.body.toString()), { interface: 'wsgi', upgrade: 'websocket', connection: 'Upgrade', body: '' });
    c.write('GET /web/second HTTP/1.1\r\nHost: x\r\n\r\n');
    const second = await c.readResponse();
    assert.equal(second.status, 200);
    assert.deepEqual(JSON.parse(second.body.toString()), { interface: 'wsgi', upgrade: '', connection: '', body: '' });
    assert.equal(c.closed, false);
  } finally {
    c.close();
  }
});

test('an upgrade with Expect: 100-continue among other expectations gets its 100 as node:http gives any request, one with another expectation alone 417', async () => {
  const c = await RawConnection.open(server.port);
  try {
    c.write(upgrade('/web/x', 'Expect: 100-continue, foo\r\n'));
    assert.equal((await c.readResponse()).status, 100);
    assert.equal((await c.readResponse()).status, 200);
    c.write(upgrade('/web/x', 'Expect: foo\r\n'));
    assert.equal((await c.readResponse()).status, 417);
  } finally {
    c.close();
  }
});

test('an upgrade with a body (curl --http2 -d: a POST with Upgrade: h2c) is an ordinary request: the app reads the body, the connection goes on', async () => {
  const post = (path: string, framing: string, body: string) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n${framing}\r\n${body}`;
  const c = await RawConnection.open(server.port);
  try {
    // Both requests and the one after them in one write: nothing may be read as the next request too early.
    c.write(post('/web/sized', 'Content-Length: 7\r\n', 'a=1&b=2') + post('/web/chunked', 'Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\n\r\n') + 'GET /web/after HTTP/1.1\r\nHost: x\r\n\r\n');
    for (const body of ['a=1&b=2', 'abc']) {
      const answer = await c.readResponse();
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.body.toString()), { interface: 'wsgi', upgrade: 'h2c', connection: 'HTTP2-Settings', body });
    }
    const after = await c.readResponse();
    assert.equal(after.status, 200);
    assert.equal((JSON.parse(after.body.toString()) as { upgrade: string }).upgrade, '');
    assert.equal(c.closed, false);
  } finally {
    c.close();
  }
});

test('an upgrade pipelined behind a request node:http reads is handled once that answer is out (it used to crash the front)', async () => {
  const c = await RawConnection.open(server.port);
  try {
    // A repeated Connection header: read by node:http, not the fast path; the upgrade comes in the same write.
    c.write('POST /web/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + upgrade('/web/declined') + 'GET /web/after HTTP/1.1\r\nHost: x\r\n\r\n');
    for (const [body, upgraded, connection] of [['abc', '', 'keep-alive, keep-alive'], ['', 'websocket', 'Upgrade'], ['', '', '']]) {
      const answer = await c.readResponse();
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.body.toString()) as { body: string; upgrade: string }, { interface: 'wsgi', upgrade: upgraded, connection, body });
    }
    assert.equal(c.closed, false);
  } finally {
    c.close();
  }
  assert.ok(isAlive(server.pid), 'the front died');
});

test('a CONNECT pipelined behind a request node:http reads gets its 405 after that answer, not in place of it', async () => {
  const c = await RawConnection.open(server.port);
  try {
    c.write('POST /web/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const first = await c.readResponse();
    assert.equal(first.status, 200);
    assert.equal((JSON.parse(first.body.toString()) as { body: string }).body, 'abc');
    assert.equal((await c.readResponse()).status, 405);
  } finally {
    c.close();
  }
});

test('an upgrade the front refuses gets its status: no route 404, a body over max_request_body 413, two Hosts 400', async () => {
  for (const [request, status] of [
    [upgrade('/nowhere'), 404],
    [upgrade('/web/big', 'Content-Length: 5000\r\n'), 413],
    [upgrade('/live/echo', 'Host: y\r\n'), 400],
  ] as const) {
    const c = await RawConnection.open(server.port);
    try {
      c.write(request);
      assert.equal((await c.readResponse()).status, status, request);
    } finally {
      c.close();
    }
  }
});

test("an accepted WebSocket's access log line says 101 once it closes, with the client's address and headers", async () => {
  const headers = { Referer: 'http://example.test/chat', 'User-Agent': 'upgrade-intake/1' };
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/live/echo?logged=1`, { perMessageDeflate: false, headers });
  await opened(ws);
  ws.send('hi');
  assert.equal((await nextMessage(ws)).data.toString(), 'hi');
  ws.close();
  await closed(ws);
  const line = () => readFileSync(accessLog, 'utf8').split('\n').find((l) => l.includes('/live/echo?logged=1'));
  assert.ok(await waitUntil(() => line() !== undefined, 5000), 'no access log line');
  // Written at the close, from what the log kept of the request when the socket opened.
  assert.match(line()!, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/live\/echo\?logged=1 HTTP\/1\.1" 101 \S+ "http:\/\/example\.test\/chat" "upgrade-intake\/1"$/);
});
