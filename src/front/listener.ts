/**
 * The server behind one listener, of the kind its settings ask for:
 *
 * - plain: node:http;
 * - TLS with `http2 = true` (the default): node:http2's secure server, which
 *   offers h2 by ALPN and hands HTTP/1.1 clients on the same port to
 *   node:http's machinery (allowHTTP1), with the same HTTP/1 limits;
 * - TLS with `http2 = false`: node:https, HTTP/1.1 only.
 *
 * Every kind calls the same request listener with (IncomingMessage,
 * ServerResponse) for HTTP/1; HTTP/2 streams are the 'stream' event's (the
 * front's onStream).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { Config, ListenerSettings } from '../config/schema.js';
import { isTls, TlsContext } from './tls-context.js';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** What the front uses of any of the three kinds. */
export type ListenerServer = NetServer & {
  closeIdleConnections(): void;
  /** A TLS listener's certificates, for SIGHUP to reload. */
  readonly tlsContext?: TlsContext;
};

/** Concurrent streams a client may open on one HTTP/2 connection (nginx's http2_max_concurrent_streams). */
const MAX_CONCURRENT_STREAMS = 128;

export function createListenerServer(listener: ListenerSettings, s: Config, onRequest: RequestListener): ListenerServer {
  const http1 = {
    maxHeaderSize: s.max_header_size,
    keepAliveTimeout: s.keepalive_timeout * 1000,
    headersTimeout: s.header_timeout * 1000,
    // Node checks the header timeout on this tick; its default (30 s) would let slowloris in for that long.
    connectionsCheckingInterval: Math.min(1000, s.header_timeout * 1000 || 1000),
    // The body has its own idle timeout (body_timeout); no cap on a whole upload.
    requestTimeout: 0,
  };
  if (!isTls(listener)) return createHttpServer(http1, onRequest);
  const tlsContext = new TlsContext(listener);
  // A client that never finishes its handshake is a slowloris too.
  const tls = { ...tlsContext.serverOptions(), handshakeTimeout: s.header_timeout * 1000 || 120_000 };
  if (!listener.http2) {
    const server = createHttpsServer({ ...tls, ...http1, ALPNProtocols: ['http/1.1'] }, onRequest);
    tlsContext.attach(server);
    return Object.assign(server, { tlsContext });
  }
  const server = createSecureServer({
    ...tls,
    allowHTTP1: true,
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: s.max_header_size },
  });
  // A 'request' listener would make node:http2 build its compatibility objects for every
  // stream (its 'newListener' hook): HTTP/2 streams come through 'stream' instead (the front's
  // onStream), and 'request' serves the HTTP/1.1 connections handed to node:http.
  for (const hook of server.listeners('newListener')) if (hook.name === 'setupCompat') server.removeListener('newListener', hook as () => void);
  server.on('request', onRequest);
  if (server.listenerCount('stream') !== 0) throw new Error('node:http2 set up its compatibility API anyway: HTTP/2 streams would be answered twice');
  tlsContext.attach(server);
  // node:http reads its limits from the server object, for the HTTP/1.1 connections too.
  Object.assign(server, http1, { tlsContext });
  // Node 20 gives an allowHTTP1 server closeIdleConnections, its typings do not.
  return server as unknown as ListenerServer;
}
