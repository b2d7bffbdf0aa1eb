/**
 * Upgrades through `proxy` (src/upstream/proxy-tunnel.ts) when the client
 * leaves early: a client that half-closes or closes before the upstream's
 * 101 has gone away (499) and the upstream's connection is closed, whether
 * it was still being made or waiting for the answer; once joined, a FIN
 * from either side ends the tunnel after what was sent (as nginx), and bytes
 * a client sent before the 101 still reach the upstream.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { waitUntil } from './helpers/wait.js';
import { tempDir } from './helpers/back-ends.js';

let tmp: ReturnType<typeof tempDir>;
let gh: Server;
let accessLog: string;
/** The upstream: answers an upgrade with 101 after ?delay=MS, then echoes; it never closes a socket itself. */
let upstream: HttpServer;
/** Every upgrade socket the upstream took, by request path: the bytes it received after its head, and whether gatehouse ended it. */
const taken = new Map<string, { socket: Socket; received: string; ended: boolean }>();

before(async () => {
  tmp = tempDir('tunnel');
  upstream = createServer();
  upstream.on('upgrade', (req, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry = { socket, received: head.toString('latin1'), ended: false };
    taken.set(url.pathname, entry);
    socket.on('error', () => {});
    socket.on('end', () => (entry.ended = true));
    socket.on('close', () => (entry.ended = true));
    socket.on('data', (d: Buffer) => {
      entry.received += d.toString('latin1');
      if (!socket.destroyed) socket.write(d);
    });
    setTimeout(() => {
      if (!socket.destroyed) socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    }, Number(url.searchParams.get('delay') ?? 0));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  accessLog = join(tmp.dir, 'access.log');
  const config = join(tmp.dir, 'site.toml');
  writeFileSync(config, `access_log = "${accessLog}"\n[[routes]]\npath = "/"\nproxy = { upstreams = ["127.0.0.1:${(upstream.address() as { port: number }).port}"] }\n`);
  gh = await launch(['--config', config, '--bind', '127.0.0.1:0'], { workers: 0 });
});

after(async () => {
  await gh?.kill();
  upstream?.closeAllConnections();
  upstream?.close();
  tmp?.remove();
});

const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`;

function logged(line: RegExp): Promise<boolean> {
  return waitUntil(() => line.test(readFileSync(accessLog, 'utf8')), 3000);
}

/** Gatehouse closed its connection to the upstream for `path` (or never made one) within a few seconds (read_timeout is 60 s). */
function upstreamClosed(path: string): Promise<boolean> {
  return waitUntil(() => taken.get(path)?.ended ?? true, 3000);
}

test('a FIN sent with the upgrade request (the upstream connection still being made): 499, the upstream connection closed', async () => {
  const c = await RawConnection.open(gh.port);
  c.socket.end(upgrade('/fin-at-once'));
  await c.waitClosed(3000);
  assert.equal(c.pending.length, 0, c.pending.toString('latin1'));
  assert.ok(await logged(/"GET \/fin-at-once HTTP\/1\.1" 499 /), readFileSync(accessLog, 'utf8'));
  assert.ok(await upstreamClosed('/fin-at-once'));
});

for (const [how, leave] of [['half-closes', (c: RawConnection) => c.socket.end()], ['closes', (c: RawConnection) => c.close()]] as const) {
  test(`a client that ${how} while the upstream has not answered yet: 499, the upstream connection closed`, async () => {
    const path = `/${how}-waiting`;
    const c = await RawConnection.open(gh.port);
    c.write(upgrade(`${path}?delay=2000`));
    assert.ok(await waitUntil(() => taken.has(path), 3000));
    leave(c);
    assert.ok(await upstreamClosed(path), 'the upstream connection was left open');
    assert.ok(await logged(new RegExp(`"GET ${path}\\?delay=2000 HTTP/1\\.1" 499 `)), readFileSync(accessLog, 'utf8'));
  });
}

test('joined: bytes sent before the 101 reach the upstream; a FIN from the client ends the tunnel once they are through', async () => {
  const c = await RawConnection.open(gh.port);
  c.write(upgrade('/joined?delay=200'));
  assert.ok(await waitUntil(() => taken.has('/joined'), 3000));
  c.write('early bytes;');
  const res = await c.readResponse();
  assert.equal(res.status, 101);
  await c.waitForData((b) => b.toString('latin1') === 'early bytes;');
  c.write('late bytes');
  await c.waitForData((b) => b.toString('latin1') === 'early bytes;late bytes');
  c.socket.end();
  assert.ok(await upstreamClosed('/joined'), 'the upstream connection was left open');
  await c.waitClosed(3000);
  assert.equal(taken.get('/joined')!.received, 'early bytes;late bytes');
  assert.ok(await logged(/"GET \/joined\?delay=200 HTTP\/1\.1" 101 /), readFileSync(accessLog, 'utf8'));
});
