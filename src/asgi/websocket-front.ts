/**
 * The front's side of ASGI WebSockets: RFC 6455 by the npm `ws` package (no
 * framing of our own), one WebSocketServer in noServer mode for every ASGI
 * route, and the keepalive pings of every open socket.
 *
 * ws checks the handshake first (a bad one gets 400, or 405 for a method
 * other than GET, before the app hears of it), then asks verifyClient: that
 * is where the app is asked (websocket.connect) and its answer awaited.
 * handleProtocols takes the app's subprotocol, the 'headers' event adds its
 * accept headers.
 *
 * Pings go out every pingInterval seconds; a socket whose pong is not back
 * within pingTimeout is cut (what uvicorn's --ws-ping-interval and
 * --ws-ping-timeout do), unless the front itself is not reading it
 * (backpressure: the app is not taking its messages). One timer looks at every socket, rather than a
 * timer per socket, so an idle socket costs no timer.
 *
 * The sockets are ws's WebSocket made lean for sockets open and silent
 * (owned-socket.ts): their events go straight to their owner, and the sweep
 * lets go of the frame parser and writer of those silent since the last one.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { WebSocket, WebSocketServer } from 'ws';
import { MemberList } from '../http/member-list.js';
import { StallGuard } from '../pool/stall-guard.js';
import { ownedSocket, type OwnedSocket, type SocketEvents, type WsParts } from './owned-socket.js';

export interface WebSocketSettings {
  /** Largest message taken from a client (bytes); past it the socket is closed with 1009. */
  maxSize: number;
  /** Seconds between pings (0: none). */
  pingInterval: number;
  /** Seconds a pong may take before the socket is cut. */
  pingTimeout: number;
  /** permessage-deflate when the client offers it. */
  perMessageDeflate: boolean;
}

/** A WebSocket whose handshake waits for its app (websocket-session.ts). */
export interface HandshakeOwner extends SocketEvents {
  /** ws found the handshake sound: ask the app, and call `accept` if it accepts. */
  verify(accept: () => void): void;
  /** The subprotocol the app chose, null for none. */
  readonly subprotocol: string | null;
  /** The app's accept headers, as `Name: value` lines. */
  readonly acceptHeaders: readonly string[];
  /** The 101 is sent: the socket is open. */
  opened(ws: WebSocket): void;
  /** ws refused the handshake as malformed. */
  malformed(status: number, why: string): void;
}

/** An open socket's place in the keepalive list: a field of the socket's owner (MemberList). */
export const KEEPALIVE_AT = Symbol('gatehouse.keepaliveAt');

/** What the keepalive sweep needs of an open socket; its times are whole milliseconds (small integers, kept unboxed). */
export interface Keepalive {
  readonly ws: WebSocket | null;
  /** When the unanswered ping went out (performance.now() ms), 0 when none is. */
  pingAt: number;
  /** When the last ping went out. */
  lastPing: number;
  /** The front is not reading the socket (backpressure): its pong cannot arrive, and that is not the client's fault. */
  readonly holding: boolean;
}

const SWEEP_MAX_MS = 1000;
/** A sweep this much later than its tick finds the front held up (stall-guard.ts). */
const HELD_MS = 1000;

export class WebSocketFront {
  /** Made at the first handshake: servers without WebSockets do not load `ws`. */
  private server: WebSocketServer | null = null;
  private readonly owners = new WeakMap<IncomingMessage, HandshakeOwner>();
  private readonly open = new MemberList<Keepalive>(KEEPALIVE_AT);
  private timer: NodeJS.Timeout | null = null;
  /** How often the open sockets are looked at (pings due, pongs late). */
  private readonly tick: number;
  private readonly stall: StallGuard;

  constructor(private readonly settings: WebSocketSettings) {
    this.tick = Math.min(SWEEP_MAX_MS, (settings.pingInterval * 1000) / 2, Math.max(1, settings.pingTimeout * 500));
    this.stall = new StallGuard(this.tick + HELD_MS);
  }

  private makeServer(): WebSocketServer {
    const settings = this.settings;
    const ws = createRequire(import.meta.url)('ws') as typeof import('ws') & WsParts;
    const server = new ws.WebSocketServer({
      noServer: true,
      WebSocket: ownedSocket(ws.WebSocket, ws),
      clientTracking: false,
      maxPayload: settings.maxSize,
      // What uvicorn's websockets gets by default: a 4 KiB window and memLevel 5 on our side, so a compressing socket costs less memory.
      perMessageDeflate: settings.perMessageDeflate ? { serverMaxWindowBits: 12, zlibDeflateOptions: { memLevel: 5 } } : false,
      verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean) => void) => this.owners.get(info.req)!.verify(() => done(true)),
      handleProtocols: (offered: Set<string>, req: IncomingMessage) => {
        const chosen = this.owners.get(req)!.subprotocol;
        return chosen !== null && offered.has(chosen) ? chosen : false;
      },
    });
    server.on('headers', (headers: string[], req: IncomingMessage) => headers.push(...this.owners.get(req)!.acceptHeaders));
    server.on('wsClientError', (err: Error, _socket: Socket, req: IncomingMessage) => this.owners.get(req)!.malformed(req.method === 'GET' ? 400 : 405, err.message));
    return server;
  }

  /** Takes an upgrade request: ws checks it, `owner` gets the app's answer. */
  handshake(req: IncomingMessage, socket: Socket, head: Buffer, owner: HandshakeOwner): void {
    this.owners.set(req, owner);
    (this.server ??= this.makeServer()).handleUpgrade(req, socket, head, (ws) => {
      (ws as OwnedSocket).owner = owner;
      owner.opened(ws);
    });
  }

  /** An open socket to keep pinging. */
  watch(k: Keepalive): void {
    const every = this.settings.pingInterval * 1000;
    if (every <= 0) return;
    k.lastPing = Math.round(performance.now());
    this.open.add(k);
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), this.tick);
      this.timer.unref();
    }
  }

  /** The pong: the socket is alive. */
  answered(k: Keepalive): void {
    k.pingAt = 0;
  }

  unwatch(k: Keepalive): void {
    this.open.delete(k);
    if (this.open.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private sweep(): void {
    const now = Math.round(performance.now());
    const every = this.settings.pingInterval * 1000;
    const timeout = this.settings.pingTimeout * 1000;
    // After the front was held up, the pongs may wait unread: no socket is cut for its pong this time.
    const held = this.stall.held(now);
    for (const k of this.open) {
      const ws = k.ws!;
      (ws as OwnedSocket).shedParts();
      if (k.pingAt !== 0) {
        if (timeout > 0 && now - k.pingAt >= timeout && !k.holding && !held) ws.terminate();
      } else if (now - k.lastPing >= every) {
        k.pingAt = k.lastPing = now;
        ws.ping();
      }
    }
  }
}
