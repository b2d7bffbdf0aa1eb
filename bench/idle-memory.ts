/**
 * The idle suite: what N idle keep-alive connections cost in memory. A client
 * process (idle-client.ts) opens N connections, one GET / on each, and leaves
 * them open; once the kernel shows all N established on both sides, the
 * resident memory of the server's processes is read from /proc and compared
 * with the same server before the client started. gatehouse: the front plus
 * its Python worker (hello app, --workers 1, --keepalive-timeout 300), target
 * under TARGET_MB in all; nginx alone (master + 1 worker, keepalive_timeout
 * 300), `return 200` on /.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { clientEvent, countEstablished, nginxFront, startClient, waitForEvent, withFdLimits } from './front-servers.js';
import type { Options } from './options.js';
import type { Proc } from './processes.js';
import { formatInt, noteLines, notesProgress, progress, renderTable } from './report.js';
import { chosenServers, skippedServers } from './suite-rows.js';
import { withServer } from './server-run.js';
import { APPS, gatehouseServer, type ServerSpec, type Versions } from './servers.js';

export const TARGET_MB = 120;
/** The client has this long to open the connections, and the whole row this long to hold them. */
const OPEN_TIMEOUT_MS = 120000;
const HOLD_SECONDS = 300;

/** Resident memory in MiB: RSS counts shared pages in each process, PSS splits them. */
export interface Memory {
  processes: number;
  rss: number;
  pss: number;
  /** RSS of the process owning the port (gatehouse's Node front; nginx: master + worker). */
  frontRss: number;
}

export interface IdleRow {
  server: ServerSpec;
  asked: number;
  /** Established connections to the port, seen by ss: client side (the client's sockets) and server side. */
  clientSide: number | null;
  serverSide: number | null;
  /** Client side again, after the memory was read. */
  stillOpen: number | null;
  before: Memory | null;
  after: Memory | null;
  notes: string[];
}

function kib(pid: number, file: string, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'latin1'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // gone
  }
}

/** The server's processes now; for gatehouse, the front is the leader and the rest are Python. */
export function memoryOf(procs: readonly Proc[], server: ServerSpec): Memory {
  const all = procs.flatMap((p) => p.members());
  const front = server.id === 'gatehouse' ? procs.map((p) => p.pid) : all;
  const sum = (pids: readonly number[], file: string, field: string) => pids.reduce((n, pid) => n + kib(pid, file, field), 0) / 1024;
  return { processes: all.length, rss: sum(all, 'status', 'VmRSS'), pss: sum(all, 'smaps_rollup', 'Pss'), frontRss: sum(front, 'status', 'VmRSS') };
}

/** The memory is read once the total RSS moved less than SETTLE_MB over SETTLE_SAMPLES one-second samples, or after SETTLE_MAX_S. */
export const SETTLE_SAMPLES = 5;
export const SETTLE_MB = 1;
export const SETTLE_MAX_S = 30;

/**
 * Waits for the server's memory to settle: V8 keeps collecting and growing its heap for a few seconds after
 * the connections have opened, with no request going on. The seconds it took, null when it did not.
 */
export async function settle(procs: readonly Proc[], server: ServerSpec): Promise<number | null> {
  const samples: number[] = [];
  for (let s = 1; s <= SETTLE_MAX_S; s++) {
    await sleep(1000);
    samples.push(memoryOf(procs, server).rss);
    const last = samples.slice(-SETTLE_SAMPLES);
    if (last.length === SETTLE_SAMPLES && Math.max(...last) - Math.min(...last) < SETTLE_MB) return s;
  }
  return null;
}

/** The client's source addresses: one while the ephemeral ports leave room (half of them, TIME_WAIT from earlier runs aside). */
export function sourcesFor(connections: number): number {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/).map(Number);
  const ports = (high ?? 60999) - (low ?? 32768) + 1;
  return Math.max(1, Math.ceil(connections / (ports / 2)));
}

async function idleRow(server: ServerSpec, opts: Options): Promise<IdleRow> {
  const n = opts.idleConnections;
  const row: IdleRow = { server, asked: n, clientSide: null, serverSide: null, stillOpen: null, before: null, after: null, notes: [] };
  const app = APPS.find((a) => a.id === 'hello')!;
  await withServer(withFdLimits(server, n + 1000), app, opts, `${server.id}-idle`, row.notes, async (port, procs) => {
    await sleep(1000); // the warm-up's connections close
    row.before = memoryOf(procs, server);
    const sources = sourcesFor(n);
    if (sources > 1) row.notes.push(`the client used ${sources} source addresses (127.0.0.1..${sources})`);
    const client = startClient('idle-client', ['--port', String(port), '--count', String(n), '--sources', String(sources), '--max-seconds', String(HOLD_SECONDS)], n + 1000);
    try {
      const ready = await waitForEvent<{ answered: number; failed: number; errors: Record<string, number>; seconds: number }>(client, 'ready', OPEN_TIMEOUT_MS);
      if (ready.value === null) {
        row.notes.push(ready.why);
        return;
      }
      const r = ready.value;
      progress(`   ${formatInt(r.answered)} connections answered in ${r.seconds.toFixed(1)} s${r.failed > 0 ? `, ${r.failed} failed: ${JSON.stringify(r.errors)}` : ''}`);
      if (r.failed > 0) row.notes.push(`${r.failed} of ${n} connections failed: ${JSON.stringify(r.errors)}`);
      const settled = await settle(procs, server);
      if (settled === null) row.notes.push(`the memory was still changing ${SETTLE_MAX_S} s after the connections opened: read then`);
      else progress(`   memory settled ${settled} s after the connections opened`);
      const count = async (side: 'dport' | 'sport') => {
        const c = await countEstablished(port, side);
        if (typeof c === 'string') row.notes.push(c);
        return typeof c === 'number' ? c : null;
      };
      row.clientSide = await count('dport');
      row.serverSide = await count('sport');
      row.after = memoryOf(procs, server);
      row.stillOpen = await count('dport');
      if (row.clientSide !== n || row.serverSide !== n || row.stillOpen !== n) {
        row.notes.push(`not all ${n} connections were open when the memory was read: ss saw ${row.clientSide} (client side), ${row.serverSide} (server side), ${row.stillOpen} right after`);
      }
      for (const p of procs) if (!p.running) row.notes.push(`${p.name} died during the run`);
    } finally {
      await client.stop('SIGTERM', 10000);
      const end = clientEvent<{ closedByServer: number }>(client, 'end');
      if (end !== null && end.closedByServer > 0) row.notes.push(`the server closed ${end.closedByServer} idle connection(s) before the end`);
    }
  });
  return row;
}

const nginxConnections = (n: number) => Math.ceil(n * 1.25) + 100;

/** The suite's rows: gatehouse, then nginx (unless --only leaves one out); the section's lines for stdout. */
export async function runIdleSuite(versions: Versions, opts: Options): Promise<string[]> {
  const n = opts.idleConnections;
  const specs = chosenServers([
    gatehouseServer(versions, 1, ['--keepalive-timeout', '300', '--max-connections', String(n + 100)]),
    // nginx closes idle keep-alive connections once fewer than 1/16 of worker_connections are free
    nginxFront(versions, null, { keepaliveTimeout: 300, workerConnections: nginxConnections(n) }),
  ], opts);
  const rows: IdleRow[] = [];
  for (const server of specs) {
    if (server.missing() !== null) continue;
    progress(`-- idle keep-alive memory: ${server.label}, ${formatInt(n)} connections ...`);
    const row = await idleRow(server, opts);
    const c = cells(row);
    progress(`   open ${c.open}, RSS ${c.before} → ${c.after} (front ${c.front}, ${c.perConn}/connection), PSS ${c.pss}`);
    notesProgress(row.notes);
    rows.push(row);
  }
  return section(rows, skippedServers(specs), opts);
}

interface Cells {
  server: string;
  open: string;
  before: string;
  after: string;
  front: string;
  perConn: string;
  pss: string;
  target: string;
}

const mb = (n: number) => `${n.toFixed(1)} MB`;

function cells(row: IdleRow): Cells {
  const open = row.clientSide === null ? '?' : `${formatInt(Math.min(row.clientSide, row.serverSide ?? 0, row.stillOpen ?? 0))}/${formatInt(row.asked)}`;
  const target = row.server.id !== 'gatehouse' || row.after === null ? '' : row.after.rss < TARGET_MB ? `met (< ${TARGET_MB} MB)` : `MISSED (≥ ${TARGET_MB} MB)`;
  if (row.before === null || row.after === null) return { server: row.server.label, open, before: row.before ? mb(row.before.rss) : '?', after: 'failed', front: '', perConn: '', pss: '', target };
  const perConn = ((row.after.rss - row.before.rss) * 1024) / row.asked;
  return {
    server: row.server.label,
    open,
    before: mb(row.before.rss),
    after: mb(row.after.rss),
    front: mb(row.after.frontRss),
    perConn: `${perConn.toFixed(2)} KiB`,
    pss: mb(row.after.pss),
    target,
  };
}

function section(rows: readonly IdleRow[], skipped: readonly string[], opts: Options): string[] {
  const n = formatInt(opts.idleConnections);
  const head: Cells = { server: 'server', open: 'open (ss)', before: 'RSS idle', after: `RSS with ${n}`, front: 'of which front', perConn: 'per connection', pss: `PSS with ${n}`, target: `target < ${TARGET_MB} MB` };
  const keys = Object.keys(head) as Array<keyof Cells>;
  const right = new Set<keyof Cells>(['open', 'before', 'after', 'front', 'perConn', 'pss']);
  const item = opts.markdown ? '- ' : '';
  return [
    `Idle keep-alive connections (resident memory):`,
    '',
    renderTable(keys, head, rows.map(cells), right, opts.markdown),
    '',
    `${item}A separate client process opens ${n} connections (64 at a time), sends GET / on each, reads the 200 and leaves it open; once the server's resident memory has settled (it moved under ${SETTLE_MB} MB over ${SETTLE_SAMPLES} s, or ${SETTLE_MAX_S} s passed) it is read from /proc (MB = MiB). ` +
      `open: the fewest of three ss counts of established connections to the port: client side and server side before the reading, client side after; all ${n} must be open. ` +
      `RSS idle: the same server after its warm-up, before the client; per connection: (RSS with - RSS idle) / ${n}. PSS splits shared pages between processes (nginx's master and worker share most of theirs).`,
    `${item}gatehouse: the Node front plus its 1 Python worker (bench/apps/hello.py: GET / goes through the worker), --keepalive-timeout 300, --max-connections ${opts.idleConnections + 100} (the default, 10,000, is the limit itself). ` +
      `nginx: master + 1 worker, keepalive_timeout 300, worker_connections ${nginxConnections(opts.idleConnections)} (nginx closes idle keep-alive connections when fewer than 1/16 are free), GET / answered by return 200 (no back end). Both log no access.`,
    ...skipped.map((s) => `${item}${s}`),
    ...noteLines(rows.map((r) => ({ ...r, app: { id: 'hello' } })), ', idle connections', opts.markdown),
  ];
}
