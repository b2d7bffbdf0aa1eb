/**
 * Scripted HTTP upstreams for the proxy tests: small node:http servers on
 * port 0 (or a unix socket) that echo what they received, answer a chosen
 * status, hang, reset mid-body or trickle bytes, and count their hits; and
 * raw TCP servers that answer bytes no HTTP parser accepts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { waitUntil } from './wait.js';

export interface Upstream {
  name: string;
  /** host:port, or unix:PATH. */
  address: string;
  server: Server;
  /** Requests received, by path (query left out). */
  hits: Map<string, number>;
  total(): number;
  /** Responses whose last byte the upstream handed to its socket. */
  finished: Set<string>;
  /** Health: what /health answers. */
  healthStatus: number;
  close(): Promise<void>;
}

/** What an echo answer says. */
export interface Echo {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

function handle(up: Upstream, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  up.hits.set(path, (up.hits.get(path) ?? 0) + 1);
  res.once('finish', () => up.finished.add(req.url ?? ''));
  const seg = path.split('/').filter(Boolean);
  const last = seg[seg.length - 1] ?? '';
  // Scripted misbehaviour, by the path's last segment.
  if (last === 'health') {
    res.writeHead(up.healthStatus).end();
    return;
  }
  if (last === 'hang') return; // never answers
  if (last === 'answer-at-once') {
    // Answers before the request body is in (to see whether the body is streamed).
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('started\n');
    req.on('data', () => {});
    req.on('end', () => res.end('ended\n'));
    return;
  }
  if (last === 'reset-mid') {
    res.writeHead(200, { 'Content-Length': '1000' });
    res.write(Buffer.alloc(100, 'a'));
    setTimeout(() => req.socket.destroy(), 50);
    return;
  }
  if (last === 'reset-chunked') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('part one\n');
    setTimeout(() => req.socket.destroy(), 50);
    return;
  }
  if (last === 'stall-mid') {
    res.writeHead(200, { 'Content-Length': '20' });
    res.write('first ten.');
    return; // the rest never comes
  }
  if (last === 'big') {
    const size = Number(url.searchParams.get('mb') ?? '32') * 1024 * 1024;
    res.writeHead(200, { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 'b');
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  if (last === 'page' || last === 'gzipped') {
    // A compressible page of 4.8 KB, as it is or already compressed by the upstream.
    const page = Buffer.from('<p>hello</p>'.repeat(400));
    const body = last === 'page' ? page : gzipSync(page);
    res.writeHead(200, { 'Content-Type': 'text/html', ...(last === 'gzipped' ? { 'Content-Encoding': 'gzip' } : {}) });
    res.end(body);
    return;
  }
  if (last === 'hop') {
    res.writeHead(200, [
      ['Connection', 'X-Private'],
      ['X-Private', 'secret'],
      ['Keep-Alive', 'timeout=99'],
      ['Upgrade', 'h2c'],
      ['X-Upstream-Hidden', 'hide me'],
      ['X-Kept', 'yes'],
      ['Content-Length', '2'],
    ].flat());
    res.end('ok');
    return;
  }
  if (last === 'redirect') {
    res.writeHead(302, { Location: `http://${req.headers.host}/inner/next?x=1`, 'Content-Length': '0' });
    res.end();
    return;
  }
  if (last === 'redirect-upstream') {
    res.writeHead(301, { Location: `http://${up.address}/inner/next`, Refresh: `0; url=http://${up.address}/inner/r`, 'Content-Length': '0' });
    res.end();
    return;
  }
  if (last === 'slow-503') {
    setTimeout(() => res.writeHead(503, { 'Content-Length': '0' }).end(), 300);
    return;
  }
  const status = /^status-(\d{3})$/.exec(last);
  const sleep = /^sleep-(\d+)$/.exec(last);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const echo: Echo = { name: up.name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') };
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(status ? Number(status[1]) : 200, { 'Content-Type': 'application/json', 'X-Upstream': up.name });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(echo));
    };
    if (sleep) setTimeout(send, Number(sleep[1]));
    else send();
  });
}

/** An echoing upstream on 127.0.0.1:0, or on `unixPath`. */
export async function startUpstream(name: string, unixPath?: string): Promise<Upstream> {
  const up: Upstream = {
    name,
    address: '',
    server: createServer(),
    hits: new Map(),
    total: () => [...up.hits.entries()].filter(([p]) => !p.endsWith('/health')).reduce((n, [, v]) => n + v, 0),
    finished: new Set(),
    healthStatus: 200,
    close: () => new Promise((resolve) => {
      up.server.closeAllConnections();
      up.server.close(() => resolve());
    }),
  };
  up.server.on('request', (req, res) => handle(up, req, res));
  await new Promise<void>((resolve) => (unixPath ? up.server.listen(unixPath, resolve) : up.server.listen(0, '127.0.0.1', resolve)));
  up.address = unixPath ? `unix:${unixPath}` : `127.0.0.1:${(up.server.address() as AddressInfo).port}`;
  return up;
}

/** A TCP server that answers every connection with `reply` (null: accepts and says nothing). */
export async function startRawUpstream(reply: string | null): Promise<{ address: string; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', () => {
      if (reply !== null) socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => count,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * An upstream whose keep-alive runs out just as the next request comes: it
 * answers the first request on each connection (`connection N`, kept alive)
 * and closes the connection, unanswered, when another request comes on it.
 */
export async function startStaleUpstream(): Promise<{ address: string; connections: () => number; stopListening(): void; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    const n = ++count;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    let answered = false;
    socket.on('data', (chunk) => {
      if (answered) return void socket.destroy();
      if (!chunk.includes('\r\n\r\n')) return;
      answered = true;
      const body = `connection ${n}`;
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => count,
    /** No new connections (refused), the open ones kept. */
    stopListening: () => void server.close(),
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      if (server.listening) server.close(() => resolve());
      else resolve();
    }),
  };
}

/** An address where nothing listens (a port just freed). */
export async function refusedAddress(): Promise<string> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/** Asks gatehouse (at `port`) for 32 MiB from `up` at `route`/big without reading it; says whether `up` got rid of all of it (`stalled` runs before the client goes). */
export async function finishedWhileClientStalls(port: number, route: string, up: Upstream, stalled = () => {}): Promise<boolean> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.pause();
  socket.write(`GET ${route}/big?mb=32 HTTP/1.1\r\nHost: x\r\n\r\n`);
  const finished = await waitUntil(() => up.finished.has(`${route}/big?mb=32`), 3000);
  stalled();
  socket.destroy();
  return finished;
}
