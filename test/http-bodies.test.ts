/**
 * Request bodies on the HTTP/1.1 front, checked byte by byte over raw
 * sockets (test/helpers/http-apps.ts): Expect: 100-continue, chunked
 * bodies, the limits that protect the workers (413, 400 for an ambiguous
 * length, a transfer-coding it cannot decode), and a large upload refused
 * before curl is done sending it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand } from './helpers/gatehouse.js';
import { ARGS, echo, get } from './helpers/http-apps.js';
import { withServer } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { sleep } from './helpers/wait.js';

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
