/**
 * The HTTP/1.1 front's connections, checked byte by byte over raw sockets
 * (test/helpers/http-apps.ts): keep-alive, pipelining, HTTP/1.0 (with and
 * without keep-alive), the requests it refuses at the head (400, 431, a
 * CONNECT), and a connection that goes on after an Expect request node:http
 * reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ARGS, echo, get } from './helpers/http-apps.js';
import { withServer } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';

test('keep-alive: several requests on one connection are all answered on it', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      const ports = new Set<string>();
      for (let i = 0; i < 4; i++) {
        c.write(get(`/req${i}?n=${i}`));
        const res = await c.readResponse();
        assert.equal(res.version, 'HTTP/1.1');
        assert.notEqual(res.header('connection')?.toLowerCase(), 'close', 'the server must keep the connection open');
        const e = echo(res);
        assert.equal(e.path, `/req${i}`);
        assert.equal(e.query, `n=${i}`);
        ports.add(e.remote_port);
      }
      assert.equal(ports.size, 1, 'all requests came over the same client port');
      assert.equal(c.closed, false, 'connection still open after 4 requests');
      assert.equal(c.pending.length, 0, 'no stray bytes after the responses');
    } finally {
      c.close();
    }
  });
});

test('pipelining: 3 requests written at once are answered in order, the slow first one first', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write(get('/slow?ms=700') + get('/second') + get('/third'));
      const r1 = await c.readResponse();
      const r2 = await c.readResponse();
      const r3 = await c.readResponse();
      const [e1, e2, e3] = [echo(r1), echo(r2), echo(r3)];
      assert.deepEqual([e1.path, e2.path, e3.path], ['/slow', '/second', '/third']);
      assert.equal(c.pending.length, 0, 'exactly three responses');
      // The later requests ran on other workers while the slow one slept, so the
      // front really had to hold their answers back to keep the order.
      assert.ok(e2.time < e1.time && e3.time < e1.time, `second/third should not wait for the slow one (${e1.time}, ${e2.time}, ${e3.time})`);
      c.write(get('/after'));
      assert.equal(echo(await c.readResponse()).path, '/after', 'the connection is still usable');
    } finally {
      c.close();
    }
  });
});

test('HTTP/1.0: the app sees HTTP/1.0, a streamed body is not chunked and the connection closes', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('GET /plain HTTP/1.0\r\n\r\n');
      await c.waitClosed();
      const res = await c.readResponse();
      assert.match(res.version, /^HTTP\/1\.[01]$/);
      const e = echo(res);
      assert.equal(e.protocol, 'HTTP/1.0');
      assert.equal(res.header('content-length'), String(res.body.length));
    } finally {
      c.close();
    }
    // A response of unknown length: HTTP/1.0 has no chunked coding, so the
    // body must be sent raw and ended by closing the connection.
    const s = await RawConnection.open(gh.port);
    try {
      s.write('GET /stream HTTP/1.0\r\n\r\n');
      await s.waitClosed();
      const res = await s.readResponse();
      assert.equal(res.status, 200);
      assert.equal(res.chunked, false, `no Transfer-Encoding for HTTP/1.0; head was ${JSON.stringify(res.rawHead)}`);
      assert.equal(res.body.toString(), 'part1-part2-part3');
    } finally {
      s.close();
    }
  });
});

test('HTTP/1.0 with Connection: keep-alive, on both readers: a sized answer keeps the connection, a streamed one (no length, no chunks) ends it, TE: chunked gets chunks', async () => {
  // A repeated Connection header sends the request to node:http; the front's own reader takes the others.
  for (const [reader, extra] of [['fast path', ''], ['node:http', 'Connection: keep-alive\r\n']] as const) {
    await withServer(ARGS, async (gh) => {
      const c = await RawConnection.open(gh.port);
      try {
        c.write(`GET /one HTTP/1.0\r\nConnection: keep-alive\r\n${extra}\r\n`);
        const sized = await c.readResponse();
        assert.equal(sized.header('connection')?.toLowerCase(), 'keep-alive', reader);
        assert.equal(echo(sized).protocol, 'HTTP/1.0', reader);
        c.write(`GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n${extra}\r\n`);
        await c.waitClosed();
        const streamed = await c.readResponse();
        assert.equal(streamed.header('connection')?.toLowerCase(), 'close', reader);
        assert.equal(streamed.chunked, false, reader);
        assert.equal(streamed.body.toString(), 'part1-part2-part3', reader);
      } finally {
        c.close();
      }
      const t = await RawConnection.open(gh.port);
      try {
        t.write(`GET /stream HTTP/1.0\r\nConnection: keep-alive\r\nTE: chunked\r\n${extra}\r\n`);
        const chunked = await t.readResponse();
        assert.equal(chunked.chunked, true, `${reader}: ${chunked.rawHead}`);
        assert.equal(chunked.body.toString(), 'part1-part2-part3', reader);
        assert.equal(chunked.header('connection')?.toLowerCase(), 'keep-alive', reader);
      } finally {
        t.close();
      }
    });
  }
});

test('HTTP/1.0 with Connection: keep-alive keeps the connection for a second request', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      for (const p of ['/one', '/two']) {
        c.write(`GET ${p} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
        const res = await c.readResponse();
        assert.equal(res.header('connection')?.toLowerCase(), 'keep-alive');
        assert.equal(echo(res).path, p);
      }
    } finally {
      c.close();
    }
  });
});

test('a malformed request line gets 400 and the connection is closed', async () => {
  await withServer(ARGS, async (gh) => {
    for (const line of ['THIS IS NOT HTTP\r\n\r\n', 'GET /\x01path HTTP/1.1\r\nHost: test\r\n\r\n', 'GET / HTTX/1.1\r\n\r\n']) {
      const c = await RawConnection.open(gh.port);
      try {
        c.write(line);
        const res = await c.readResponse();
        assert.equal(res.status, 400, `for ${JSON.stringify(line)}`);
        await c.waitClosed();
      } finally {
        c.close();
      }
    }
  });
});

test('a header block over 16 KiB gets 431', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write(`GET /big HTTP/1.1\r\nHost: test\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
      const res = await c.readResponse();
      assert.equal(res.status, 431);
      await c.waitClosed();
    } finally {
      c.close();
    }
    // Just under the limit still works.
    const ok = await RawConnection.open(gh.port);
    try {
      ok.write(`GET /fine HTTP/1.1\r\nHost: test\r\nX-Big: ${'a'.repeat(15 * 1024)}\r\n\r\n`);
      assert.equal(echo(await ok.readResponse()).path, '/fine');
    } finally {
      ok.close();
    }
  });
});

test('a CONNECT request gets an HTTP error response, not a silently dropped connection', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      await c.waitForData((b, closed) => closed || b.includes('\r\n\r\n'), 3000);
      assert.ok(c.pending.length > 0, 'the server answered something before closing');
      const res = await c.readResponse();
      assert.ok(res.status >= 400 && res.status < 600, `an error status, got ${res.status}`);
    } finally {
      c.close();
    }
  });
});

test('a bodiless Expect: 100-continue request pipelined behind one node:http reads: every request after it is answered on the same connection', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      // An absolute-form target goes to node:http; the 100 may be skipped once the answer is ready (RFC 9110 §10.1.1).
      c.write('GET http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n');
      const finals: number[] = [];
      while (finals.length < 3) {
        const res = await c.readResponse();
        if (res.status !== 100) finals.push(res.status);
      }
      assert.deepEqual(finals, [200, 200, 200]);
      assert.equal(c.closed, false);
    } finally {
      c.close();
    }
  });
});
