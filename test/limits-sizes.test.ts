/**
 * Size and count limits against bad clients, over raw sockets
 * (test/helpers/limits-app.ts): max_header_size (431, and 414 for a target
 * that alone reaches it, on both readers), max_request_body per route (413,
 * also with Expect: 100-continue and a growing chunked body) and
 * max_connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand } from './helpers/gatehouse.js';
import { launch, withServer } from './helpers/launch.js';
import { answer, APP, get, gh, serveLimitsApp } from './helpers/limits-app.js';
import { RawConnection, type RawResponse } from './helpers/raw-connection.js';
import { sleep } from './helpers/wait.js';

serveLimitsApp();

test('max_header_size 2k: a 3 KiB head gets 431 and close; a 1 KiB one passes', async () => {
  const big = await RawConnection.open(gh.port);
  try {
    big.write(`GET /big-head HTTP/1.1\r\nHost: test\r\nX-Big: ${'b'.repeat(3 * 1024)}\r\n\r\n`);
    assert.equal((await big.readResponse()).status, 431);
    await big.waitClosed();
  } finally {
    big.close();
  }
  const ok = await RawConnection.open(gh.port);
  try {
    ok.write(`GET /small-head HTTP/1.1\r\nHost: test\r\nX-Small: ${'s'.repeat(1024)}\r\n\r\n`);
    assert.equal(answer(await ok.readResponse()).path, '/small-head');
  } finally {
    ok.close();
  }
});

test('max_header_size 2k: a target of 2k gets 414 URI Too Long and close (as nginx), whole or in pieces, on the fast path and on node:http; a shorter one that the headers take over the limit 431', async () => {
  // node:http counts the target alone first: 2048 bytes reach the limit of 2k.
  const longLine = `GET /${'t'.repeat(2047)} HTTP/1.1\r\n`;
  const refusal = async (c: RawConnection, status: number) => {
    const res = await c.readResponse();
    assert.equal(`${res.version} ${res.status} ${res.reason}`, status === 414 ? 'HTTP/1.1 414 URI Too Long' : 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.equal(res.header('connection'), 'close');
    await c.waitClosed();
  };
  const cases: Array<[string, string[], number]> = [
    ['whole (the fast path)', [`${longLine}Host: test\r\n\r\n`], 414],
    ['in pieces, the line cut inside the target before and after the limit', [longLine.slice(0, 900), longLine.slice(900, 2000), longLine.slice(2000), 'Host: test\r\n\r\n'], 414],
    ['one byte shorter, its Host taking the head over the limit', [`GET /${'t'.repeat(2046)} HTTP/1.1\r\nHost: test\r\n\r\n`], 431],
  ];
  for (const [what, pieces, status] of cases) {
    const c = await RawConnection.open(gh.port);
    try {
      for (const piece of pieces) {
        c.write(piece);
        await sleep(30);
      }
      await refusal(c, status);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    } finally {
      c.close();
    }
  }
  // On a connection node:http reads (a repeated Connection header hands it over): the target in pieces,
  // the overflow found in a read that holds no line start; then a head whose header fields are too large.
  for (const [tail, status] of [[longLine, 414], [`GET /h HTTP/1.1\r\nHost: test\r\nX-Big: ${'b'.repeat(2100)}\r\n`, 431]] as const) {
    const c = await RawConnection.open(gh.port);
    try {
      c.write('GET /first HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n\r\n');
      assert.equal(answer(await c.readResponse()).path, '/first');
      for (let at = 0; at < tail.length; at += 700) {
        c.write(tail.slice(at, at + 700));
        await sleep(30);
      }
      c.write('Host: test\r\n\r\n');
      await refusal(c, status);
    } finally {
      c.close();
    }
  }
  // A target just under the limit, with no header to take it over: served.
  const ok = await RawConnection.open(gh.port);
  try {
    ok.write(`GET /${'t'.repeat(2040)} HTTP/1.0\r\n\r\n`);
    assert.equal(answer(await ok.readResponse()).path.length, 2041);
  } finally {
    ok.close();
  }
});

// ---------------------------------------------------------------- per-route body limit

test('max_request_body per route: the route limit (1k) and the top-level one (4k), with Content-Length, Expect: 100-continue and chunked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-limits-conf-'));
  try {
    const config = join(dir, 'gatehouse.toml');
    writeFileSync(
      config,
      `workers = 1\nmax_request_body = "4k"\n\n[[listeners]]\nbind = "127.0.0.1:0"\n\n[apps.main]\napp = "${APP}"\n\n` +
        `[[routes]]\npath = "/"\napp = "main"\n\n[[routes]]\npath = "/small"\napp = "main"\nmax_request_body = "1k"\n`,
    );
    const server = await launch(['--config', config], { workers: 1 });
    try {
      const post = async (path: string, head: string, body: string): Promise<RawResponse> => {
        const c = await RawConnection.open(server.port);
        try {
          c.write(`POST ${path} HTTP/1.1\r\nHost: test\r\n${head}\r\n${body}`);
          return await c.readResponse();
        } finally {
          c.close();
        }
      };
      const body2k = 'x'.repeat(2048);
      assert.equal((await post('/small/up', 'Content-Length: 2048\r\n', body2k)).status, 413, '2 KiB on the 1k route');
      assert.equal(answer(await post('/up', 'Content-Length: 2048\r\n', body2k)).body_length, 2048, '2 KiB on the 4k route');
      assert.equal((await post('/up', 'Content-Length: 5000\r\n', 'y'.repeat(5000))).status, 413, '5000 bytes over the top-level 4k');

      // Expect: 100-continue with a declared length over the route's limit: 413 at once, never a 100.
      const expect = await RawConnection.open(server.port);
      try {
        expect.write('POST /small/up HTTP/1.1\r\nHost: test\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n');
        const res = await expect.readResponse();
        assert.equal(res.status, 413);
        await expect.waitClosed();
        assert.ok(!expect.pending.toString('latin1').includes(' 100 '), 'no 100 Continue');
      } finally {
        expect.close();
      }
      // The same upload on the 4k route gets its 100 and goes through.
      const ok = await RawConnection.open(server.port);
      try {
        ok.write('POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n');
        assert.equal((await ok.readResponse()).status, 100);
        ok.write(body2k);
        assert.equal(answer(await ok.readResponse()).body_length, 2048);
      } finally {
        ok.close();
      }

      // A chunked body, no length declared, that grows past 1k before it ends: 413 and close, mid-body.
      const chunked = await RawConnection.open(server.port);
      try {
        const chunk = 'z'.repeat(600);
        chunked.write(`POST /small/up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n`);
        assert.equal((await chunked.readResponse()).status, 413);
        await chunked.waitClosed();
      } finally {
        chunked.close();
      }
    } finally {
      await server.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- max_connections

test('max_connections 3: a 4th connection is closed at once, the 3 keep working, and the count comes back down', async () => {
  await withServer([APP, '--max-connections', '3'], async (server) => {
    const open: RawConnection[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawConnection.open(server.port);
        open.push(c);
        c.write(get(`/held${i}`));
        assert.equal(answer(await c.readResponse()).path, `/held${i}`);
      }
      const extra = await RawConnection.open(server.port);
      try {
        extra.write(get('/extra'));
        await extra.waitClosed(3000);
        assert.equal(extra.pending.length, 0, 'the refused connection got no answer');
      } finally {
        extra.close();
      }
      for (const [i, c] of open.entries()) {
        c.write(get(`/again${i}`));
        assert.equal(answer(await c.readResponse()).path, `/again${i}`, 'the connections already open still work');
      }
      await server.waitFor(/\[WARNING\] max_connections \(3\) reached/, 3000);

      for (const c of open.splice(0)) c.close();
      // Once the server has seen them close, 3 new connections fit again.
      let fresh: RawConnection[] = [];
      const recovered = async (): Promise<boolean> => {
        for (const c of fresh) c.close();
        fresh = [];
        for (let i = 0; i < 3; i++) {
          const c = await RawConnection.open(server.port);
          fresh.push(c);
          c.write(get(`/fresh${i}`));
          const got = await c.readResponse(3000).catch(() => null);
          if (got === null || got.status !== 200) return false;
        }
        return true;
      };
      let ok = false;
      for (let attempt = 0; attempt < 10 && !ok; attempt++) {
        ok = await recovered();
        if (!ok) await sleep(200);
      }
      for (const c of fresh) c.close();
      assert.ok(ok, '3 new connections are served once the old ones closed');
    } finally {
      for (const c of open) c.close();
    }
  });
});

test('an open-file limit below max_connections: a warning at start, and connections past what fits are refused and logged, not dropped unseen', { skip: hasCommand('prlimit') ? false : 'needs prlimit (Debian: util-linux)' }, async () => {
  await withServer([APP], async (server) => {
    await server.waitFor(/\[WARNING\] The open-file limit is 300: max_connections 10000 does not fit beside the 136 descriptors kept for the workers and the front's own files, so at most 164 client connections are taken at once/, 3000);
    const open: RawConnection[] = [];
    try {
      for (let i = 0; i < 200; i++) open.push(await RawConnection.open(server.port));
      await server.waitFor(/\[WARNING\] max_connections \(164\) reached: refused \d+ new connection/, 3000);
      open[0]!.write(get('/first'));
      assert.equal(answer(await open[0]!.readResponse()).path, '/first', 'the connections taken are served');
    } finally {
      for (const c of open) c.close();
    }
  }, { wrap: ['prlimit', '--nofile=300:300'] });
});

