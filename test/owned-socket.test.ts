/**
 * The lean WebSocket of src/asgi/owned-socket.ts on a real loopback
 * connection, with the npm `ws` client: once its parts are let go, a
 * keepalive ping and the client's pong do not make them again, and what
 * else comes (a message, the client's own ping) still gets through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { WebSocket, WebSocketServer } from 'ws';
import { ownedSocket, type OwnedSocket, type WsParts } from '../src/asgi/owned-socket.js';
import { waitUntil } from './helpers/wait.js';
import { nextMessage, opened } from './helpers/ws-client.js';

type Lean = OwnedSocket & { parserShed(): boolean };

const ws = createRequire(import.meta.url)('ws') as typeof import('ws') & WsParts;
const wss = new WebSocketServer({ noServer: true, WebSocket: ownedSocket(ws.WebSocket, ws), clientTracking: false, perMessageDeflate: false });
const http: Server = createServer();
let url: string;
const heard: string[] = [];

/** The server's side of the next connection, its events told to `heard`. */
function accepted(): Promise<Lean> {
  return new Promise((resolve) =>
    http.once('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (sock) => {
        const lean = sock as Lean;
        lean.owner = {
          onMessage: (data) => {
            heard.push(`message ${data.toString()}`);
            lean.send(`echo ${data.toString()}`);
          },
          onClose: (code) => heard.push(`close ${code}`),
          onPong: () => heard.push('pong'),
          onError: (err) => heard.push(`error ${err.message}`),
        };
        resolve(lean);
      }),
    ),
  );
}

/** Two sweeps with nothing between them: the parts are let go. */
function shed(sock: Lean): void {
  sock.shedParts();
  sock.shedParts();
}

before(async () => {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
});

const clients: WebSocket[] = [];
after(() => {
  for (const c of clients) c.terminate();
  http.close();
});

test('a keepalive ping and its pong, parts let go: heard without making a frame parser again', async () => {
  const server = accepted();
  const client = new WebSocket(url, { perMessageDeflate: false });
  clients.push(client);
  await opened(client);
  const sock = await server;
  // The recipe is read from the first socket to let go of its parts (the first sweep of a fresh socket).
  shed(sock);
  assert.ok(sock.parserShed(), 'the parser is let go after a silent sweep');
  let pings = 0;
  client.on('ping', () => pings++);
  heard.length = 0;
  for (let round = 1; round <= 3; round++) {
    sock.ping();
    await waitUntil(() => heard.length === round, 3000);
    assert.ok(sock.parserShed(), `pong ${round} was heard without making a parser`);
  }
  assert.equal(pings, 3);
  assert.deepEqual(heard, ['pong', 'pong', 'pong']);

  // The client's own ping is not a lone pong: ws's parser is made for it and ws answers.
  const pong = new Promise<void>((resolve) => client.once('pong', () => resolve()));
  client.ping();
  await pong;
  shed(sock);

  client.send('after the pongs');
  assert.equal((await nextMessage(client)).data.toString(), 'echo after the pongs');
  assert.ok(!sock.parserShed(), 'a message makes the parser again');
  client.close(1000);
  await waitUntil(() => heard.includes('close 1000'), 3000);
  assert.deepEqual(heard.slice(3), ['message after the pongs', 'close 1000']);
});
