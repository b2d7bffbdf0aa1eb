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
 * An open socket's events go straight to its owner (OwnedSocket.emit), not
 * through listeners: four closures and an event table per socket otherwise.
 * Its frame parser (ws's Receiver, a Writable stream with its state and
 * listeners: the largest part of an open socket) is dropped by the sweep
 * once the socket has been silent since the last sweep with no frame under
 * way, and made again when bytes arrive: a silent socket holds none.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { WebSocket, WebSocketServer } from 'ws';
import { MemberList } from '../http/member-list.js';

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

/** What an open socket's owner hears of ws's events. */
export interface SocketEvents {
  onMessage(data: Buffer, binary: boolean): void;
  /** ws's 'close': the socket itself is closed too. */
  onClose(code: number, reason: Buffer): void;
  onPong(): void;
  onError(err: Error & { code?: string }): void;
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

type OwnedSocket = WebSocket & { owner: SocketEvents | null; shedReceiver(): void };

const NO_EXTENSIONS = Object.freeze({});

/** What this file reads of ws's Receiver (lib/receiver.js): its settings, its listeners and whether a frame is under way. */
interface Receiver {
  _allowSynchronousEvents: boolean;
  _binaryType: string;
  _extensions: object;
  _isServer: boolean;
  _maxBufferedChunks: number;
  _maxFragments: number;
  _maxPayload: number;
  _skipUTF8Validation: boolean;
  /** 0: waiting for a frame's first bytes (GET_INFO). */
  _state: number;
  _bufferedBytes: number;
  _fragmented: number;
  _errored: boolean;
  _loop: boolean;
  _writableState: { length: number; writing: boolean; ending: boolean; needDrain: boolean };
  eventNames(): Array<string | symbol>;
  listeners(event: string | symbol): Array<(...args: unknown[]) => void>;
  on(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
}
type ReceiverClass = new (options: object) => Receiver;

/**
 * How ws made a socket's first receiver, to make another alike: the options
 * (the same for every socket without permessage-deflate), its listeners
 * (ws's own functions, shared by all sockets) and the symbol that points
 * back to the socket.
 */
interface ReceiverRecipe {
  make: ReceiverClass;
  options: object;
  listeners: Array<[string | symbol, (...args: unknown[]) => void]>;
  owner: symbol;
}

function recipeOf(make: ReceiverClass, r: Receiver): ReceiverRecipe {
  const owner = Object.getOwnPropertySymbols(r).find((s) => s.description === 'websocket');
  if (owner === undefined) throw new Error("ws's Receiver has no 'websocket' symbol: this ws version is not supported");
  const options = {
    allowSynchronousEvents: r._allowSynchronousEvents,
    binaryType: r._binaryType,
    extensions: r._extensions,
    isServer: r._isServer,
    maxBufferedChunks: r._maxBufferedChunks,
    maxFragments: r._maxFragments,
    maxPayload: r._maxPayload,
    skipUTF8Validation: r._skipUTF8Validation,
  };
  return { make, options, listeners: r.eventNames().flatMap((e) => r.listeners(e).map((l) => [e, l] as [string | symbol, (...args: unknown[]) => void])), owner };
}

/** Nothing under way: no frame begun, no bytes waiting, no error, not ended, not holding the socket back. */
function idle(r: Receiver): boolean {
  const w = r._writableState;
  return r._state === 0 && r._bufferedBytes === 0 && r._fragmented === 0 && !r._errored && !r._loop && w.length === 0 && !w.writing && !w.ending && !w.needDrain;
}

/** ws's WebSocket, whose events go to its owner once it has one (ws emits at most two arguments). */
function ownedSocket(base: typeof WebSocket, receiverClass: ReceiverClass): typeof WebSocket {
  let recipe: ReceiverRecipe | null = null;
  return class extends base {
    owner: SocketEvents | null = null;
    /** The receiver, null while the socket is silent (shedReceiver). */
    private live: Receiver | null = null;
    /** The receiver was asked for since the last sweep. */
    private used = false;

    /** ws's own field, through which every use of the receiver goes: one is made when there is none. */
    get _receiver(): Receiver | null {
      this.used = true;
      return (this.live ??= this.remakeReceiver());
    }
    set _receiver(r: Receiver | null) {
      this.live = r;
    }

    private remakeReceiver(): Receiver | null {
      if (recipe === null) return null; // none was let go yet: before setSocket, ws has none either
      const r = new recipe.make(recipe.options);
      (r as unknown as Record<symbol, unknown>)[recipe.owner] = this;
      for (const [event, listener] of recipe.listeners) r.on(event, listener);
      return r;
    }

    /** The sweep's: a receiver not asked for since the last sweep, with nothing under way, is let go. */
    shedReceiver(): void {
      const r = this.live;
      if (r !== null && !this.used && this._extensions === NO_EXTENSIONS && this.readyState === this.OPEN && idle(r)) {
        recipe ??= recipeOf(receiverClass, r);
        this.live = null;
      }
      this.used = false;
    }
    /**
     * No event table: EventEmitter's empty one is a dictionary-mode object
     * (its literal has a null prototype), about 180 bytes per open socket.
     * EventEmitter makes one again if a listener is ever added.
     */
    _events = undefined;
    /** No extension negotiated: one empty table for every such socket (ws sets a socket's own when permessage-deflate is). */
    _extensions = NO_EXTENSIONS;
    declare _pendingAutoPongs: number;

    /**
     * ws makes a callback per socket for the pongs it sends on its own (an
     * arrow function and its context); only a pong on its way needs it: it
     * is made then.
     */
    set _autoPongComplete(_: () => void) {}
    get _autoPongComplete(): () => void {
      return () => void this._pendingAutoPongs--;
    }

    override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
      const owner = this.owner;
      if (owner === null) return super.emit(event, a, b);
      switch (event) {
        case 'message':
          owner.onMessage(a as Buffer, b as boolean);
          return true;
        case 'close':
          owner.onClose(a as number, b as Buffer);
          return true;
        case 'pong':
          owner.onPong();
          return true;
        case 'error':
          owner.onError(a as Error);
          return true;
      }
      return false;
    }
  };
}

export class WebSocketFront {
  /** Made at the first handshake: servers without WebSockets do not load `ws`. */
  private server: WebSocketServer | null = null;
  private readonly owners = new WeakMap<IncomingMessage, HandshakeOwner>();
  private readonly open = new MemberList<Keepalive>(KEEPALIVE_AT);
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly settings: WebSocketSettings) {}

  private makeServer(): WebSocketServer {
    const settings = this.settings;
    const ws = createRequire(import.meta.url)('ws') as typeof import('ws') & { Receiver: ReceiverClass };
    const server = new ws.WebSocketServer({
      noServer: true,
      WebSocket: ownedSocket(ws.WebSocket, ws.Receiver),
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
      const tick = Math.min(SWEEP_MAX_MS, every / 2, Math.max(1, this.settings.pingTimeout * 500));
      this.timer = setInterval(() => this.sweep(), tick);
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
    for (const k of this.open) {
      const ws = k.ws!;
      (ws as OwnedSocket).shedReceiver();
      if (k.pingAt !== 0) {
        if (timeout > 0 && now - k.pingAt >= timeout && !k.holding) ws.terminate();
      } else if (now - k.lastPing >= every) {
        k.pingAt = k.lastPing = now;
        ws.ping();
      }
    }
  }
}
