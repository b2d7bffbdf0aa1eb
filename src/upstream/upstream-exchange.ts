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
import type { Socket } from 'node:net';
import type { ExchangeContext, HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { discardBodyFile } from '../http/request-body.js';
import { CgiHeadReader } from './cgi-response.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { ResponseRelay } from './response-relay.js';
import { openSocket, useSocket, type SocketPool, type SocketUser } from './socket-pool.js';
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
  /** The request's bytes: all of them when its body is in memory (or there is none), else those before the body. */
  head: Buffer[];
  /** A chunk of a body read from its file, as it goes on the wire. */
  frame(chunk: Buffer): Buffer[];
  /** After a body read from its file. */
  tail: Buffer[];
  decoder(): ResponseDecoder;
  /** Kept-alive connections; absent: a connection per request. */
  pool?: SocketPool;
}

/** Writes `parts` in one system call (corked when more than one); false when the socket's buffer is full. */
function writeAll(socket: Socket, parts: readonly Buffer[]): boolean {
  if (parts.length === 1) return socket.write(parts[0]!);
  socket.cork();
  let ok = true;
  for (const part of parts) ok = socket.write(part);
  socket.uncork();
  return ok;
}

/** One for all exchanges. */
const deadlines = new Deadlines();

export class UpstreamExchange implements SocketUser, Expiring {
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
  /** The current phase's timeout. */
  private timeoutMs = 0;
  private bodyStream: ReadStream | null = null;
  /** Reading from the back end waits for the client to drain. */
  private paused = false;
  /** A connection of target.limit is this exchange's. */
  private holding = false;
  private cancelWait: (() => void) | null = null;
  private finished = false;
  deadlineSlot = -1;
  deadlineDue = 0;

  constructor(
    r: RouteRequest<RequestInfo, HttpResponse>,
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
    if (kept !== null) {
      this.socket = kept;
      useSocket(kept, this);
      return this.send(kept);
    }
    const socket = openSocket({ ...connectOptions(this.target.address), lookup: this.target.lookup, noDelay: true }, this);
    this.socket = socket;
    this.phase = 'connect';
    this.arm(this.target.connectMs);
    socket.once('connect', () => this.send(socket));
  }

  /** Writes the request: its bytes in memory at once, a body in a file as it is read. */
  private send(socket: Socket): void {
    this.phase = 'send';
    const ok = writeAll(socket, this.wire.head);
    if (!this.body?.file) return this.whenWritten(socket, ok);
    this.arm(0);
    this.sendFile(socket, this.body.file);
  }

  private sendFile(socket: Socket, file: string): void {
    const stream = createReadStream(file, { highWaterMark: FILE_CHUNK });
    this.bodyStream = stream;
    stream.on('error', (err) => this.fail(502, `cannot read the buffered body: ${err.message}`));
    stream.on('data', (chunk) => {
      if (writeAll(socket, this.wire.frame(chunk as Buffer))) return;
      stream.pause();
      this.arm(this.target.sendMs);
      socket.once('drain', () => {
        this.arm(0);
        stream.resume();
      });
    });
    stream.on('end', () => this.whenWritten(socket, writeAll(socket, this.wire.tail)));
  }

  /** The request is written (`ok`), or will be once the socket drains: the read timeout starts. */
  private whenWritten(socket: Socket, ok: boolean): void {
    if (ok) return this.written();
    this.arm(this.target.sendMs);
    socket.once('drain', () => this.written());
  }

  private written(): void {
    this.sent = true;
    this.phase = 'read';
    this.arm(this.target.readMs);
  }

  data(chunk: Buffer): void {
    if (this.relay.done) return;
    this.received = true;
    this.phase = 'read';
    const decoded = this.decoder.push(chunk);
    if (typeof decoded === 'string') return this.fail(502, decoded);
    const { data, ended } = decoded;
    // The read timeout runs again from here, unless the response is complete (its end stops it).
    if (this.sent && !ended) this.arm(this.target.readMs);
    for (let i = 0; i < data.length; i++) {
      const body = this.bodyOf(data[i]!);
      if (this.relay.done) return;
      if (body === null) continue;
      // The last bytes go out with the end of the response (one write to the client).
      if (ended && i === data.length - 1) return this.ended(body);
      this.forward(body);
    }
    // The declared length is all here: SCGI and uwsgi answers end there rather than at the close (as in nginx).
    if (!this.relay.done && (ended || (this.decoder.eofEnds && this.relay.lengthReached))) this.ended(null);
  }

  /** The body bytes in `chunk` once the head is complete and written; null while it is not (or when it failed). */
  private bodyOf(chunk: Buffer): Buffer | null {
    if (this.headDone) return chunk;
    const got = this.headReader.push(chunk);
    if (got === null) return null;
    if (typeof got === 'string') {
      this.fail(502, `the back end sent ${got}`);
      return null;
    }
    this.headDone = true;
    // An X-Accel-Redirect's answer is not read further (nginx closes the connection too).
    if (this.relay.redirected(got.head) || !this.relay.head(got.head)) {
      this.finish(false);
      return null;
    }
    return got.rest;
  }

  private forward(chunk: Buffer): void {
    if (this.relay.body(chunk)) return;
    // The body overran its Content-Length (what fitted went out with the end), or the exchange is over.
    if (this.relay.done) return this.finish(false);
    if (this.paused) return;
    const socket = this.socket!;
    this.paused = true;
    socket.pause();
    this.arm(0);
    this.relay.whenDrained(() => {
      this.paused = false;
      if (this.relay.done || this.socket !== socket) return;
      if (this.sent) this.arm(this.target.readMs);
      socket.resume();
    });
  }

  /** The response is complete, `last` its last body bytes. */
  private ended(last: Buffer | null): void {
    if (!this.headDone) return this.fail(502, 'the response ended before its head was complete');
    // The back end's part is over: its connection goes to the next request, unless its answer overran its
    // Content-Length (the relay may still be sending spooled bytes to a slow client).
    this.relay.end(last);
    this.finish(this.decoder.reusable && !this.relay.overran);
  }

  closed(): void {
    if (this.relay.done) return;
    // A whole head then the close: the response is complete, even if the back end did not read all of the request.
    if (this.decoder.eofEnds && this.headDone) return this.ended(null);
    this.broken('the connection closed before the response ended');
  }

  error(err: NodeJS.ErrnoException): void {
    this.broken(err.code ?? err.message);
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

  /** Starts the timeout of the current phase; 0 stops it. */
  private arm(ms: number): void {
    this.timeoutMs = ms;
    deadlines.set(this, ms);
  }

  expire(): void {
    this.fail(504, `timed out after ${this.timeoutMs / 1000} s`);
  }

  private reset(): void {
    this.arm(0);
    this.bodyStream?.destroy();
    this.bodyStream = null;
    const socket = this.socket;
    this.socket = null;
    if (socket === null) return;
    useSocket(socket, null);
    socket.destroy();
  }

  /** Lets go of the connection (once): back to the pool after a clean end, else closed. */
  private finish(reusable: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (reusable && this.socket !== null && this.wire.pool !== undefined) {
      this.arm(0);
      const socket = this.socket;
      this.socket = null;
      this.wire.pool.give(socket);
    } else {
      this.reset();
    }
    discardBodyFile(this.body?.file ?? null);
    this.cancelWait?.();
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
