/**
 * The asgi suite's WebSocket rows (bench/apps/ws_echo.py), gatehouse against
 * uvicorn (Debian's, --ws websockets and --ws wsproto), PROCESSES worker
 * processes each:
 *
 * - echo: messages per second with ECHO_CLIENTS clients, each with one
 *   message in flight (ws-echo-client.ts, a process of its own); with
 *   --repeat, the servers' runs in rounds as the main rows' (bench-row.ts);
 * - idle: the resident memory of --idle-connections open, silent
 *   WebSockets (ws-idle-client.ts), all of the server's processes, read as
 *   the idle suite reads it (idle-memory.ts) once it has settled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { countEstablished, clientEvent, startClient, waitForEvent, withFdLimits } from './front-servers.js';
import { memoryOf, settle, sourcesFor, type Memory } from './idle-memory.js';
import type { Options } from './options.js';
import { formatInt, noteLines, notesProgress, progress, renderTable, rpsCell } from './report.js';
import { withServer } from './server-run.js';
import { inRounds, medianRun } from './bench-row.js';
import { skippedServers } from './suite-rows.js';
import { gatehouseServer, hasPythonModule, uvicornLaunch, PROCESSES, PYTHON, type AppSpec, type ServerSpec, type Versions } from './servers.js';

/** Issue 11's target for the idle WebSockets, all the server's processes. */
const TARGET_MB = 150;

/** The --only names of the peers here (gatehouse is gatehouse). */
export const WEBSOCKET_SERVER_IDS = ['uvicorn-websockets', 'uvicorn-wsproto'];

const APP: AppSpec = { id: 'ws-echo', module: 'ws_echo' };
const ECHO_CLIENTS = 50;
const MESSAGE_SIZE = 32;
const OPEN_TIMEOUT_MS = 120000;
const HOLD_SECONDS = 300;
/**
 * The memory is read after the first round of keepalive pings (both servers
 * ping every 20 s by default) and its pongs: an idle server spends its life
 * between such rounds, and the first one leaves the front holding more than
 * just after the handshakes (measured on 2026-12-05: 4–6 MB more).
 */
const PING_ROUND_MS = 25000;

function uvicorn(versions: Versions, ws: 'websockets' | 'wsproto', extra: string[] = []): ServerSpec {
  return {
    id: `uvicorn-${ws}`,
    label: `uvicorn ${versions.uvicorn} (--workers ${PROCESSES}, --loop uvloop, --ws ${ws}${ws === 'websockets' ? ` ${versions.websockets}` : ''})`,
    missing: () => (hasPythonModule('uvicorn') && hasPythonModule(ws) ? null : `uvicorn or ${ws} is not installed for ${PYTHON} (apt-get install uvicorn python3-${ws})`),
    launch: (app, port) => [uvicornLaunch(app, port, ['--ws', ws, ...extra])],
    problemLines: /Traceback|\bERROR\b/,
  };
}

interface EchoRow {
  server: ServerSpec;
  done: { messages: number; seconds: number; min: number; max: number; opened: number; errors: Record<string, number> } | null;
  notes: string[];
  /** Messages per second of every run that did not fail. */
  allRates: number[];
}

async function echoRow(server: ServerSpec, opts: Options): Promise<EchoRow> {
  const row: EchoRow = { server, done: null, notes: [], allRates: [] };
  await withServer(server, APP, opts, `asgi-${server.id}-ws-echo`, row.notes, async (port) => {
    const args = ['--url', `ws://127.0.0.1:${port}/echo`, '--clients', String(ECHO_CLIENTS), '--seconds', String(opts.duration), '--warmup', '2', '--size', String(MESSAGE_SIZE)];
    const client = startClient('ws-echo-client', args, 4096);
    const done = await waitForEvent<NonNullable<EchoRow['done']>>(client, 'done', (opts.duration + 60) * 1000);
    await client.stop('SIGTERM', 5000);
    if (done.value === null) return void row.notes.push(done.why);
    row.done = done.value;
    if (done.value.opened < ECHO_CLIENTS) row.notes.push(`only ${done.value.opened}/${ECHO_CLIENTS} clients connected: ${JSON.stringify(done.value.errors)}`);
    if (done.value.min === 0) row.notes.push('a client got no echo at all (starved)');
  });
  return row;
}

/** The echo rows, --repeat runs each in rounds (each server once, then again); the median run by messages/s stands for a row. */
async function echoRows(servers: readonly ServerSpec[], opts: Options): Promise<EchoRow[]> {
  return inRounds(servers.length, opts.repeat, async (k, round) => {
    const server = servers[k]!;
    progress(`-- asgi: ${server.label} × WebSocket echo, ${ECHO_CLIENTS} clients${opts.repeat > 1 ? ` (run ${round}/${opts.repeat})` : ''} ...`);
    const run = await echoRow(server, opts);
    if (run.done) progress(`   ${formatInt(rate(run.done))} messages/s`);
    notesProgress(run.notes);
    return run;
  }, (_, runs) => {
    const { median, ok, others } = medianRun(runs, (run) => (run.done === null ? null : rate(run.done)));
    median.allRates = ok.map((run) => rate(run.done));
    median.notes.push(...others);
    return median;
  });
}

const rate = (d: EchoRow['done']) => (d === null ? 0 : d.messages / d.seconds);

interface IdleRow {
  server: ServerSpec;
  asked: number;
  open: number | null;
  before: Memory | null;
  after: Memory | null;
  notes: string[];
}

async function idleRow(server: ServerSpec, opts: Options): Promise<IdleRow> {
  const n = opts.idleConnections;
  const row: IdleRow = { server, asked: n, open: null, before: null, after: null, notes: [] };
  await withServer(withFdLimits(server, n + 1000), APP, opts, `asgi-${server.id}-ws-idle`, row.notes, async (port, procs) => {
    row.before = memoryOf(procs, server);
    const sources = sourcesFor(n);
    const args = ['--url', `ws://127.0.0.1:${port}/echo`, '--count', String(n), '--sources', String(sources), '--max-seconds', String(HOLD_SECONDS)];
    const client = startClient('ws-idle-client', args, n + 1000);
    try {
      const ready = await waitForEvent<{ opened: number; failed: number; errors: Record<string, number>; seconds: number }>(client, 'ready', OPEN_TIMEOUT_MS);
      if (ready.value === null) return void row.notes.push(ready.why);
      const r = ready.value;
      progress(`   ${formatInt(r.opened)} WebSockets open in ${r.seconds.toFixed(1)} s${r.failed > 0 ? `, ${r.failed} failed: ${JSON.stringify(r.errors)}` : ''}`);
      if (r.failed > 0) row.notes.push(`${r.failed} of ${n} WebSockets failed: ${JSON.stringify(r.errors)}`);
      await sleep(PING_ROUND_MS);
      if ((await settle(procs, server)) === null) row.notes.push('the memory was still changing 30 s after the first round of pings: read then');
      const serverSide = await countEstablished(port, 'sport');
      row.after = memoryOf(procs, server);
      const clientSide = await countEstablished(port, 'dport');
      if (typeof serverSide === 'string' || typeof clientSide === 'string') row.notes.push(`ss: ${serverSide} / ${clientSide}`);
      else row.open = Math.min(serverSide, clientSide);
      if (row.open !== null && row.open < n) row.notes.push(`only ${row.open} of ${n} sockets were open when the memory was read`);
    } finally {
      await client.stop('SIGTERM', 10000);
      const end = clientEvent<{ closedByServer: number }>(client, 'end');
      if (end !== null && end.closedByServer > 0) row.notes.push(`the server closed ${end.closedByServer} socket(s) before the end`);
    }
  });
  return row;
}

const mb = (n: number) => `${n.toFixed(1)} MB`;

/** The WebSocket rows, for the asgi suite; the section's lines for stdout. */
export async function runWebSocketRows(versions: Versions, opts: Options): Promise<string[]> {
  const n = opts.idleConnections;
  const keep = (s: ServerSpec) => opts.only === null || opts.only.has(s.id) || (s.id.startsWith('uvicorn') && opts.only.has('uvicorn'));
  const echoServers = [gatehouseServer(versions, PROCESSES, ['--interface', 'asgi']), uvicorn(versions, 'websockets'), uvicorn(versions, 'wsproto')].filter(keep);
  const idleServers = [
    gatehouseServer(versions, PROCESSES, ['--interface', 'asgi', '--max-concurrency', String(n), '--max-connections', String(n + 100)]),
    uvicorn(versions, 'websockets', ['--backlog', '4096']),
  ].filter(keep);
  const skipped = skippedServers([...echoServers, ...idleServers]);
  const echoes = await echoRows(echoServers.filter((s) => s.missing() === null), opts);
  const idles: IdleRow[] = [];
  for (const server of idleServers) {
    if (server.missing() !== null) continue;
    progress(`-- asgi: ${server.label} × ${formatInt(n)} idle WebSockets ...`);
    const row = await idleRow(server, opts);
    if (row.after) progress(`   RSS ${mb(row.before!.rss)} → ${mb(row.after.rss)} (PSS ${mb(row.after.pss)})`);
    notesProgress(row.notes);
    idles.push(row);
  }
  const gatehouseRate = echoes.find((r) => r.server.id === 'gatehouse')?.done;
  const echoHead = { server: 'server', rate: 'messages/s', spread: 'per client (fewest–most)', ratio: 'gatehouse/peer' };
  const echoBody = echoes.map((r) => ({
    server: r.server.label,
    rate: r.done === null ? 'failed' : rpsCell(rate(r.done), r.allRates),
    spread: r.done === null ? '' : `${formatInt(r.done.min)}–${formatInt(r.done.max)}`,
    ratio: r.server.id === 'gatehouse' || !gatehouseRate || r.done === null ? '—' : `${(rate(gatehouseRate) / rate(r.done)).toFixed(2)}×`,
  }));
  const idleHead = { server: 'server', open: 'open (ss)', before: 'RSS before', after: `RSS with ${formatInt(n)}`, front: 'of which front', per: 'per socket', pss: `PSS with ${formatInt(n)}`, target: `target < ${TARGET_MB} MB` };
  const idleBody = idles.map((r) => ({
    server: r.server.label,
    open: r.open === null ? '?' : `${formatInt(r.open)}/${formatInt(n)}`,
    before: r.before ? mb(r.before.rss) : '?',
    after: r.after ? mb(r.after.rss) : 'failed',
    front: r.after && r.server.id === 'gatehouse' ? mb(r.after.frontRss) : '',
    per: r.after && r.before ? `${(((r.after.rss - r.before.rss) * 1024) / n).toFixed(2)} KiB` : '',
    pss: r.after ? mb(r.after.pss) : '',
    target: r.server.id !== 'gatehouse' || r.after === null ? '' : r.after.rss < TARGET_MB ? 'met' : 'MISSED',
  }));
  const item = opts.markdown ? '- ' : '';
  return [
    'ASGI WebSockets:',
    '',
    renderTable(['server', 'rate', 'spread', 'ratio'] as const, echoHead, echoBody, new Set(['rate', 'spread', 'ratio'] as const), opts.markdown),
    '',
    renderTable(['server', 'open', 'before', 'after', 'front', 'per', 'pss', 'target'] as const, idleHead, idleBody, new Set(['open', 'before', 'after', 'front', 'per', 'pss'] as const), opts.markdown),
    '',
    `${item}Echo: ${ECHO_CLIENTS} WebSocket clients (npm ws, one Node process, no compression) each send a ${MESSAGE_SIZE}-byte text message and the next when its echo is back, 2 s warm-up then ${opts.duration} s counted${opts.repeat > 1 ? `; the median of ${opts.repeat} runs in rounds (range in brackets)` : ''}; bench/apps/ws_echo.py (raw ASGI). ${PROCESSES} Python processes each.`,
    `${item}Idle: ${formatInt(n)} WebSockets opened (64 handshakes at a time) and left silent; resident memory (MB = MiB) of all the server's processes after the first round of keepalive pings (${PING_ROUND_MS / 1000} s after the last socket opened; both ping every 20 s) once it settled, as the idle suite reads it; "of which front": gatehouse's Node process; PSS splits the pages processes share between them (Python's and Node's code and libraries, also with processes outside the server: the client is a Node process too). Targets (issue 11): echo ≥ 1.0× uvicorn; ${formatInt(n)} idle WebSockets < ${TARGET_MB} MB in all.`,
    ...skipped.map((s) => `${item}${s}`),
    ...noteLines([...echoes, ...idles].map((r) => ({ server: r.server, app: APP, notes: r.notes })), ', WebSockets', opts.markdown),
  ];
}
