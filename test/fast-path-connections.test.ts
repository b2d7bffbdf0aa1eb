/**
 * Connections on the front's own reader (src/front/fast-path.ts) on a real
 * gatehouse (test/helpers/fast-path-site.ts): keep-alive between static and
 * app answers, split heads, HEAD, 304, Range and gzip, Connection: close,
 * half-close, a client that does not read, the timeouts, the access log,
 * SIGTERM, and an app's heads byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { APPS } from './helpers/gatehouse.js';
import { BIG, CSS, dir, get, gh, serveFastPathSite, served, TEXT, withConnection } from './helpers/fast-path-site.js';
import { countMatches, launch } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { sleep, waitUntil } from './helpers/wait.js';

serveFastPathSite();

test('static requests before and after an app request on one keep-alive connection', async () => {
  await withConnection(async (c) => {
    for (const path of ['/static/a.txt', '/static/a.txt', '/two', '/static/a.txt']) {
      c.write(get(path));
      const res = await c.readResponse();
      assert.equal(served(res), path === '/two' ? 'app:/two' : TEXT);
      assert.equal(res.header('connection'), 'keep-alive');
      assert.equal(res.header('keep-alive'), 'timeout=1');
      assert.match(res.header('date') ?? '', /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    }
  });
});

test('a head split over two writes, and two requests split mid-head: both answered', async () => {
  await withConnection(async (c) => {
    const two = get('/static/a.txt') + get('/static/a.txt');
    c.write(two.slice(0, 10));
    await sleep(100);
    c.write(two.slice(10, 60));
    await sleep(100);
    c.write(two.slice(60));
    assert.equal(served(await c.readResponse()), TEXT);
    assert.equal(served(await c.readResponse()), TEXT);
  });
});

test('HEAD: the GET headers without a body, and the connection goes on', async () => {
  await withConnection(async (c) => {
    c.write(`HEAD /static/a.txt HTTP/1.1\r\nHost: test\r\n\r\n`);
    const head = await c.readResponse(5000, { headRequest: true });
    assert.equal(head.status, 200);
    assert.equal(head.header('content-length'), String(TEXT.length));
    c.write(get('/static/a.txt'));
    const res = await c.readResponse();
    assert.equal(served(res), TEXT);
    assert.equal(res.header('etag'), head.header('etag'));
  });
});

test('If-None-Match with the ETag: 304 without a body', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt'));
    const etag = (await c.readResponse()).header('etag')!;
    c.write(get('/static/a.txt', `If-None-Match: ${etag}\r\n`));
    const res = await c.readResponse();
    assert.equal(res.status, 304);
    assert.equal(res.header('etag'), etag);
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
  });
});

test('the same request asked again with Range, or another Accept-Encoding, gets its own answer (206, gzip), not the one before', async () => {
  await withConnection(async (c) => {
    for (let i = 0; i < 3; i++) {
      c.write(get('/static/site.css'));
      const res = await c.readResponse();
      assert.equal(res.body.toString(), CSS);
      assert.equal(res.header('content-encoding'), undefined);
    }
    c.write(get('/static/site.css', 'Accept-Encoding: gzip\r\n'));
    const zipped = await c.readResponse();
    assert.equal(zipped.header('content-encoding'), 'gzip');
    assert.equal(gunzipSync(zipped.body).toString(), CSS);
    assert.equal(zipped.header('vary'), 'Accept-Encoding');
    // Last: node:http answers ranges, and keeps the connection from then on.
    c.write(get('/static/site.css', 'Range: bytes=0-5\r\n'));
    const part = await c.readResponse();
    assert.equal(part.status, 206);
    assert.equal(part.body.toString(), CSS.slice(0, 6));
  });
});

test('Connection: close: answered with Connection: close, then the server closes; later pipelined bytes are ignored', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt', 'Connection: close\r\n') + get('/static/a.txt'));
    const res = await c.readResponse();
    assert.equal(served(res), TEXT);
    assert.equal(res.header('connection'), 'close');
    await c.waitClosed(3000);
    assert.equal(c.pending.length, 0);
  });
});

test('a client that half-closes after its request still gets the answer', async () => {
  await withConnection(async (c) => {
    c.socket.end(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    await c.waitClosed(3000);
  });
});

test('a client that pipelines 100 requests for a 60 KiB file and reads late gets all 100, whole and in order', async () => {
  await withConnection(async (c) => {
    const paths = Array.from({ length: 100 }, (_, i) => (i % 10 === 5 ? `/app-${i}` : '/static/big.bin'));
    c.write(paths.map((p) => get(p)).join(''));
    await sleep(300);
    for (const p of paths) {
      const res = await c.readResponse(10_000);
      if (p.startsWith('/app')) assert.equal(served(res), `app:${p}`);
      else assert.ok(res.body.equals(BIG), `${p}: ${res.body.length} bytes`);
    }
  });
});

test('a client that pipelines app requests and reads none of the answers: no more are read once its socket is backed up; all are answered once it reads', async () => {
  const n = 40_000;
  const client = connect(gh.port, '127.0.0.1');
  await once(client, 'connect');
  client.pause();
  // Its 40,000 answers (about 1.5 KB each, the app's environ) are far more than the kernel's buffers hold.
  client.write(Array.from({ length: n }, (_, i) => get(`/flood-${i}`)).join(''));
  await sleep(2000);
  const answered = countMatches(gh.output(), /"GET \/flood-\d+ HTTP\/1\.1" 200/);
  assert.ok(answered < n / 2, `${answered} of ${n} answered while the client read nothing: the front holds what the socket cannot take`);
  let statusLines = 0;
  let tail = '';
  client.setEncoding('latin1');
  client.on('data', (text: string) => {
    statusLines += countMatches(tail + text, /HTTP\/1\.1 200 OK\r\n/);
    tail = text.slice(-16);
  });
  client.resume();
  assert.ok(await waitUntil(() => statusLines >= n, 60_000), `${statusLines} of ${n} answers once the client read`);
  client.destroy();
});

test('keepalive_timeout: an idle connection after a static answer is closed without a word', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    await c.waitClosed(5000);
    assert.equal(c.pending.length, 0);
  });
});

test('header_timeout: a connection that sends nothing gets 408 and is closed, and the access log says so', async () => {
  await withConnection(async (c) => {
    await c.waitClosed(6000);
    assert.equal((await c.readResponse()).status, 408);
  });
  assert.ok(await waitUntil(() => /"-" 408 /.test(gh.output()), 3000), gh.output().slice(-500));
});

test('access log: a static answer has its line, with the client a trusted proxy forwarded', async () => {
  await withConnection(async (c) => {
    c.write(get('/static/a.txt?from=fast-path-log', 'X-Forwarded-For: 203.0.113.9\r\nUser-Agent: fast-path-test\r\n'));
    assert.equal(served(await c.readResponse()), TEXT);
  });
  const line = new RegExp(`^203\\.0\\.113\\.9 - - \\[[^\\]]+\\] "GET /static/a\\.txt\\?from=fast-path-log HTTP/1\\.1" 200 ${TEXT.length} "-" "fast-path-test"$`, 'm');
  assert.ok(await waitUntil(() => line.test(gh.output()), 3000), gh.output().slice(-500));
});

test('SIGTERM: an idle keep-alive connection on the fast path is closed and the server exits', async () => {
  const server = await launch([`${APPS}/basic.py:hello`, '--static', `/static=${dir}`, '--graceful-timeout', '20']);
  try {
    const c = await RawConnection.open(server.port);
    c.write(get('/static/a.txt'));
    assert.equal(served(await c.readResponse()), TEXT);
    process.kill(server.pid, 'SIGTERM');
    // Well before the 20 s graceful timeout: the connection was idle.
    await c.waitClosed(5000);
    assert.equal((await server.exited(10_000)).code, 0);
  } finally {
    await server.kill();
  }
});

test('the heads an app sends reach the client byte for byte: its headers in order (latin-1 and empty values too), Date unless it gave one, Connection and Keep-Alive; HEAD, 204 and close', async () => {
  const heads = await launch([`${APPS}/basic.py:response_heads`, '--keepalive-timeout', '7']);
  try {
    const c = await RawConnection.open(heads.port);
    const paths = ['/json', '/dated', '/empty', '/latin', '/unsized'];
    c.write(paths.map((p) => get(p)).join('') + 'HEAD /json HTTP/1.1\r\nHost: test\r\n\r\n' + get('/json', 'Connection: close\r\n'));
    const got: string[] = [];
    for (let i = 0; i < paths.length + 2; i++) {
      const res = await c.readResponse(5000, { headRequest: i === paths.length });
      got.push(res.rawHead.replace(/\r\nDate: (?!Thu, 01 Jan 1970)[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT/, '\r\nDate: (now)') + res.body.toString('latin1'));
    }
    c.close();
    const alive = 'Connection: keep-alive\r\nKeep-Alive: timeout=7\r\n\r\n';
    assert.deepEqual(got, [
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: (now)\r\n${alive}{}`,
      `HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n${alive}ok`,
      `HTTP/1.1 204 No Content\r\nDate: (now)\r\n${alive}`,
      `HTTP/1.1 299 Fine Anyway\r\nX-Name: caf\xe9\r\nX-Empty: \r\nContent-Length: 1\r\nDate: (now)\r\n${alive}x`,
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nDate: (now)\r\n${alive}abc`,
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: (now)\r\n${alive}`,
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: (now)\r\nConnection: close\r\n\r\n{}',
    ]);
  } finally {
    await heads.kill();
  }
});
