/**
 * An upgrade (WebSocket) through the `proxy` action: the client's request
 * goes to one upstream with its Upgrade; a 101 there is a 101 to the client
 * and then the two sockets are joined, bytes both ways with backpressure,
 * until either side closes or ends (its bytes passed on first), or neither
 * sends for read_timeout (as nginx's proxy_read_timeout closes an idle
 * WebSocket). Any other answer goes to the client as it is, and the
 * connection closes after it. A client that closes or half-closes before the
 * answer has gone away (nginx's 499): the upstream request is aborted, its
 * connection closed as soon as it is made.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpgradeRequest } from '../http/handler.js';
import { clientResponseHeaders, upstreamRequestHeaders, upstreamTarget } from './proxy-headers.js';
import type { ProxyRoute } from './proxy-exchange.js';
import { requestServername } from './proxy-target.js';
import { UpstreamError } from './upstream-failure.js';

/** Bytes a client may send before the upstream's answer; past them it is no longer read until then. */
const EARLY_LIMIT = 64 * 1024;

export function tunnel(route: ProxyRoute, u: UpgradeRequest, key: string): void {
  const { req, socket } = u;
  const peer = route.balancer.pick(new Set(), key);
  if (peer === null) return failed(route, u, route.balancer.peers.map((p) => p.name).join(', '), new UpstreamError(502, 'connect', 'no live upstreams'), false);
  const headers = upstreamRequestHeaders(u, route.rules, null);
  let abort: ((err?: Error) => void) | null = null;
  let connected = false;
  let status = 0;
  let bytes = 0;
  let logged = false;
  const log = (s: number) => {
    if (logged) return;
    logged = true;
    u.log(s, bytes);
  };
  // Read until the answer, so that a FIN is seen; bytes sent before it (a client should wait for the 101) go up after it.
  const early: Buffer[] = [];
  let earlyBytes = 0;
  const keepEarly = (chunk: Buffer) => {
    early.push(chunk);
    earlyBytes += chunk.length;
    if (earlyBytes > EARLY_LIMIT) socket.pause();
  };
  const clientGone = () => {
    abort?.();
    // Undici's connection, still being made, is closed in onConnect.
    socket.destroy();
    log(status || 499);
  };
  const watching = [['data', keepEarly], ['end', clientGone], ['close', clientGone]] as const;
  for (const [event, listener] of watching) socket.on(event, listener);
  const unwatch = () => {
    for (const [event, listener] of watching) socket.removeListener(event, listener);
  };
  peer.active++;
  const handler: Dispatcher.DispatchHandlers = {
    onConnect(a) {
      abort = a;
      connected = true;
      if (socket.destroyed) a();
    },
    onUpgrade(code, raw, upstream) {
      peer.active--;
      route.balancer.succeeded(peer);
      status = code;
      unwatch();
      socket.pause();
      const lines = [`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}`];
      const h = (raw ?? []).map((x) => (Buffer.isBuffer(x) ? x.toString('latin1') : x));
      for (let i = 0; i < h.length; i += 2) lines.push(`${h[i]}: ${h[i + 1]}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      if (u.head.length > 0) upstream.write(u.head);
      for (const chunk of early) upstream.write(chunk);
      join(socket, upstream, route.settings.read_timeout * 1000, (n) => (bytes += n), () => log(101));
    },
    onHeaders(code, raw, _resume, text) {
      if (code < 200) return true;
      peer.active--;
      status = code;
      const flat = clientResponseHeaders(raw, route.rules, u, [peer.target.authority]);
      const lines = [`HTTP/1.1 ${code} ${text || STATUS_CODES[code] || ''}`, 'Connection: close'];
      for (let i = 0; i < flat.length; i += 2) lines.push(`${flat[i]}: ${flat[i + 1]}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      return true;
    },
    onData(chunk) {
      bytes += chunk.length;
      socket.write(chunk);
      return true;
    },
    onComplete() {
      socket.end();
      log(status);
    },
    onError(err) {
      if (status === 0) peer.active--;
      if (socket.destroyed) return;
      const code = (err as { code?: string }).code ?? '';
      const failure = !connected
        ? new UpstreamError(code === 'UND_ERR_CONNECT_TIMEOUT' ? 504 : 502, 'connect', err.message)
        : new UpstreamError(code === 'UND_ERR_HEADERS_TIMEOUT' ? 504 : 502, 'read', err.message);
      if (status === 0) route.balancer.failed(peer);
      failed(route, u, peer.name, failure, status !== 0);
    },
  };
  peer.pool.dispatch(
    {
      ...requestServername(peer.target),
      path: upstreamTarget(u, route.rules.passPath),
      method: 'GET',
      headers,
      upgrade: req.headers.upgrade ?? 'websocket',
      headersTimeout: route.settings.read_timeout * 1000,
    },
    handler,
  );
}

/**
 * Both ways until one side closes, or ends and what it sent is written to
 * the other (as nginx: a half-closed tunnel is not kept); `counted` gets the
 * bytes sent to the client.
 */
function join(client: Duplex, upstream: Duplex, idleMs: number, counted: (n: number) => void, closed: () => void): void {
  upstream.on('data', (chunk: Buffer) => counted(chunk.length));
  client.pipe(upstream);
  upstream.pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
    closed();
  };
  for (const s of [client, upstream]) {
    s.on('error', end);
    s.on('close', end);
    // The other side ended, and pipe() ended this one once all was written.
    s.on('finish', end);
    if (idleMs > 0 && 'setTimeout' in s) (s as Duplex & { setTimeout(ms: number, cb: () => void): void }).setTimeout(idleMs, end);
  }
}

function failed(route: ProxyRoute, u: UpgradeRequest, upstream: string, failure: UpstreamError, started: boolean): void {
  const phase = failure.phase === 'connect' ? 'connecting' : 'reading the response';
  route.logger.error(`${u.req.method} ${u.req.url}: upstream ${upstream} failed while ${phase}: ${failure.message} (${started ? 'response cut' : failure.status})`);
  if (started) return void u.socket.destroy();
  const text = failure.status === 504 ? 'Gateway Timeout\n' : 'Bad Gateway\n';
  u.socket.end(`HTTP/1.1 ${failure.status} ${STATUS_CODES[failure.status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
  u.log(failure.status, text.length);
}
