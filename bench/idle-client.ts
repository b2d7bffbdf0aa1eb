/**
 * The idle suite's client, a process of its own (idle-memory.ts starts it):
 * opens --count keep-alive connections, sends one GET on each and reads its
 * response, then leaves them idle until SIGTERM or --max-seconds, and closes
 * them all.
 *
 *     node dist/bench/idle-client.js --port 8000 --count 10000 [--path /] [--sources 1] [--max-seconds 300]
 *
 * --sources N spreads the connections over the source addresses 127.0.0.1..N,
 * for counts beyond one address's ephemeral ports. Prints JSON lines:
 * {"event":"ready",...} once every connection has its response (or failed),
 * {"event":"end",...} when it closes them.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    count: { type: 'string' },
    path: { type: 'string', default: '/' },
    sources: { type: 'string', default: '1' },
    'max-seconds': { type: 'string', default: '300' },
  },
});
const port = Number(values.port);
const count = Number(values.count);
const sources = Number(values.sources);
const maxSeconds = Number(values['max-seconds']);
if (!(port > 0) || !(count > 0) || !(sources >= 1) || !(maxSeconds > 0)) {
  process.stderr.write('usage: idle-client.js --port PORT --count N [--path /] [--sources N] [--max-seconds S]\n');
  process.exit(2);
}

/** Connections being opened at once: more would overflow the server's listen backlog (511 for Node and nginx). */
const IN_FLIGHT = 64;
const request = Buffer.from(`GET ${values.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: gatehouse-bench-idle\r\n\r\n`);
const started = Date.now();
const sockets = new Set<Socket>();
let next = 0;
let answered = 0;
let failed = 0;
let closedByServer = 0;
let ending = false;
const errors = new Map<string, number>();

function print(event: string, extra: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ event, open: sockets.size, ...extra })}\n`);
}

function fail(socket: Socket, why: string): void {
  errors.set(why, (errors.get(why) ?? 0) + 1);
  failed++;
  sockets.delete(socket);
  socket.destroy();
}

/** Opens connection `i`; resolves once its response has been read (or it failed). */
function open(i: number): Promise<void> {
  return new Promise((resolve) => {
    const localAddress = sources > 1 ? `127.0.0.${1 + (i % sources)}` : undefined;
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    sockets.add(socket);
    let head = Buffer.alloc(0);
    let bodyLeft = -1;
    let done = false;
    const finish = (why: string | null) => {
      if (done) return;
      done = true;
      if (why === null) answered++;
      else fail(socket, why);
      resolve();
    };
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      if (done) return; // a keep-alive connection sends nothing unasked
      if (bodyLeft < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        if (!status || status[1] !== '200') return finish(`status ${status ? status[1] : '?'}`);
        if (!length) return finish('no Content-Length');
        if (/\r\nconnection:\s*close/i.test(text)) return finish('Connection: close');
        bodyLeft = Number(length[1]);
        chunk = head.subarray(end + 4);
      }
      bodyLeft -= chunk.length;
      if (bodyLeft <= 0) finish(null);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.on('close', () => {
      if (!sockets.delete(socket)) return;
      if (done && !ending) closedByServer++;
      finish('closed before the response');
    });
  });
}

async function opener(): Promise<void> {
  while (next < count && !ending) await open(next++);
}

function end(reason: string): void {
  if (ending) return;
  ending = true;
  print('end', { reason, closedByServer, seconds: (Date.now() - started) / 1000 });
  for (const s of sockets) s.destroy();
  process.exit(0);
}

process.on('SIGTERM', () => end('SIGTERM'));
process.on('SIGINT', () => end('SIGINT'));
setTimeout(() => end(`--max-seconds ${maxSeconds}`), maxSeconds * 1000);

await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, opener));
print('ready', { answered, failed, errors: Object.fromEntries(errors), seconds: (Date.now() - started) / 1000 });
