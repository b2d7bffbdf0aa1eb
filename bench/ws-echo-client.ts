/**
 * The WebSocket echo rows' client, a process of its own (asgi-websocket-rows.ts
 * starts it): opens --clients WebSockets (npm `ws`, no compression), then each
 * sends a --size byte text message and sends the next one when the echo is
 * back, for --warmup seconds (not counted) and then --seconds (counted).
 * Each client has one message in flight: the count is bounded by the
 * server's turnaround, and no buffer grows.
 *
 *     node dist/bench/ws-echo-client.js --url ws://127.0.0.1:8000/echo [--clients 50] [--seconds 10] [--warmup 2] [--size 32]
 *
 * Prints one JSON line: {"event":"done","messages":N,"seconds":S,"min":N,"max":N,"opened":N,"errors":{...}},
 * min and max being the fewest and most echoes one client got.
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    clients: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    size: { type: 'string', default: '32' },
  },
});
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const message = 'x'.repeat(Number(values.size));
const errors: Record<string, number> = {};
const counts = new Array<number>(clients).fill(0);
let counting = false;
let stopped = false;

function open(i: number): Promise<WebSocket | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(values.url!, { perMessageDeflate: false });
    ws.on('open', () => resolve(ws));
    ws.on('error', (err) => {
      errors[err.message] = (errors[err.message] ?? 0) + 1;
      resolve(null);
    });
    ws.on('message', () => {
      if (counting) counts[i]!++;
      if (!stopped) ws.send(message);
    });
  });
}

const sockets = await Promise.all(Array.from({ length: clients }, (_, i) => open(i)));
const opened = sockets.filter((ws) => ws !== null);
for (const ws of opened) ws.send(message);
await new Promise((r) => setTimeout(r, warmup * 1000));
counting = true;
const started = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
stopped = true;
const elapsed = (performance.now() - started) / 1000;
const messages = counts.reduce((a, b) => a + b, 0);
process.stdout.write(`${JSON.stringify({ event: 'done', messages, seconds: elapsed, min: Math.min(...counts), max: Math.max(...counts), opened: opened.length, errors })}\n`);
for (const ws of opened) ws.terminate();
process.exit(0);
