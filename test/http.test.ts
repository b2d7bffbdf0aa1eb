/**
 * The HTTP/1.1 front, checked byte by byte over raw sockets: keep-alive,
 * pipelining, HTTP/1.0, Expect: 100-continue, chunked request bodies and the
 * limits that protect the workers (400, 413, 431).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasCommand } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { RawConnection, type RawResponse } from './helpers/raw-connection.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/http_apps.py:app`;
/** Every test runs its own server: 3 workers, 1 KiB body limit. */
const ARGS = [APP, '--workers', '3', '--max-request-body', '1k'];

interface Echo {
  method: string;
  path: string;
  query: string;
  protocol: string;
  content_length: string | null;
  transfer_encoding: string | null;
  remote_port: string;
  body: string;
  time: number;
}

function echo(res: RawResponse): Echo {
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.body.toString()}`);
  return JSON.parse(res.body.toString()) as Echo;
}

function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;
}

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

test('Expect: 100-continue gets "100 Continue" before the body is sent, then the response', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
      await c.waitForData((b) => b.includes('\r\n\r\n'), 3000);
      const interim = await c.readResponse();
      assert.equal(interim.status, 100);
      assert.equal(interim.rawHead, 'HTTP/1.1 100 Continue\r\n\r\n');
      assert.equal(c.pending.length, 0, 'nothing but the 100 before the body is sent');
      c.write('hello world');
      const e = echo(await c.readResponse());
      assert.equal(e.method, 'POST');
      assert.equal(e.body, 'hello world');
      assert.equal(e.content_length, '11');
    } finally {
      c.close();
    }
  });
});

test('Expect: 100-continue pipelined behind a slow request: its 100 Continue never follows its own final answer', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      // Both on node:http (the first's repeated Connection header hands the connection to it): the second is
      // answered by the app while the first still sleeps, so its answer is ready before its turn on the connection.
      c.write('POST /slow?ms=700 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n');
      c.write('PUT /second HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n');
      assert.equal(echo(await c.readResponse()).path, '/slow');
      let r = await c.readResponse();
      if (r.status === 100) r = await c.readResponse();
      assert.equal(echo(r).path, '/second');
      // node:http closes the connection after an Expect request it sent no 100 for; either way, no
      // stray 100 may follow (a client would take it for the answer to its next request).
      await sleep(300);
      assert.equal(c.pending.length, 0, `nothing after the final answer: ${JSON.stringify(c.pending.toString('latin1'))}`);
    } finally {
      c.close();
    }
  });
});

test('Expect: 100-continue with a Content-Length over --max-request-body gets 413 and no 100', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
      const res = await c.readResponse();
      assert.equal(res.status, 413);
      assert.ok(!c.pending.includes('100 Continue') && !res.rawHead.includes('100 Continue'));
      await c.waitClosed();
      assert.ok(!c.pending.toString('latin1').includes('HTTP/1.1 100'), 'no 100 Continue at any point');
    } finally {
      c.close();
    }
  });
});

test('a chunked request body reaches the app de-chunked, with CONTENT_LENGTH set', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('POST /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n');
      c.write('5\r\nhello\r\n');
      await new Promise((r) => setTimeout(r, 50));
      c.write('6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n');
      const e = echo(await c.readResponse());
      assert.equal(e.body, 'hello world');
      assert.equal(e.content_length, '11');
      assert.equal(e.transfer_encoding, null, 'the app must not see Transfer-Encoding once the body is de-chunked');
      c.write(get('/next'));
      assert.equal(echo(await c.readResponse()).path, '/next', 'keep-alive after a chunked body');
    } finally {
      c.close();
    }
  });
});

test('a request with both Content-Length and Transfer-Encoding is refused with 400', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('POST /smuggle HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n');
      const res = await c.readResponse();
      assert.equal(res.status, 400);
      await c.waitClosed();
      assert.equal(c.pending.length, 0, 'nothing is answered after the 400 (no smuggled request)');
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

test('--max-request-body 1k: 1024 bytes pass, more gets 413 (Content-Length and chunked)', async () => {
  await withServer(ARGS, async (gh) => {
    const atLimit = await RawConnection.open(gh.port);
    try {
      atLimit.write(`POST /ok HTTP/1.1\r\nHost: test\r\nContent-Length: 1024\r\n\r\n${'x'.repeat(1024)}`);
      assert.equal(echo(await atLimit.readResponse()).body.length, 1024);
    } finally {
      atLimit.close();
    }

    const withLength = await RawConnection.open(gh.port);
    try {
      withLength.write(`POST /too-big HTTP/1.1\r\nHost: test\r\nContent-Length: 1025\r\n\r\n${'x'.repeat(1025)}`);
      const res = await withLength.readResponse();
      assert.equal(res.status, 413);
      await withLength.waitClosed();
    } finally {
      withLength.close();
    }

    const chunked = await RawConnection.open(gh.port);
    try {
      const chunk = 'y'.repeat(600);
      // One write, so the client is not still sending when the server answers and closes.
      chunked.write(`POST /too-big-chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`);
      const res = await chunked.readResponse();
      assert.equal(res.status, 413);
      await chunked.waitClosed();
    } finally {
      chunked.close();
    }
  });
});

test('a transfer-coding the front cannot decode (gzip, chunked) is refused, not handed to the app as the body', async () => {
  await withServer(ARGS, async (gh) => {
    const c = await RawConnection.open(gh.port);
    try {
      const gz = gzipSync('hello');
      c.write(
        Buffer.concat([
          Buffer.from(`POST /coded HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${gz.length.toString(16)}\r\n`),
          gz,
          Buffer.from('\r\n0\r\n\r\n'),
        ]),
      );
      const res = await c.readResponse();
      // RFC 9112 section 6.1: a server that does not understand a transfer coding SHOULD answer 501.
      assert.ok(res.status === 501 || res.status === 400, `expected 501 (or 400), got ${res.status}: ${res.body.toString().slice(0, 200)}`);
    } finally {
      c.close();
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

test('an 8 MiB upload over --max-request-body: curl gets the 413 (no reset before the answer)', async (t) => {
  if (!hasCommand('curl')) {
    t.skip('curl is not installed');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gh-upload-'));
  try {
    const file = join(dir, 'big.bin');
    writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 0x61));
    await withServer(ARGS, async (gh) => {
      for (const expect of ['Expect:', 'Expect: 100-continue']) {
        for (let attempt = 0; attempt < 3; attempt++) {
          const r = await runCommand('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', expect, '--data-binary', `@${file}`, `${gh.url}/upload`]);
          assert.equal(r.stdout, '413', `curl (${expect || 'no Expect'}) exit ${r.code}: ${r.stderr}`);
        }
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function runCommand(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
