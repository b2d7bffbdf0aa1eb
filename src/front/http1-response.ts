/**
 * The fast path's own HTTP/1.1 response writer (see fast-path.ts), for the
 * route actions that need no node:http objects (the app bridge): what
 * node:http's ServerResponse does for them, in a few lines.
 *
 * The head (response-head.ts) is made once, from the headers or a
 * worker's head block, and goes out with the first body bytes in one write:
 * a whole response is one buffer and one system call. A response waiting
 * behind earlier pipelined ones holds its bytes until the connection gives
 * it the socket.
 *
 * Why by hand: a ServerResponse (and the IncomingMessage beside it) costs
 * the front more per request than the rest of an app request's work; this
 * writer is the part of it an app's answer needs.
 */
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpResponse } from '../http/handler.js';
import { ResponseHead } from './response-head.js';

/** Bytes held for a response that does not have the socket yet before writers are asked to wait. */
const HELD_LIMIT = 16 * 1024;
/** Up to this size the head and a body are copied into one buffer; past it they go as two writes, corked. */
const JOIN_LIMIT = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** Every response's header list until writeHead: no empty array made for each. */
/** How long a cut connection waits for the answers written before the cut to go out (a client that does not read them). */
const FLUSH_MS = 10_000;
const EMPTY = Buffer.alloc(0);

/**
 * EventEmitter's methods without its constructor, which makes a table of
 * listeners for every response: Node's methods make it at the first
 * listener, and most responses get none.
 */
function LazyEmitter(): void {}
Object.setPrototypeOf(LazyEmitter.prototype, EventEmitter.prototype);

export class Http1Response extends (LazyEmitter as unknown as typeof EventEmitter) implements HttpResponse {
  /** EventEmitter's own fields, present from the start so that a first listener does not change the object's shape. */
  _events: object | undefined = undefined;
  _eventsCount = 0;
  shouldKeepAlive = true;
  headersSent = false;
  /** destroy() was called. */
  private cut = false;
  /** The connection ends after this response (asked for, or decided by the head). */
  last = false;
  finished = false;
  /** The head, once written (writeHead); `headSize` is its size while it waits to go out with the first body bytes, 0 once out. */
  private head: ResponseHead | null = null;
  private headSize = 0;
  /** Trailer lines for the last chunk (addTrailers), '' for none. */
  private trailerLines = '';
  /** No body may be sent: HEAD, 1xx, 204, 304. */
  private bodiless: boolean;
  private socket: Socket | null = null;
  /** Bytes written before the socket was ours, in order (null: none, as for most responses). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  private needDrain = false;
  /** The request this answers, told when the response is written. */
  request: { finished(): void } | null = null;

  constructor(
    method: string,
    /** keepalive_timeout in seconds, announced in Keep-Alive. */
    readonly keepAliveTimeout: number,
    /** The connection's socket, ours or not yet. */
    private readonly connection: Socket,
    /**
     * A body of unknown length may go in chunks: not to HTTP/1.0 (unless it
     * sent `TE: chunked`, as node:http reads it), where it ends with the
     * connection instead.
     */
    private readonly chunkable = true,
  ) {
    super();
    this.bodiless = method === 'HEAD';
  }

  /**
   * As node:http's: destroyed, or its connection is (the client went away),
   * so that work for a gone client can stop. From the moment the socket is
   * destroyed, before its 'close' (node:http's says so at 'close').
   */
  get destroyed(): boolean {
    return this.cut || this.connection.destroyed;
  }

  get writableLength(): number {
    return this.socket === null ? this.heldBytes : this.socket.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  writeHead(status: number, reason: string, headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('the response head was already written');
    const flat = headers === undefined ? [] : Array.isArray(headers) ? (headers as string[]) : flatten(headers as OutgoingHttpHeaders);
    return this.settle(ResponseHead.of(status, reason, flat));
  }

  /** writeHead() of a worker's head block (response-head.ts) as it is; its status (0 for a head with X-Accel-* headers, not written). */
  writeHeadBlock(block: Buffer, start: number, end: number): number {
    if (this.headersSent) throw new Error('the response head was already written');
    const head = ResponseHead.ofBlock(block, start, end);
    if (head.accel) return 0;
    this.settle(head);
    return head.status;
  }

  private settle(head: ResponseHead): this {
    const status = head.status;
    if (status < 200 || status === 204 || status === 304) this.bodiless = true;
    // As node:http: an HTTP/1.0 connection is kept only after an answer with a Content-Length (a bodiless one too).
    if (head.closes || (!this.chunkable && !head.sized)) this.shouldKeepAlive = false;
    this.last = !this.shouldKeepAlive;
    head.complete(this.last, this.keepAliveTimeout, this.bodiless, this.chunkable);
    this.head = head;
    this.headSize = head.size;
    this.headersSent = true;
    return this;
  }

  getHeader(name: string): string | undefined {
    return this.head?.getHeader(name);
  }

  /** The head is made whole in writeHead, which cannot fail halfway (node:http's can): nothing is left to remove. */
  removeHeader(): void {}

  /** Sent in the last chunk; as node:http, dropped from a body that is not chunked (it has no place for them). */
  addTrailers(trailers: ReadonlyArray<[string, string]>): void {
    for (const [name, value] of trailers) this.trailerLines += `${name}: ${value}\r\n`;
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.destroyed) return false;
    if (this.bodiless || chunk.length === 0) return this.flushHead();
    if (this.head?.chunked === true) return this.out([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF]);
    return this.out([chunk]);
  }

  end(chunk?: Buffer): this {
    if (this.finished || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(200, 'OK');
    this.finished = true;
    const body = chunk !== undefined && chunk.length > 0 && !this.bodiless ? chunk : null;
    if (this.head?.chunked === true) {
      const last = this.trailerLines === '' ? LAST_CHUNK : Buffer.from(`0\r\n${this.trailerLines}\r\n`, 'latin1');
      this.out(body === null ? [last] : [Buffer.from(`${body.length.toString(16)}\r\n`, 'latin1'), body, CRLF, last]);
    } else if (body !== null) this.out([body]);
    else this.flushHead();
    if (this.socket !== null) this.finishSoon();
    return this;
  }

  destroy(): void {
    if (this.cut) return;
    this.cut = true;
    // Once this response has the socket, the connection is cut (earlier responses are written by then).
    if (this.socket !== null) cutAfterWrites(this.socket);
  }

  /** The connection's socket is this response's now: what it held goes out. */
  assignSocket(socket: Socket): void {
    this.socket = socket;
    if (this.cut) return cutAfterWrites(socket);
    const held = this.held;
    if (held === null) return this.finished ? this.finishSoon() : undefined;
    this.held = null;
    this.heldBytes = 0;
    const ok = this.send(false, held);
    if (this.finished) return this.finishSoon();
    if (this.needDrain && ok) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  detachSocket(): void {
    this.socket = null;
  }

  /** The front ends the connection with an answer of its own (a fault in a request's body): this one writes nothing more. */
  abandon(): void {
    this.cut = true;
    this.socket = null;
  }

  /** The socket drained (the connection passes its 'drain' on). */
  onSocketDrain(): void {
    if (!this.needDrain) return;
    this.needDrain = false;
    this.emit('drain');
  }

  /** As node:http's 'finish', once the last bytes are on the socket: the request's connection hands it on (after the caller's own bookkeeping). */
  private finishSoon(): void {
    process.nextTick(finish, this);
  }

  private flushHead(): boolean {
    return this.headSize === 0 ? !this.needDrain : this.out([]);
  }

  /** Writes `parts` (with the head first if it has not gone out), or holds them until the socket is ours. */
  private out(parts: Buffer[]): boolean {
    const head = this.headSize !== 0;
    if (this.socket === null) {
      if (head) this.hold(this.putHead(Buffer.allocUnsafe(this.headSize)));
      for (const p of parts) this.hold(p);
      if (this.heldBytes > HELD_LIMIT) this.needDrain = true;
      return !this.needDrain;
    }
    const ok = this.send(head, parts);
    if (!ok) this.needDrain = true;
    return ok;
  }

  private hold(part: Buffer): void {
    (this.held ??= []).push(part);
    this.heldBytes += part.length;
  }

  /** One write when it all fits in JOIN_LIMIT (the head is written straight into the buffer), else corked writes. */
  private send(head: boolean, parts: Buffer[]): boolean {
    const s = this.socket!;
    if (!head && parts.length === 1) return s.write(parts[0]!);
    let size = head ? this.headSize : 0;
    for (const p of parts) size += p.length;
    if (size <= JOIN_LIMIT) {
      const buf = Buffer.allocUnsafe(size);
      let at = head ? this.headSize : 0;
      if (head) this.putHead(buf);
      for (const p of parts) at += p.copy(buf, at);
      return s.write(buf);
    }
    s.cork();
    if (head) s.write(this.putHead(Buffer.allocUnsafe(this.headSize)));
    let ok = true;
    for (const p of parts) ok = s.write(p);
    s.uncork();
    return ok;
  }

  /** Writes the head at the start of `buf` (headSize bytes), which is then out. */
  private putHead(buf: Buffer): Buffer {
    this.headSize = 0;
    return this.head!.write(buf);
  }
}

function finish(res: Http1Response): void {
  res.emit('finish');
  res.request?.finished();
}

/** An object of headers (the front's own plain answers) as `[name, value, ...]`. */
export function flatten(headers: OutgoingHttpHeaders): string[] {
  const flat: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) flat.push(name, v);
    else flat.push(name, String(value));
  }
  return flat;
}

/**
 * Cuts `socket` once what was written to it has gone out: the answers ahead
 * of a response cut short are not lost in the socket's buffer (a response's
 * own part, chunked or sized, still shows as cut). At most FLUSH_MS.
 */
function cutAfterWrites(socket: Socket): void {
  if (socket.writableLength === 0) return void socket.destroy();
  const timer = setTimeout(() => socket.destroy(), FLUSH_MS);
  socket.write(EMPTY, () => {
    clearTimeout(timer);
    socket.destroy();
  });
}
