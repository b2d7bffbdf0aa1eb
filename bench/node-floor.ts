/**
 * Node's floor for the upstreams suite: the least a Node process does for
 * the work of a gatehouse row, with nothing of gatehouse's, so the table
 * shows how much of gatehouse's CPU per request Node itself takes.
 *
 * - `uwsgi SOCK`: nginx's uwsgi_pass connection accepted, its packet read,
 *   a fixed answer (the flask app's) written, the connection closed;
 * - `proxy PORT SOCK`: a keep-alive HTTP front taking one request per read
 *   (as wrk sends them), each sent to the HTTP upstream on SOCK through
 *   undici's Pool.dispatch with a bare handler and a plain net.connect
 *   (gatehouse's client and connector), the body passed back with a fixed
 *   head. undici's per-connection errors carry no stack, as in gatehouse.
 *
 * Neither parses nor checks what it is sent: a floor, not a server.
 */
import { chmodSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { Pool, type Dispatcher } from 'undici';

const FLASK_ANSWER = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n{"items":[1,2,3],"message":"Hello, World!"}\n', 'latin1');

function uwsgiFloor(path: string): void {
  rmSync(path, { force: true });
  createServer((socket) => {
    socket.on('error', () => {});
    let got = 0;
    let size = -1;
    socket.on('data', (chunk: Buffer) => {
      if (size < 0) size = 4 + chunk.readUInt16LE(1);
      got += chunk.length;
      if (got < size) return;
      socket.write(FLASK_ANSWER);
      socket.destroy();
    });
  }).listen(path, () => chmodSync(path, 0o666));
}

class Relay implements Dispatcher.DispatchHandlers {
  private readonly parts: Buffer[] = [];

  constructor(private readonly client: Socket) {}

  onConnect(): void {}
  onError(): void {
    this.client.destroy();
  }
  onHeaders(): boolean {
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.parts.push(chunk);
    return true;
  }
  onComplete(): void {
    const body = Buffer.concat(this.parts);
    this.client.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body]));
  }
}

function proxyFloor(port: number, upstream: string): void {
  Error.stackTraceLimit = 0;
  const pool = new Pool('http://localhost', {
    connections: null,
    connect: (_opts, callback) => {
      const socket = connect({ path: upstream });
      socket.on('error', (err) => callback(err, null));
      socket.once('connect', () => callback(null, socket));
    },
  });
  const headers = ['Host', `127.0.0.1:${port}`, 'X-Forwarded-For', '127.0.0.1', 'X-Forwarded-Proto', 'http'];
  createServer((client) => {
    client.setNoDelay(true);
    client.on('error', () => {});
    client.on('data', () => pool.dispatch({ path: '/', method: 'GET', headers }, new Relay(client)));
  }).listen(port, '127.0.0.1');
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'uwsgi' && a !== undefined) uwsgiFloor(a);
else if (mode === 'proxy' && a !== undefined && b !== undefined) proxyFloor(Number(a), b);
else throw new Error('usage: node-floor.js uwsgi SOCK | proxy PORT SOCK');
