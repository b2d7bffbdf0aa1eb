/**
 * ws's server-side WebSocket made lean for sockets that are open and
 * silent, the usual state of most of them (websocket-front.ts makes its
 * WebSocketServer with it):
 *
 * - its events go straight to its owner (OwnedSocket.emit), not through
 *   listeners: four closures and an event table per socket otherwise;
 * - its frame parser and its frame writer (ws's Receiver, a Writable stream
 *   with its state and six listeners, and its Sender with its queue) are let
 *   go by the keepalive sweep (shedParts) once the socket has not used them
 *   since the last sweep and has nothing under way in them, and made again,
 *   alike, at their next use. A socket with permessage-deflate keeps them
 *   (their compression state is its own);
 * - the keepalive ping of a socket without its parts is written to the
 *   socket as is (an empty ping frame), and the client's answer, a lone
 *   empty pong frame, is heard without a frame parser: a sweep's pings
 *   would otherwise make both parts again for every socket, only for them
 *   to be let go of at the next sweep, and that churn fragments V8's old
 *   space for good.
 *
 * ws reaches both only through its `_receiver` and `_sender` fields: here
 * they are accessors. What is read of ws's internals is typed below; a ws
 * whose socket does not carry the symbol pointing back to its WebSocket (the
 * one its parts carry too), or whose 'data' listener is not socketOnData, is
 * refused at its first socket, loudly, rather than misused.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** What an open socket's owner hears of ws's events. */
export interface SocketEvents {
  onMessage(data: Buffer, binary: boolean): void;
  /** ws's 'close': the socket itself is closed too. */
  onClose(code: number, reason: Buffer): void;
  onPong(): void;
  onError(err: Error & { code?: string }): void;
}

export type OwnedSocket = WebSocket & { owner: SocketEvents | null; shedParts(): void };

type Listener = (...args: unknown[]) => void;

/** What is read of ws's Receiver (lib/receiver.js): its settings, its listeners and whether a frame is under way. */
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
  listeners(event: string | symbol): Listener[];
  on(event: string | symbol, listener: Listener): unknown;
}

/** What is read of ws's Sender (lib/sender.js). */
interface Sender {
  /** 0: nothing being compressed or read (DEFAULT). */
  _state: number;
  _queue: unknown[];
  _bufferedBytes: number;
  _firstFragment: boolean;
  onerror: Listener;
}

export interface WsParts {
  Receiver: new (options: object) => Receiver;
  Sender: new (socket: unknown, extensions: object) => Sender;
}

/** How ws made the parts of a socket, to make others alike: what the first parts let go of carried. */
interface Recipe {
  receiverOptions: object;
  receiverListeners: Array<[string | symbol, Listener]>;
  senderOnError: Listener;
}

const NO_EXTENSIONS = Object.freeze({});

/** A server's ping with no payload: FIN and opcode 0x9, unmasked, length 0. */
const EMPTY_PING = Buffer.from([0x89, 0x00]);
const EMPTY = Buffer.alloc(0);

/** A client's pong with no payload, alone in its chunk: FIN and opcode 0xA, masked, length 0, then the 4-byte mask. */
function lonePong(chunk: Buffer): boolean {
  return chunk.length === 6 && chunk[0] === 0x8a && chunk[1] === 0x80;
}

/** ws's kWebSocket: the symbol by which a socket, and each of its parts, points back to its WebSocket. */
function ownerSymbol(socket: object): symbol {
  const owner = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'websocket');
  if (owner === undefined) throw new Error("ws's socket has no 'websocket' symbol: this version of ws is not supported");
  return owner;
}

function recipeOf(r: Receiver, s: Sender): Recipe {
  const receiverOptions = {
    allowSynchronousEvents: r._allowSynchronousEvents,
    binaryType: r._binaryType,
    extensions: r._extensions,
    isServer: r._isServer,
    maxBufferedChunks: r._maxBufferedChunks,
    maxFragments: r._maxFragments,
    maxPayload: r._maxPayload,
    skipUTF8Validation: r._skipUTF8Validation,
  };
  const receiverListeners = r.eventNames().flatMap((e) => r.listeners(e).map((l): [string | symbol, Listener] => [e, l]));
  return { receiverOptions, receiverListeners, senderOnError: s.onerror };
}

/** Nothing under way: no frame begun, no bytes waiting, no error, not ended, not holding the socket back. */
function receiverIdle(r: Receiver): boolean {
  const w = r._writableState;
  return r._state === 0 && r._bufferedBytes === 0 && r._fragmented === 0 && !r._errored && !r._loop && w.length === 0 && !w.writing && !w.ending && !w.needDrain;
}

/** Nothing queued, none of a fragmented message sent. */
function senderIdle(s: Sender): boolean {
  return s._state === 0 && s._queue.length === 0 && s._bufferedBytes === 0 && s._firstFragment;
}

/** ws's WebSocket class, made lean (above); `parts`: ws's Receiver and Sender classes. */
export function ownedSocket(base: typeof WebSocket, parts: WsParts): typeof WebSocket {
  let recipe: Recipe | null = null;
  /** ws's kWebSocket (ownerSymbol), read from the first socket. */
  let kWebSocket: symbol | null = null;
  /**
   * Every socket's 'data' listener in place of ws's: a lone pong while the
   * parser is let go is heard here, anything else goes to ws's. Its
   * `listener` field names ws's, so that ws's own removeListener('data',
   * socketOnData), on an error or a close, removes this one (EventEmitter
   * matches a wrapper by that field, as it does for once()).
   */
  const onData = Object.assign(
    function (this: Socket, chunk: Buffer): void {
      // The length first: a message's chunk costs one comparison more than under ws's own listener.
      const ws = lonePong(chunk) ? (this as unknown as Record<symbol, Lean | undefined>)[kWebSocket!] : undefined;
      if (ws !== undefined && ws.parserShed()) ws.emit('pong', EMPTY);
      else onData.listener!.call(this, chunk);
    },
    { listener: null as Listener | null },
  );
  type Lean = InstanceType<typeof Lean>;
  const Lean = class extends base {
    owner: SocketEvents | null = null;
    /** The parts, null while let go. */
    private receiver: Receiver | null = null;
    private sender: Sender | null = null;
    /** A part was asked for since the last sweep. */
    private used = false;
    /**
     * No event table: EventEmitter's empty one is a dictionary-mode object
     * (its literal has a null prototype), about 180 bytes per open socket.
     * EventEmitter makes one again if a listener is ever added.
     */
    _events = undefined;
    /** No extension negotiated: one empty table for every such socket (ws sets a socket's own when permessage-deflate is). */
    _extensions = NO_EXTENSIONS;
    declare _pendingAutoPongs: number;
    declare _socket: unknown;

    get _receiver(): Receiver | null {
      this.used = true;
      return (this.receiver ??= this.remakeReceiver());
    }
    set _receiver(r: Receiver | null) {
      this.receiver = r;
    }

    get _sender(): Sender | null {
      this.used = true;
      return (this.sender ??= this.remakeSender());
    }
    set _sender(s: Sender | null) {
      this.sender = s;
    }

    /** ws's: the upgraded socket is handed over; its 'data' listener is put behind ours (onData). */
    setSocket(socket: Socket, head: Buffer, options: object): void {
      (base.prototype as unknown as { setSocket(s: Socket, h: Buffer, o: object): void }).setSocket.call(this, socket, head, options);
      kWebSocket ??= ownerSymbol(socket);
      onData.listener ??= (socket.listeners('data').find((l) => l.name === 'socketOnData') as Listener | undefined) ?? null;
      if (onData.listener === null) throw new Error("ws's socket has no 'data' listener named socketOnData: this version of ws is not supported");
      socket.removeListener('data', onData.listener);
      socket.on('data', onData);
    }

    /** The frame parser is let go (shedParts): a lone pong is heard without it. */
    parserShed(): boolean {
      return this.receiver === null;
    }

    /** A keepalive ping (no arguments) of an open socket whose writer is let go (never with permessage-deflate) is written as is; any other goes through ws. */
    override ping(...args: Parameters<WebSocket['ping']>): void {
      if (args.length === 0 && this.sender === null && this.readyState === this.OPEN) (this._socket as Socket).write(EMPTY_PING);
      else super.ping(...args);
    }

    /** None is made before the first were let go: before setSocket, ws has none either. */
    private remakeReceiver(): Receiver | null {
      if (recipe === null) return null;
      const r = new parts.Receiver(recipe.receiverOptions);
      (r as unknown as Record<symbol, unknown>)[kWebSocket!] = this;
      for (const [event, listener] of recipe.receiverListeners) r.on(event, listener);
      return r;
    }

    private remakeSender(): Sender | null {
      if (recipe === null) return null;
      const s = new parts.Sender(this._socket, this._extensions);
      s.onerror = recipe.senderOnError;
      (s as unknown as Record<symbol, unknown>)[kWebSocket!] = this;
      return s;
    }

    /** The keepalive sweep's: parts not asked for since the last sweep, with nothing under way, are let go. */
    shedParts(): void {
      const { receiver, sender } = this;
      if (!this.used && this._extensions === NO_EXTENSIONS && this.readyState === this.OPEN) {
        // The first socket to let go of its parts shows how ws makes them (setSocket made both).
        if (recipe === null && receiver !== null && sender !== null) recipe = recipeOf(receiver, sender);
        if (recipe !== null) {
          if (receiver !== null && receiverIdle(receiver)) this.receiver = null;
          if (sender !== null && senderIdle(sender)) this.sender = null;
        }
      }
      this.used = false;
    }

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
  return Lean;
}
