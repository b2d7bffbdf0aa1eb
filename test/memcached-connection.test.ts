/**
 * The memcached connection after a failure, against a real memcached
 * (Debian package memcached) behind a proxy of our own that cuts an answer
 * in two and holds its second half past the request's deadline: the next
 * requests, on a new connection, get their own answers, whole.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { MemcachedConnection } from '../src/cache/memcached-connection.js';
import { Logger } from '../src/log/logger.js';
import { freePorts } from './helpers/back-ends.js';
import { hasCommand } from './helpers/gatehouse.js';
import { sleep } from './helpers/wait.js';

const skip = hasCommand('memcached') ? false : 'needs memcached (Debian package memcached)';
const VALUE = Buffer.alloc(100_000, 'v');
let memcached: ChildProcess | null = null;
let port = 0;


/** A proxy to memcached whose first connection's first answer comes cut: some bytes, then the rest `holdMs` later. */
async function cuttingProxy(holdMs: number): Promise<{ port: number; close(): void }> {
  let first = true;
  const sockets: Socket[] = [];
  const server: NetServer = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.push(client, upstream);
    const cut = first;
    first = false;
    let held = false;
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (!cut || held) return void client.write(d);
      held = true;
      client.write(d.subarray(0, 40));
      setTimeout(() => client.writable && client.write(d.subarray(40)), holdMs);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

before(async () => {
  if (skip) return;
  port = (await freePorts(1))[0]!;
  memcached = spawn('memcached', ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '16', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])], { stdio: 'ignore' });
  const direct = new MemcachedConnection(`127.0.0.1:${port}`, new Logger('error'), 'test');
  for (let i = 0; i < 100 && !(await direct.run('set', (c) => c.set('big', VALUE, {}), false)); i++) await sleep(50);
  direct.close();
});

after(() => {
  memcached?.kill('SIGKILL');
});

test('an answer cut past its deadline: a miss and one warning, then the next requests get their own answers, whole', { skip }, async () => {
  const proxy = await cuttingProxy(600);
  let log = '';
  const logger = new Logger('info', new Writable({ write: (chunk: Buffer, _e, done) => ((log += chunk.toString()), done()) }));
  const conn = new MemcachedConnection(`127.0.0.1:${proxy.port}`, logger, 'test memcached');
  try {
    assert.equal(await conn.run('get', async (c) => (await c.get('big')).value, null), null);
    assert.match(log, /\[WARNING\] test memcached: get failed, answering as a miss/);
    // Past the pause after a failure (and past the cut answer's second half, which must not reach anyone).
    await sleep(1200);
    for (let i = 0; i < 3; i++) {
      const got = await conn.run('get', async (c) => (await c.get('big')).value, null);
      assert.ok(got !== null && got.equals(VALUE), `request ${i} after the failure: ${got === null ? 'no answer' : `${got.length} bytes, not the value`}`);
    }
  } finally {
    conn.close();
    proxy.close();
  }
});
