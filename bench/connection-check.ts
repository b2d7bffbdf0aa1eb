/**
 * The connection check: does the server serve all of wrk's connections?
 *
 * A server that serves 2 of wrk's 50 keep-alive connections and starves the
 * rest can post a great req/s (uWSGI --http11-socket does: see DESIGN.md),
 * and wrk does not tell. So while wrk runs we read the kernel's view of wrk's
 * sockets twice, at 40% and 80% of the run (`ss -tine` on the client side:
 * dport = the front's port, so nginx's own sockets to uWSGI never count), and
 * judge each connection by the bytes it received in between.
 */
import { firstLine, runCommand } from './processes.js';
import { CONNECTIONS } from './wrk.js';

/** A connection is served when it received at least this share of the mean. */
export const SERVED_SHARE = 0.05;

export interface ClientSocket {
  /** The socket cookie (`sk:` in `ss -e`), unique for the kernel's lifetime. */
  cookie: string;
  bytesReceived: number;
}

/** Parses `ss -tine state established ... '( dport = :PORT )'`: wrk's side of its connections. */
export function parseSs(text: string, port: number): ClientSocket[] {
  const sockets: ClientSocket[] = [];
  let current: ClientSocket | null = null;
  const seen = new Set<string>();
  const addr = /(?:^|\s)(\d{1,3}(?:\.\d{1,3}){3}):(\d+)\s+(\d{1,3}(?:\.\d{1,3}){3}):(\d+)(?=\s|$)/;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || /^\s*(State|Recv-Q)\b/.test(line)) continue;
    if (!/^\s/.test(line)) {
      const m = addr.exec(line);
      current = null;
      if (!m || Number(m[4]) !== port) continue; // only connections to the front's port
      const cookie = /\bsk:([0-9a-f]+)/.exec(line);
      const key = cookie ? cookie[1]! : `port:${m[2]}`;
      if (seen.has(key)) continue; // a dump taken while sockets come and go can list one twice
      seen.add(key);
      current = { cookie: key, bytesReceived: 0 };
      sockets.push(current);
    }
    // bytes_received may sit on the socket line or the indented info line; ss leaves it out when 0
    const b = /\bbytes_received:(\d+)/.exec(line);
    if (b && current) current.bytesReceived = Number(b[1]);
  }
  return sockets;
}

/** One read of wrk's connections to `port`, or why it failed. */
export async function readClientSockets(port: number): Promise<ClientSocket[] | string> {
  const r = await runCommand('ss', 'ss', ['-tine', 'state', 'established', 'state', 'close-wait', 'state', 'last-ack', `( dport = :${port} )`], 5000);
  if (r.code !== 0) return `ss failed (${r.timedOut ? 'timed out' : `exit ${r.code}`}): ${firstLine(r.out)}`;
  return parseSs(r.out, port);
}

export interface ConnectionVerdict {
  /** CONNECTIONS minus the starved ones. */
  served: number;
  /** Connections alive at both reads that received less than 5% of the mean of those. */
  starved: number;
  /** Distinct wrk connections the second read saw. */
  seen: number;
  /** ... of which alive at both reads. */
  kept: number;
  /** ... of which opened between the reads (the server closed the previous one after answering). */
  renewed: number;
  /** Bytes the best and the worst kept connection received between the reads. */
  maxBytes: number;
  minBytes: number;
  /** False when the reads saw too few of wrk's connections to judge. */
  reliable: boolean;
}

/**
 * A connection alive at both reads is served when it received at least 5% of
 * the mean of such connections between the reads; one that is not is starved.
 * A connection opened between the reads replaced one the server closed after
 * answering (wrk reconnects only then: gunicorn sync, uWSGI --http-socket),
 * so its slot was served.
 *
 * served = 50 - starved, not "connections seen and served": with servers that
 * close after every response, thousands of connections come and go per
 * second, and a dump of the kernel's socket table can miss one in transit
 * (or list it twice; sockets are deduplicated by cookie). Starvation needs
 * positive evidence: a connection that stayed open and got nothing.
 */
export function judgeConnections(first: readonly ClientSocket[], second: readonly ClientSocket[]): ConnectionVerdict {
  const before = new Map(first.map((s) => [s.cookie, s.bytesReceived]));
  const deltas: number[] = [];
  let renewed = 0;
  for (const s of second) {
    const was = before.get(s.cookie);
    if (was === undefined) renewed++;
    else deltas.push(Math.max(0, s.bytesReceived - was));
  }
  const mean = deltas.length > 0 ? deltas.reduce((a, b) => a + b, 0) / deltas.length : 0;
  const starved = deltas.filter((d) => d === 0 || d < SERVED_SHARE * mean).length;
  return {
    served: Math.max(0, CONNECTIONS - starved),
    starved,
    seen: second.length,
    kept: deltas.length,
    renewed,
    maxBytes: deltas.length > 0 ? Math.max(...deltas) : 0,
    minBytes: deltas.length > 0 ? Math.min(...deltas) : 0,
    reliable: second.length >= CONNECTIONS * 0.9 && first.length >= CONNECTIONS * 0.9,
  };
}
