/**
 * The undici Pool for one upstream of a `proxy` route: how it connects (a
 * unix socket; the name TLS checks), and what it does with bytes an
 * upstream sends past the end of an answer. undici stops reading the answer
 * at its declared end (its Content-Length, or the last chunk) and closes
 * the connection when more comes ('bad response'), so that it is not
 * reused; its clients here remember whose answer ended last on their
 * connection, for nginx's warning naming that request and the upstream.
 *
 * After an answer that ends its connection (Connection: close) undici
 * destroys the socket at once and gives the rest of that read back to it
 * (unshift), where it is lost without a word: those bytes are seen there.
 * Bytes that would come in a later read are never read at all (nor would
 * nginx, which closes such a connection at the answer's end too).
 */
import { createRequire } from 'node:module';
import { connect as netConnect, isIP, Socket, type NetConnectOpts } from 'node:net';
import type { buildConnector, Client, Dispatcher, Pool } from 'undici';
import type { ProxyTarget } from './proxy-target.js';

/** undici is loaded when a proxy route exists: servers without one do not carry its memory. */
const undici = (): typeof import('undici') => createRequire(import.meta.url)('undici') as typeof import('undici');

/** A request's handler that wants to know its connection (proxy-exchange.ts's). */
export interface CarriedHandler extends Dispatcher.DispatchHandlers {
  carrier: Carrier | null;
  /** The upstream sent bytes after this handler's answer had ended. */
  pastEnd(upstream: string): void;
}

/** An upstream connection's client: the handler whose answer ended last on it. */
export interface Carrier {
  answered: CarriedHandler | null;
  /** Requests written on its current connection (reset when it connects again). */
  written: number;
}

export interface PoolOptions {
  connections: number | null;
  keepAliveMs: number;
  connect: buildConnector.BuildOptions;
}

/** The Pool for the upstream `name` at `target`. */
export function upstreamPool(name: string, target: ProxyTarget, options: PoolOptions): Pool {
  const Carrying = carryingClient();
  const connect = connector(target, options.connect);
  const pool = new (undici().Pool)(target.origin, {
    connections: options.connections,
    keepAliveTimeout: options.keepAliveMs,
    keepAliveMaxTimeout: options.keepAliveMs,
    factory: (origin, opts) => {
      const client: Client & Carrier = new Carrying(origin, {
        ...opts,
        connect: (o: buildConnector.Options, callback: buildConnector.Callback) =>
          connect(o, (...args) => {
            if (args[0] === null) {
              client.written = 0;
              watchTail(args[1], () => pastEnd(client, name));
            }
            callback(...args);
          }),
      });
      return client;
    },
  });
  pool.on('disconnect', (_origin, targets, err) => {
    // undici's word for bytes that came while no request was waiting for any.
    if (err.code === 'UND_ERR_SOCKET' && err.message === 'bad response') pastEnd(targets[targets.length - 1] as Partial<Carrier>, name);
  });
  return pool;
}

/** The answer that ended last on `client`'s connection went on past its end. */
function pastEnd(client: Partial<Carrier>, upstream: string): void {
  const answered = client.answered;
  if (answered === undefined || answered === null) return;
  client.answered = null;
  answered.pastEnd(upstream);
}

const kPastEnd = Symbol('gatehouse.pastEnd');
type TailSocket = Socket & { [kPastEnd]?: () => void };

/** Sees what undici gives back to a socket it has destroyed at an answer's end (the module header says why). */
function watchTail(socket: Socket, pastEnd: () => void): void {
  (socket as TailSocket)[kPastEnd] = pastEnd;
  socket.unshift = unshiftPastEnd;
}

function unshiftPastEnd(this: TailSocket, chunk: Buffer, encoding?: BufferEncoding): void {
  if (this.destroyed && chunk.length > 0) this[kPastEnd]!();
  Socket.prototype.unshift.call(this, chunk, encoding);
}

let carrying: (new (origin: URL, opts: object) => Client & Carrier) | null = null;

function carryingClient(): new (origin: URL, opts: object) => Client & Carrier {
  return (carrying ??= class extends undici().Client implements Carrier {
    answered: CarriedHandler | null = null;
    written = 0;

    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): boolean {
      // Bytes past an answer's end are that answer's only until another request goes out here (the
      // pool gives a client its next request once the last one is over).
      this.answered = null;
      if ('pastEnd' in handler) (handler as CarriedHandler).carrier = this;
      return super.dispatch(options, handler);
    }
  });
}

/**
 * How undici opens a connection to an upstream. A unix socket connects at
 * once or fails (it never waits, so no connect timeout applies) and has no
 * TCP options: a plain net.connect is all it needs, where undici's own
 * connector adds a timer and a socket options pass to every connection (with
 * a back end that closes each connection, one per request).
 *
 * TLS: undici names the server (SNI, and the name its certificate is checked
 * against) after each request's Host header; a proxy passes the client's
 * Host, but the certificate is the upstream's. The name is the upstream
 * address's, as nginx's proxy_ssl_name (none for an IP address, whose
 * certificate is then checked for that IP).
 */
function connector(target: ProxyTarget, options: buildConnector.BuildOptions): buildConnector.connector {
  const path = target.socketPath;
  if (path !== undefined) return (_opts, callback) => unixConnect(path, callback);
  const connect = undici().buildConnector(options);
  if (!target.tls) return connect;
  const host = target.authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const servername = isIP(host) === 0 ? host : undefined;
  return (opts, callback) => connect({ ...opts, servername }, callback);
}

function unixConnect(path: string, callback: buildConnector.Callback): void {
  let pending: buildConnector.Callback | null = callback;
  // undici's connector's read buffer (large bodies come in fewer reads).
  const socket = netConnect({ path, highWaterMark: 64 * 1024 } as NetConnectOpts);
  // Kept after the connect (as undici's connector does): an error before undici listens is not thrown.
  socket.on('error', (err) => {
    pending?.(err, null);
    pending = null;
  });
  socket.once('connect', () => {
    pending?.(null, socket);
    pending = null;
  });
}
