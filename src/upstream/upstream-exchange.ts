/**
 * One request to a FastCGI, SCGI or uwsgi back end, once its body is
 * buffered: connects (or takes a kept-alive connection), writes the request
 * (the protocol's head, the body in its framing, its tail) with a send
 * timeout, and streams the response to the client with a read timeout
 * (what a slow client cannot take is spooled, or with buffering off the back
 * end waits for it). The protocols differ only in the bytes (ExchangeWire);
 * the response is read CGI style (cgi-response.ts).
 *
 * A kept-alive connection the back end closed before answering (php-fpm
 * recycling a child) is retried once on a fresh one: the request is
 * buffered, so it can be sent again whole.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { discardBodyFile } from '../http/request-body.js';
import { CgiHeadReader } from './cgi-response.js';
import { ResponseRelay } from './response-relay.js';
import { detach, type SocketPool } from './socket-pool.js';
import type { ConnectionLimit } from './connection-limit.js';
import type { DnsCache } from './dns-cache.js';
import { connectOptions, type UpstreamAddress } from './upstream-address.js';
import { UpstreamError, type UpstreamPhase } from './upstream-failure.js';

/** A response head larger than this is a malformed response (nginx: 4k-8k buffers; apps with many cookies need more). */
const HEAD_LIMIT = 64 * 1024;
const FILE_CHUNK = 64 * 1024;

export interface UpstreamTarget {
  address: UpstreamAddress;
  /** Resolves a host name (dns-cache.ts). */
  lookup: DnsCache['lookup'];
  limit: ConnectionLimit;
  /** How the log names it: the address as configured. */
  label: string;
  connectMs: number;
  sendMs: number;
  readMs: number;
  /** Responses are spooled for slow clients (see ResponseRelay). */
  buffering: boolean;
}

/** A request body read completely by the front: in memory, or in a temp file. */
export interface BufferedBody {
  length: number;
  data: Buffer | null;
  file: string | null;
}

/** Turns what the back end sends into response bytes. */
export interface ResponseDecoder {
  /** Response bytes in `chunk`, and whether the response is complete; a message when the stream is malformed. */
  push(chunk: Buffer): { data: Buffer[]; ended: boolean } | string;
  /** The connection closing ends the response (SCGI, uwsgi); false: it ends early (FastCGI). */
  readonly eofEnds: boolean;
  /** After the end: the connection is clean and may serve another request. */
  readonly reusable: boolean;
}

export interface ExchangeWire {
  head: Buffer[];
  /** One body chunk as it goes on the wire. */
  frame(chunk: Buffer): Buffer[];
  tail: Buffer[];
  decoder(): ResponseDecoder;
  /** Kept-alive connections; absent: a connection per request. */
  pool?: SocketPool;
}

export class UpstreamExchange {
  private readonly relay: ResponseRelay;
  private socket: Socket | null = null;
  private reused = false;
  private retried = false;
  private received = false;
  private sent = false;
  private phase: UpstreamPhase = 'connect';
  private headReader = new CgiHeadReader(HEAD_LIMIT);
  private headDone = false;
  private decoder: ResponseDecoder;
  private timer: NodeJS.Timeout | undefined;
  private bodyStream: ReadStream | null = null;
  /** Reading from the back end waits for the client to drain. */
  private paused = false;
  /** A connection of target.limit is this exchange's. */
  private holding = false;
  private cancelWait: () => void = () => {};

  constructor(
    private readonly r: RouteRequest<RequestInfo, HttpResponse>,
    ctx: ExchangeContext,
    private readonly target: UpstreamTarget,
    private readonly wire: ExchangeWire,
    private readonly body: BufferedBody | null,
  ) {
    this.relay = new ResponseRelay(r, ctx, target.label, () => this.finish(false), target.buffering);
    this.decoder = wire.decoder();
  }

  start(): void {
    // Waiting for a free connection counts as connecting.
    this.arm(this.target.connectMs);
    this.cancelWait = this.target.limit.acquire(() => {
      this.holding = true;
      this.connect();
    });
  }

  private connect(): void {
    const kept = this.retried ? null : (this.wire.pool?.take() ?? null);
    this.reused = kept !== null;
    if (kept !== null) return this.attach(kept);
    const socket = createConnection({ ...connectOptions(this.target.address), lookup: this.target.lookup });
    this.phase = 'connect';
    this.arm(this.target.connectMs);
    socket.once('connect', () => this.attach(socket));
    this.listen(socket);
  }

  private listen(socket: Socket): void {
    this.socket = socket;
    socket.on('error', (err: NodeJS.ErrnoException) => this.broken(err.code ?? err.message));
    socket.on('close', () => this.closed());
  }

  private attach(socket: Socket): void {
    if (this.socket !== socket) this.listen(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    this.phase = 'send';
    this.arm(0);
    for (const b of this.wire.head) socket.write(b);
    if (this.body?.data) for (const b of this.wire.frame(this.body.data)) socket.write(b);
    if (this.body?.file) return this.sendFile(socket, this.body.file);
    this.sendTail(socket);
  }

  private sendFile(socket: Socket, file: string): void {
    const stream = createReadStream(file, { highWaterMark: FILE_CHUNK });
    this.bodyStream = stream;
    stream.on('error', (err) => this.fail(502, `cannot read the buffered body: ${err.message}`));
    stream.on('data', (chunk) => {
      let ok = true;
      for (const b of this.wire.frame(chunk as Buffer)) ok = socket.write(b);
      if (ok) return;
      stream.pause();
      this.arm(this.target.sendMs);
      socket.once('drain', () => {
        this.arm(0);
        stream.resume();
      });
    });
    stream.on('end', () => this.sendTail(socket));
  }

  private sendTail(socket: Socket): void {
    let ok = true;
    for (const b of this.wire.tail) ok = socket.write(b);
    const sent = () => {
      this.sent = true;
      this.phase = 'read';
      this.arm(this.target.readMs);
    };
    if (ok) return sent();
    this.arm(this.target.sendMs);
    socket.once('drain', sent);
  }

  private data(chunk: Buffer): void {
    if (this.relay.done) return;
    this.received = true;
    this.phase = 'read';
    if (this.sent) this.arm(this.target.readMs);
    const decoded = this.decoder.push(chunk);
    if (typeof decoded === 'string') return this.fail(502, decoded);
    for (const piece of decoded.data) this.output(piece);
    if (decoded.ended && !this.relay.done) this.ended();
  }

  private output(chunk: Buffer): void {
    if (this.relay.done) return;
    if (!this.headDone) {
      const got = this.headReader.push(chunk);
      if (got === null) return;
      if (typeof got === 'string') return this.fail(502, `the back end sent ${got}`);
      this.headDone = true;
      if (!this.relay.head(got.head)) return this.finish(false);
      chunk = got.rest;
    }
    if (this.relay.body(chunk) || this.relay.done || this.paused) return;
    const socket = this.socket!;
    this.paused = true;
    socket.pause();
    this.arm(0);
    this.relay.whenDrained(() => {
      this.paused = false;
      if (this.relay.done) return;
      if (this.sent) this.arm(this.target.readMs);
      socket.resume();
    });
  }

  /** The response is complete. */
  private ended(): void {
    if (!this.headDone) return this.fail(502, 'the response ended before its head was complete');
    // The relay may still be sending spooled bytes to a slow client: the back end's part is over.
    this.relay.end();
    this.finish(this.decoder.reusable);
  }

  private closed(): void {
    if (this.relay.done) return;
    // A whole head then the close: the response is complete, even if the back end did not read all of the request.
    if (this.decoder.eofEnds && this.headDone) return this.ended();
    this.broken('the connection closed before the response ended');
  }

  private broken(why: string): void {
    if (this.relay.done) return;
    // A kept-alive connection may have been closed by the back end as it was taken: once more, afresh.
    if (this.reused && !this.received && !this.retried) {
      this.retried = true;
      this.reset();
      this.decoder = this.wire.decoder();
      this.headReader = new CgiHeadReader(HEAD_LIMIT);
      this.sent = false;
      this.paused = false;
      return this.connect();
    }
    this.fail(502, why);
  }

  private fail(status: 502 | 504, why: string): void {
    this.relay.fail(new UpstreamError(status, this.phase, why));
    this.finish(false);
  }

  /** (Re)starts the timer of the current phase; 0 stops it. */
  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = ms > 0 ? setTimeout(() => this.fail(504, `timed out after ${ms / 1000} s`), ms) : undefined;
  }

  private reset(): void {
    clearTimeout(this.timer);
    this.bodyStream?.destroy();
    this.bodyStream = null;
    const socket = this.socket;
    this.socket = null;
    if (socket === null) return;
    detach(socket);
    socket.on('error', () => {});
    socket.destroy();
  }

  /** Lets go of the connection: back to the pool after a clean end, else closed. */
  private finish(reusable: boolean): void {
    if (reusable && this.socket !== null && this.wire.pool !== undefined) {
      clearTimeout(this.timer);
      const socket = this.socket;
      this.socket = null;
      this.wire.pool.give(socket);
    } else {
      this.reset();
    }
    discardBodyFile(this.body?.file ?? null);
    this.cancelWait();
    if (this.holding) {
      this.holding = false;
      this.target.limit.release();
    }
  }
}

/** SCGI and uwsgi: the response is the bytes as they come, until the back end closes the connection. */
export function untilClose(): ResponseDecoder {
  return { push: (chunk) => ({ data: [chunk], ended: false }), eofEnds: true, reusable: false };
}
