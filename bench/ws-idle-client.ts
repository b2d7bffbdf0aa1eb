/**
 * The idle WebSocket row's client, a process of its own (asgi-websocket-rows.ts
 * starts it): opens --count WebSockets (npm `ws`, 64 handshakes at a time, no
 * compression offered), then leaves them open and silent until SIGTERM or
 * --max-seconds (answering the server's pings, as a browser does).
 *
 *     node dist/bench/ws-idle-client.js --url ws://127.0.0.1:8000/echo --count 10000 [--sources 1] [--max-seconds 300]
 *
 * --sources N spreads the sockets over the source addresses 127.0.0.1..N.
 * Prints JSON lines: {"event":"ready","opened":N,"failed":N,"errors":{...},"seconds":S}
 * once every handshake is done (or failed), {"event":"end","closedByServer":N} when it closes them.
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string' },
    sources: { type: 'string', default: '1' },
    'max-seconds': { type: 'string', default: '300' },
  },
});
const count = Number(values.count);
const sources = Number(values.sources);
const IN_FLIGHT = 64;
const started = Date.now();
const open = new Set<WebSocket>();
const errors: Record<string, number> = {};
let failed = 0;
let closedByServer = 0;
let ending = false;
let next = 0;

function connect(i: number): Promise<void> {
  return new Promise((resolve) => {
    const localAddress = sources > 1 ? `127.0.0.${1 + (i % sources)}` : undefined;
    const ws = new WebSocket(values.url!, { perMessageDeflate: false, ...(localAddress ? { localAddress } : {}) });
    ws.on('open', () => {
      open.add(ws);
      resolve();
    });
    ws.on('error', (err) => {
      errors[err.message] = (errors[err.message] ?? 0) + 1;
      failed++;
      resolve();
    });
    ws.on('close', () => {
      if (open.delete(ws) && !ending) closedByServer++;
    });
  });
}

async function opener(): Promise<void> {
  while (next < count && !ending) await connect(next++);
}

function end(reason: string): void {
  if (ending) return;
  ending = true;
  process.stdout.write(`${JSON.stringify({ event: 'end', reason, closedByServer })}\n`);
  for (const ws of open) ws.terminate();
  process.exit(0);
}

process.on('SIGTERM', () => end('SIGTERM'));
process.on('SIGINT', () => end('SIGINT'));
setTimeout(() => end(`--max-seconds ${values['max-seconds']}`), Number(values['max-seconds']) * 1000);
await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, opener));
process.stdout.write(`${JSON.stringify({ event: 'ready', opened: open.size, failed, errors, seconds: (Date.now() - started) / 1000 })}\n`);
