/**
 * readDirectly (src/front/read-directly.ts): an accepted connection read
 * in net.Socket's onread mode, behaving as it did before: its bytes
 * in order as 'data' (each chunk a Buffer of its own), pause() and resume(),
 * the client's FIN as 'end' with the connection still writable (half-open),
 * and the server's count of connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { readDirectly } from '../src/front/read-directly.js';

async function serverWith(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    assert.equal(readDirectly(s), true, 'this node lets the socket read directly');
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

test('bytes arrive in order in chunks of their own; the FIN is an end the server can still answer after', async () => {
  const chunks: Buffer[] = [];
  const { server, port } = await serverWith((s) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`got ${Buffer.concat(chunks).length}`));
  });
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const sent: Buffer[] = [];
  for (let i = 0; i < 50; i++) {
    const part = Buffer.alloc(3000 + i, i);
    sent.push(part);
    client.write(part);
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  client.end();
  let reply = '';
  client.setEncoding('utf8').on('data', (d: string) => (reply += d));
  await once(client, 'end');
  const whole = Buffer.concat(sent);
  assert.equal(reply, `got ${whole.length}`);
  assert.ok(Buffer.concat(chunks).equals(whole));
  // Each chunk owns its memory: none is a view of a buffer shared with the next read.
  assert.ok(chunks.every((c) => c.byteOffset === 0 && c.buffer.byteLength === c.length));
  await new Promise((r) => server.close(r));
});

test('pause() holds the reads back until resume(); an encoding is honoured; the server counts the connection until it closes', async () => {
  let socket: Socket | null = null;
  const got: string[] = [];
  const { server, port } = await serverWith((s) => {
    socket = s;
    s.setEncoding('utf8');
    s.on('data', (d: string) => got.push(d));
    s.on('end', () => s.end());
  });
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  client.write('one');
  while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
  socket!.pause();
  client.write('two');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(got, ['one']);
  const count = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
  assert.equal(count, 1);
  socket!.resume();
  while (got.length < 2) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(got, ['one', 'two']);
  client.destroy();
  await once(socket!, 'close');
  const after = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
  assert.equal(after, 0);
  await new Promise((r) => server.close(r));
});
