/** The back ends' kept-alive connection pool, on real loopback sockets: hand-overs, what drops an idle connection, the idle timeout. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { openSocket, SocketPool, useSocket, type SocketUser } from '../src/upstream/socket-pool.js';

let server: Server;
/** The back end's side of each connection, in order. */
const peers: Socket[] = [];

before(async () => {
  server = createServer((s) => void peers.push(s.on('error', () => {})));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(() => {
  for (const p of peers) p.destroy();
  server.close();
});

/** A connected socket whose events go to `user`, and the back end's side of it. */
async function open(user: SocketUser): Promise<{ socket: Socket; peer: Socket }> {
  const socket = openSocket({ port: (server.address() as { port: number }).port, host: '127.0.0.1' }, user);
  await new Promise((resolve) => socket.once('connect', resolve));
  while (peers.length === 0 || peers.at(-1)!.remotePort !== socket.localPort) await new Promise((r) => setTimeout(r, 5));
  return { socket, peer: peers.at(-1)! };
}

function until(what: string, check: () => boolean): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const look = () => (check() ? resolve() : Date.now() - start > 5000 ? reject(new Error(`never: ${what}`)) : setTimeout(look, 10));
    look();
  });
}

const recorder = () => {
  const got: string[] = [];
  const user: SocketUser = { data: (c) => void got.push(c.toString()), error: (e) => void got.push(`error ${e.code}`), closed: () => void got.push('closed') };
  return { got, user };
};

test('a connection goes back and forth between exchanges and the pool with its listeners added once', async () => {
  const pool = new SocketPool(2, 60_000);
  const { socket, peer } = await open(recorder().user);
  for (let i = 0; i < 3; i++) {
    pool.give(socket);
    assert.equal(pool.size, 1);
    assert.equal(pool.take(), socket);
    const { got, user } = recorder();
    useSocket(socket, user);
    peer.write(`answer ${i}`);
    await until('the answer reaches its exchange', () => got.length > 0);
    assert.deepEqual(got, [`answer ${i}`]);
  }
  assert.equal(socket.listenerCount('close'), 1);
  assert.equal(socket.listenerCount('error'), 1);
  pool.give(socket);
  pool.close();
  assert.ok(socket.destroyed, 'closing the pool closes its idle connections');
});

test('bytes read stay as they came when later reads on other connections reuse the shared read buffer', async () => {
  const kept: Buffer[] = [];
  const user: SocketUser = { data: (c) => void kept.push(c), error: () => {}, closed: () => {} };
  const a = await open(user);
  const b = await open(user);
  a.peer.write('first answer');
  await until('the first answer is read', () => kept.length === 1);
  b.peer.write('SECOND');
  await until('the second answer is read', () => kept.length === 2);
  assert.deepEqual(kept.map(String), ['first answer', 'SECOND']);
  a.socket.destroy();
  b.socket.destroy();
});

test('an idle connection is dropped when the back end writes to it or closes it, and past max it is closed at once', async () => {
  const pool = new SocketPool(1, 60_000);
  const a = await open(recorder().user);
  const b = await open(recorder().user);
  pool.give(a.socket);
  pool.give(b.socket);
  assert.equal(pool.size, 1, 'one idle connection at most');
  assert.ok(b.socket.destroyed);
  a.peer.write('unasked');
  await until('the connection written to is dropped', () => pool.size === 0 && a.socket.destroyed);
  const c = await open(recorder().user);
  pool.give(c.socket);
  c.peer.end();
  await until('the connection closed by the back end is dropped', () => pool.size === 0);
  assert.equal(pool.take(), null);
  pool.close();
});

test('a connection idle for idleMs is closed; one used meanwhile is not', async () => {
  const pool = new SocketPool(2, 300);
  const old = await open(recorder().user);
  pool.give(old.socket);
  await until('the idle connection is closed', () => old.socket.destroyed && pool.size === 0);
  const fresh = await open(recorder().user);
  pool.give(fresh.socket);
  assert.equal(pool.take(), fresh.socket);
  assert.ok(!fresh.socket.destroyed);
  fresh.socket.destroy();
  pool.close();
});
