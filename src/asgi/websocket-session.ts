/**
 * One ASGI WebSocket on its way through a worker pool (the pool's Exchange;
 * python/gatehouse_asgi_websocket.py is the other half). The handshake
 * waits for the app: WS_ACCEPT completes it (ws writes the 101), an HTTP
 * response from the worker (the denial extension, 403 for a close before
 * accept, 500 for a failure) goes to the client as it is and the connection
 * closes. Then messages travel as WS_TEXT / WS_BINARY frames both ways, and
 * WS_CLOSE both ways.
 *
 * Backpressure both ways: the worker says WS_PAUSE when the app has not
 * taken this socket's messages, and the stream to the worker may be full:
 * either stops reading the client until both are cleared. A client slow to
 * read makes this side send WS_PAUSE: the app's websocket.send waits.
 *
 * The socket holds its worker's --max-concurrency slot until the app has
 * returned (END). A retiring worker's sockets are closed with 1012 after
 * --graceful-timeout (shutdown()); a worker that dies takes them with 1011.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Exchange } from '../pool/exchange.js';
import type { WorkerProcess } from '../pool/worker-process.js';
import type { Logger } from '../log/logger.js';
import type { UpgradeRequest } from '../http/handler.js';
import { decodeResponse, encodeClose, encodeEmpty, encodeFrame, Frame, type FileSpec } from '../wire/frames.js';
import { KEEPALIVE_AT, type HandshakeOwner, type Keepalive, type WebSocketFront } from './websocket-front.js';
import { forgetConnection } from './scope.js';
import { watchHandshake } from './handshake-watch.js';
import { TOKEN } from '../http/token.js';

/** ws's WebSocket.OPEN (its module is loaded by websocket-front.ts, at the first handshake). */
const OPEN = 1;

/** Bytes queued for a slow client past which the app's sends wait, and below which they go on. */
const CLIENT_HIGH = 1024 * 1024;
const CLIENT_LOW = CLIENT_HIGH / 4;
/** Why reading from the client is paused: the app has not taken its messages, or the stream to the worker is full. */
const HELD_BY_APP = 1;
const HELD_BY_STREAM = 2;
/** Headers ws writes itself in the 101: the app's are dropped. */
const OWN_HEADERS = new Set(['upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions']);
/** The close code ws sends for each of its errors (its receiver's); 1002 for the rest. */
const WS_ERROR_CLOSE: Record<string, number> = { WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009, WS_ERR_INVALID_UTF8: 1007 };
const NO_HEADERS: readonly string[] = [];
/** An open socket's frame: its WS_OPEN went out and is not sent again. */
const SENT = Buffer.alloc(0);

/** What the sessions of one app share: one object rather than three fields on every open socket. */
export interface SessionRoute {
  readonly front: WebSocketFront;
  readonly pool: { dispatch(x: Exchange): void; cancel(x: Exchange): void };
  readonly logger: Logger;
}

/** What a session holds only until its handshake is answered. */
interface Handshake {
  /** The WS_OPEN frame. */
  frame: Buffer;
  /** Completes ws's handshake (the 101), once the app accepts. */
  accept: (() => void) | null;
  /** Ends the watch on the socket during the handshake (watchHandshake); null once ended: ws's 'close' says it then. */
  unwatch: (() => void) | null;
  subprotocol: string | null;
  acceptHeaders: readonly string[];
}

/**
 * "GET /path" labels, one string for all the sockets of a URL (an open
 * socket keeps its label), from a table emptied when full.
 */
const labels = new Map<string, string>();
const MAX_LABELS = 1024;

function labelOf(method: string, url: string): string {
  const key = `${method} ${url}`;
  const known = labels.get(key);
  if (known !== undefined) return known;
  if (labels.size >= MAX_LABELS) labels.clear();
  labels.set(key, key);
  return key;
}

export class WebSocketSession implements Exchange, HandshakeOwner, Keepalive {
  worker: WorkerProcess | null = null;
  /** Set only for a sticky app's sockets: the others do not carry it. */
  declare affinity?: number;
  id = 0;
  queuedAt = 0;
  sentAt = 0;
  ws: WebSocket | null = null;
  pingAt = 0;
  lastPing = 0;
  [KEEPALIVE_AT]: number | undefined = undefined;
  /** Null once the handshake is answered. */
  private hs: Handshake | null;
  /** The pool is done with it (END, or it failed). */
  private done = false;
  /** The client's socket is closed (access log written). */
  private closed = false;
  /** The worker was told this socket closed (its websocket.disconnect). */
  private told = false;
  /** An HTTP response went to the client instead of the 101. */
  private answered = false;
  private held = 0;
  private clientSlow = false;
  private status = 0;
  /** The close code ws sent for a protocol error of the client's. */
  private errorCode = 0;

  /** "GET /path", for log lines. */
  readonly label: string;
  /** The request's objects are not kept (an idle socket should cost little): only what the socket needs. */
  private readonly socket: Socket;
  private readonly log: UpgradeRequest['log'];

  constructor(
    /** The WS_OPEN frame; not kept once the socket is open (the pool has its id). */
    frame: Buffer,
    u: UpgradeRequest,
    private readonly route: SessionRoute,
  ) {
    this.label = labelOf(u.req.method ?? 'GET', u.req.url ?? '/');
    this.socket = u.socket;
    this.log = u.log;
    // The scope is built: the socket carries no more requests, and this session handles its end.
    u.adopt();
    forgetConnection(u.socket);
    this.hs = { frame, accept: null, unwatch: watchHandshake(u.socket, () => this.socketClosed()), subprotocol: null, acceptHeaders: NO_HEADERS };
  }

  get frame(): Buffer {
    return this.hs?.frame ?? SENT;
  }

  get subprotocol(): string | null {
    return this.hs?.subprotocol ?? null;
  }

  get acceptHeaders(): readonly string[] {
    return this.hs?.acceptHeaders ?? NO_HEADERS;
  }

  // ---- the handshake (WebSocketFront)

  verify(accept: () => void): void {
    if (this.hs !== null) this.hs.accept = accept;
    this.route.pool.dispatch(this);
  }

  malformed(status: number, why: string): void {
    this.route.logger.debug(`${this.label}: WebSocket handshake refused: ${why}`);
    this.finish();
    this.answer([`${status} ${STATUS_CODES[status]}`, 'Content-Type', 'text/plain; charset=utf-8'], Buffer.from(`${why}\n`));
  }

  opened(ws: WebSocket): void {
    this.ws = ws;
    this.status = 101;
    this.hs = null;
    this.route.front.watch(this);
  }

  // ---- the open socket's events (WebSocketFront)

  onMessage(data: Buffer, binary: boolean): void {
    this.fromClient(data, binary);
  }

  onClose(code: number, reason: Buffer): void {
    this.route.front.unwatch(this);
    // ws closed it for a protocol error: that code went to the client, and is the app's too.
    this.tell(code === 1006 && this.errorCode !== 0 ? this.errorCode : code, reason.toString('utf8'));
    this.socketClosed();
  }

  onPong(): void {
    this.route.front.answered(this);
  }

  onError(err: Error & { code?: string }): void {
    this.errorCode = WS_ERROR_CLOSE[err.code ?? ''] ?? 1002;
    this.route.logger.debug(`${this.label}: WebSocket: ${err.message}`);
  }

  // ---- frames from the worker (the pool's Exchange)

  relayed(type: number, payload: Buffer): void {
    if (this.closed) return;
    const ws = this.ws;
    switch (type) {
      case Frame.WS_ACCEPT:
        return this.accepted(payload);
      case Frame.WS_TEXT:
      case Frame.WS_BINARY:
        return this.toClient(payload, type === Frame.WS_BINARY);
      case Frame.WS_CLOSE:
        if (ws === null) return;
        try {
          ws.close(payload.readUInt16LE(0), payload.subarray(2));
        } catch (err) {
          this.route.logger.error(`${this.label}: the app closed its WebSocket with a code or reason RFC 6455 does not allow: ${(err as Error).message}; closed with 1011`);
          ws.close(1011);
        }
        return;
      case Frame.WS_PAUSE:
        return this.hold(HELD_BY_APP);
      case Frame.WS_RESUME:
        return this.release(HELD_BY_APP);
    }
  }

  response(payload: Buffer): void {
    this.finish();
    const { head, body } = decodeResponse(payload);
    this.answer(head, body);
  }

  start(head: string[]): void {
    if (this.closed || this.ws !== null) return;
    this.answered = true;
    this.status = Number(head[0]!.slice(0, 3));
    this.socket.write(httpHead(head));
  }

  body(chunk: Buffer): void {
    if (this.answered && !this.closed) this.socket.write(chunk);
  }

  file(_spec: FileSpec): void {
    // pathsend is an HTTP extension: python/gatehouse_asgi_websocket.py sends none.
  }

  end(): void {
    this.finish();
    if (this.answered) this.socket.end();
    else if (this.ws?.readyState === OPEN) this.ws.close(1000);
  }

  abort(): void {
    this.finish();
    this.socket.destroy();
  }

  /** A handshake the app has not seen may go to another worker (a getter: no field on every open socket). */
  get idempotent(): boolean {
    return true;
  }

  fail(status: 502 | 503 | 504, reason: string): void {
    if (this.done) return;
    this.finish();
    this.route.logger.log(status === 503 ? 'warning' : 'error', `${this.label}: ${status} ${reason}`);
    if (this.ws === null) return this.answer([`${status} ${STATUS_CODES[status]}`, 'Content-Type', 'text/plain; charset=utf-8'], Buffer.from(`${STATUS_CODES[status]}\n`));
    this.ws.close(1011);
  }

  shutdown(): void {
    if (this.done) return;
    if (this.ws === null) {
      this.fail(503, 'its worker is leaving');
      return this.route.pool.cancel(this);
    }
    this.ws.close(1012, 'service restart');
    this.tell(1012, '');
  }

  // ---- the client

  private accepted(block: Buffer): void {
    const hs = this.hs;
    const accept = hs?.accept ?? null;
    if (hs === null || accept === null || this.ws !== null || this.answered) return;
    hs.accept = null;
    const f = block.toString('latin1').split('\0');
    hs.subprotocol = f[0] || null;
    const headers: string[] = [];
    for (let i = 1; i + 1 < f.length; i += 2) {
      const name = f[i]!;
      const value = f[i + 1]!;
      if (!TOKEN.test(name) || /[\r\n\0]/.test(value) || OWN_HEADERS.has(name.toLowerCase())) continue;
      headers.push(`${name}: ${value}`);
    }
    if (headers.length > 0) hs.acceptHeaders = headers;
    // The watch ends before ws listens to the socket, whose 'close' then needs no listener of ours.
    hs.unwatch?.();
    hs.unwatch = null;
    accept();
    this.hs = null;
    // ws did not take the socket (it was closing, or the server is): it closes without ws.
    if (this.ws === null) this.socket.once('close', () => this.socketClosed());
  }

  private fromClient(data: Buffer, binary: boolean): void {
    const w = this.worker;
    if (w === null || this.done) return;
    if (w.relay(this, encodeFrame(binary ? Frame.WS_BINARY : Frame.WS_TEXT, 0, data))) return;
    this.hold(HELD_BY_STREAM);
    w.whenDrained(() => this.release(HELD_BY_STREAM));
  }

  private toClient(data: Buffer, binary: boolean): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== OPEN) return;
    if (!this.clientSlow && ws.bufferedAmount + data.length <= CLIENT_HIGH) return ws.send(data, { binary });
    if (!this.clientSlow) {
      this.clientSlow = true;
      this.worker?.relay(this, encodeEmpty(Frame.WS_PAUSE, 0));
    }
    ws.send(data, { binary }, () => {
      if (!this.clientSlow || ws.bufferedAmount > CLIENT_LOW) return;
      this.clientSlow = false;
      this.worker?.relay(this, encodeEmpty(Frame.WS_RESUME, 0));
    });
  }

  private hold(reason: number): void {
    if (this.held === 0) this.ws?.pause();
    this.held |= reason;
  }

  private release(reason: number): void {
    if (this.held === 0) return;
    this.held &= ~reason;
    if (this.held !== 0) return;
    this.ws?.resume();
    this.pingAt = 0; // a pong held back meanwhile is no sign of a dead client
  }

  get holding(): boolean {
    return this.held !== 0;
  }

  /** The app's websocket.disconnect, once. */
  private tell(code: number, reason: string): void {
    if (this.told) return;
    this.told = true;
    this.worker?.relay(this, encodeClose(0, code, reason));
  }

  private socketClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ws === null && !this.done) {
      // Gone during the handshake: the app's websocket.disconnect (CANCEL), or off the queue.
      this.status ||= 499;
      this.route.pool.cancel(this);
    }
    this.log(this.status, this.socket.bytesWritten);
  }

  private finish(): void {
    this.done = true;
    if (this.hs !== null) this.hs.accept = null;
  }

  /** An HTTP answer instead of the 101; the connection closes after it. */
  private answer(head: string[], body: Buffer): void {
    if (this.closed || this.ws !== null || this.answered) return;
    this.answered = true;
    this.status = Number(head[0]!.slice(0, 3));
    if (!head.some((h, i) => i % 2 === 1 && h.toLowerCase() === 'content-length')) head.push('Content-Length', String(body.length));
    this.socket.end(Buffer.concat([httpHead(head), body]));
  }
}

/** `STATUS\0Name\0Value...` as an HTTP/1.1 head that closes the connection. */
function httpHead(head: string[]): Buffer {
  const lines = [`HTTP/1.1 ${head[0]}`];
  for (let i = 1; i + 1 < head.length; i += 2) lines.push(`${head[i]}: ${head[i + 1]}`);
  lines.push('Connection: close', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}
