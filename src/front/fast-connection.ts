/**
 * One connection on the fast path (fast-path.ts): reads its heads as they
 * arrive, answers from memory or gives each request to the front's handler,
 * keeps pipelined answers in order, times heads (header_timeout) and idle
 * waits (keepalive_timeout), closes (lingering when request bytes are
 * unread), and hands the connection to node:http at the first request it
 * does not take.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { RequestInfo } from '../http/handler.js';
import { faultBody } from '../http/request-body.js';
import type { FastPath, Serve } from './fast-path.js';
import { AnswerQueue } from './answer-queue.js';
import { Http1Response } from './http1-response.js';
import { aborted, endBody, FastRequest, leanRequest, toRequest, type NodeResponse } from './fast-request.js';
import { wire, type Prepared } from './memory-answers.js';
import { afterLineEnds, hasBody, readHead, type ParsedHead } from './request-head.js';
import { expectStandIn, standInLine } from './stand-in-line.js';
import { ChunkedBody, type ChunkFault } from './chunked-body.js';
import { routeEvents, unrouteEvents, type SocketEvents } from './socket-events.js';
import { URI_TOO_LONG } from './client-errors.js';
import { readByHttp } from './uri-too-long.js';

/** Pipelined bytes held while a request is answered; past this the socket is not read until it is. */
const MAX_HELD = 64 * 1024;

/** Lingering close (nginx's lingering_timeout and lingering_time). */
const LINGER_MS = 5000;
const LINGER_MAX_MS = 30_000;

/** node:http's test of an HTTP/1.0 request's TE for an answer it may chunk. */
const CHUNKED_TE = /(?:^|\W)chunked(?:$|\W)/i;

/** Requests answered at once on one connection (pipelining); more wait unread, all while the client leaves its answers unread (as nginx). */
const MAX_IN_FLIGHT = 16;

function emitClose(res: EventEmitter): void {
  res.emit('close');
}

export class FastConnection implements SocketEvents {
  /** Bytes received and not yet read as a request. */
  private pending: Buffer | null = null;
  /** Waiting for a memory answer being loaded. */
  private loading = false;
  /** The request whose body is still arriving. */
  private receiving: FastRequest | null = null;
  /** Requests given to the handler and not yet answered, in order; the first owns the socket, the others' responses wait (as in node:http). */
  private readonly answering = new AnswerQueue<FastRequest>();
  /** performance.now() by which the head being read must be whole (header_timeout); 0: no head under way. */
  private headDeadline = 0;
  /** The socket's timer is keepalive_timeout's (the wait between requests). */
  private idleTimer = false;
  /** The client sent FIN, or we are closing: no more requests arrive. */
  private ended = false;
  /**
   * The client sent FIN: the requests it sent before are still read and
   * answered, one at a time (as nginx: an answer is written before the next
   * request is read, so the one that goes to an app or a back end is the
   * last, cut with 499 by in-flight.ts).
   */
  private finReceived = false;
  /** A request that ends the connection was read: what follows it is dropped. */
  private lastRead = false;
  /** Bytes were dropped after it (the close then lingers). */
  private unread = false;
  /** Lingering close (see close()) until this performance.now(); 0: not lingering. */
  private lingerUntil = 0;
  /** The connection's own scheme, for the heads read on it (the cache's key needs it). */
  private readonly scheme: 'http' | 'https';

  constructor(
    private readonly path: FastPath,
    /** @internal */
    readonly socket: Socket,
    private readonly serve: Serve,
    private readonly toHttp: (socket: Socket) => void,
  ) {
    this.scheme = (socket as TLSSocket).encrypted === true ? 'https' : 'http';
  }

  start(): void {
    routeEvents(this.socket, this);
    // As node:http, the first request's head is timed from the connection.
    this.headerClock();
  }

  /**
   * header_timeout: the head under way must be whole by the deadline, however
   * it trickles in (slowloris); the socket's timer is set to what is left.
   */
  private headerClock(): void {
    const limit = this.path.options.settings.header_timeout * 1000;
    if (limit === 0) return;
    const now = performance.now();
    if (this.headDeadline === 0) this.headDeadline = now + limit;
    if (now >= this.headDeadline) return this.path.options.onClientError(this.socket, 'ERR_HTTP_REQUEST_TIMEOUT');
    this.socket.setTimeout(Math.ceil(this.headDeadline - now));
    this.idleTimer = false;
  }

  /** Waiting for something other than the next request. */
  private get busy(): boolean {
    return this.loading || this.receiving !== null || this.answering.length > 0;
  }

  closeIfIdle(): void {
    if (!this.busy && !this.ended) this.close();
  }

  // The socket's events (socket-events.ts).

  onData(chunk: Buffer): void {
    if (this.lingerUntil !== 0) return this.lingered();
    const rest = this.receiving !== null ? this.feedBody(chunk) : chunk;
    if (rest === null) return;
    // After a request that ends the connection nothing more is read as a request (RFC 9112 §9.6).
    if (this.lastRead) return void (this.unread = true);
    this.pending = this.pending === null ? rest : Buffer.concat([this.pending, rest]);
    if (!this.ended) this.work();
    if (this.pending !== null && this.pending.length > MAX_HELD) this.socket.pause();
  }

  onEnd(): void {
    if (this.lingerUntil !== 0) return void this.socket.destroy();
    if (this.ended) return;
    this.ended = this.finReceived = true;
    // A body cut short can never be complete.
    this.receiving?.body!.destroy(aborted());
    if (!this.busy) this.idleOrNext();
  }

  /** node:http's socketOnDrain: the response writing now may go on, and pipelined requests held back by it are read. */
  onDrain(): void {
    const res = this.answering.first?.res;
    if (res instanceof Http1Response) res.onSocketDrain();
    else if (res !== undefined && res.writableNeedDrain) res.emit('drain');
    if (this.pending !== null && !this.socket.destroyed) this.idleOrNext();
  }

  onError(): void {
    this.socket.destroy();
  }

  onTimeout(): void {
    // The socket's timer is left running under a request rather than set again for each one
    // (a timer each): until the request is answered its own clocks apply (body_timeout, the
    // app's timeout), and the wait for the next one starts from its answer.
    if (this.busy && this.lingerUntil === 0) return void (this.idleTimer = false);
    // A head under way (or none yet on a new connection): 408, as node:http; else an idle keep-alive connection.
    if (this.headDeadline !== 0) this.path.options.onClientError(this.socket, 'ERR_HTTP_REQUEST_TIMEOUT');
    else this.socket.destroy();
  }

  onClose(): void {
    this.path.forget(this);
    this.receiving?.chunks?.close();
    // As node:http: the requests under way are aborted, and their responses say 'close' (node:http's
    // by themselves; a lean one that ended says it once written, in finished()).
    for (const x of this.answering.all()) {
      x.body?.destroy(aborted());
      const res = x.res;
      if (res instanceof Http1Response && !res.finished && res.listenerCount('close') > 0) res.emit('close');
    }
  }

  /**
   * Reads the whole heads that have arrived, in order, while nothing else
   * is read (a body) or awaited (a file loading); hands the connection over
   * at the first it cannot take.
   */
  private work(): void {
    const { settings, memory } = this.path.options;
    while (this.pending !== null && !this.loading && this.receiving === null && (!this.ended || (this.finReceived && this.answering.length === 0)) && !this.lastRead && this.answering.length < MAX_IN_FLIGHT && !this.socket.writableNeedDrain) {
      // Line ends before a request line are skipped, as llhttp skips them (RFC 9112 §2.2: some clients send one after a body).
      if (this.pending[0] === 13 || this.pending[0] === 10) {
        this.pending = afterLineEnds(this.pending);
        continue;
      }
      const head = readHead(this.pending, settings.max_header_size, this.scheme);
      // Waiting for the rest could only end in a timeout, or a target too long in llhttp's 414: refused
      // now, as llhttp refuses, after the answers under way (this runs again once they are written).
      if (head === 'refused' || head === 'too-long') return void (this.answering.length === 0 && this.path.options.onClientError(this.socket, head === 'refused' ? 'HPE_INVALID_HEAD' : URI_TOO_LONG));
      // The rest of the head is on its way: wait for it, on the clock once nothing is under way.
      if (head === 'waiting') return void (this.answering.length === 0 && this.headerClock());
      // node:http's (a head too large gets its 431), once nothing is under way here.
      if (head === 'llhttp') return void (this.answering.length === 0 && this.handOver());
      this.headDeadline = 0;
      // Memory answers go out at once: only when no response is waiting to be written before them.
      const answer = this.answering.length === 0 && !this.socket.writableNeedDrain ? memory.answer(head) : null;
      if (answer instanceof Promise) return this.load(head, answer);
      if (answer === null) this.dispatch(head);
      else this.respond(head, answer);
    }
  }

  /** Apart from work(): the closures' variables would be allocated on each pass of its loop. */
  private load(head: ParsedHead, answer: Promise<Prepared | null>): void {
    this.loading = true;
    answer.then(
      (a) => this.afterLoad(head, a),
      () => this.afterLoad(head, null),
    );
  }

  private afterLoad(head: ParsedHead, answer: Prepared | null): void {
    this.loading = false;
    if (this.socket.destroyed) return;
    if (answer === null) this.dispatch(head);
    else this.respond(head, answer);
    this.idleOrNext();
  }

  /** A body is in or a response written: read on (pipelined requests), or wait for the next request. */
  private idleOrNext(): void {
    if (this.loading || this.receiving !== null) return;
    if (this.answering.length === 0 && !this.ended) this.waitForNext();
    this.work();
    // After the FIN: once the requests it left are answered (what remains is no whole request).
    if (this.ended) return void (this.busy || this.socket.end());
    if (this.socket.isPaused() && (this.pending?.length ?? 0) <= MAX_HELD) this.socket.resume();
  }

  /**
   * The last answer is on its way: close once it is written (node:http's
   * destroySoon), whether or not the client closes its side. With request
   * bytes still unread (a body refused with 413, say), nginx's lingering
   * close instead: what the client still sends is read and dropped until it
   * closes, or is quiet for LINGER_MS, so the answer is not lost to a reset.
   */
  private close(unread = false): void {
    this.ended = true;
    const s = this.socket;
    s.end();
    if (unread) {
      this.pending = null;
      this.receiving?.chunks?.close();
      this.receiving = null;
      this.lingerUntil = performance.now() + LINGER_MAX_MS;
      s.setTimeout(LINGER_MS);
      s.resume();
    } else s.destroySoon();
  }

  /** Bytes read while lingering: dropped, and no longer than LINGER_MAX_MS in all. */
  private lingered(): void {
    if (performance.now() > this.lingerUntil) this.socket.destroy();
  }

  /**
   * The head at the start of `pending` is read; true when its answer is the
   * connection's last, after which nothing more is read.
   */
  private consume(head: ParsedHead): boolean {
    const size = head.size;
    this.pending = size === this.pending!.length ? null : this.pending!.subarray(size);
    if (!this.closing(head)) return false;
    this.lastRead = true;
    if (!hasBody(head) && this.pending !== null) {
      this.pending = null;
      this.unread = true;
    }
    return true;
  }

  /** The connection's last answer: asked for, or no keep-alive at all, or the server is stopping. */
  private closing(head: ParsedHead): boolean {
    const { settings, ctx } = this.path.options;
    return head.close || settings.keepalive_timeout === 0 || ctx.draining;
  }

  /** Writes an answer from memory. */
  private respond(head: ParsedHead, prepared: Prepared): void {
    const { settings, ctx } = this.path.options;
    const close = this.consume(head);
    this.socket.write(wire(prepared, close, settings.keepalive_timeout));
    this.waitForNext();
    if (ctx.accessLog !== null) this.path.logAnswer(this.socket, head, prepared);
    if (close) this.close();
  }

  /** From now on the wait is for the next request (Node's socket timer restarts on every read and write). */
  private waitForNext(): void {
    if (this.idleTimer) return;
    const keepAlive = this.path.options.settings.keepalive_timeout;
    // As node:http, a second past the announced timeout, so a request racing the close is not lost.
    if (keepAlive > 0) this.socket.setTimeout(keepAlive * 1000 + 1000);
    this.idleTimer = true;
  }

  /**
   * Gives the request to the front's handler, as a lean request record and
   * response writer (http1-response.ts), which the handler may exchange for
   * node:http's own objects; the response owns the socket, or waits for the
   * ones before it. A request that expects 100 Continue gets node:http's
   * objects, and its 100 as node:http sends it (request-intake.ts).
   */
  private dispatch(head: ParsedHead): void {
    const { settings } = this.path.options;
    const s = this.socket;
    const close = this.consume(head);
    const body = head.chunked || head.headers['content-length'] !== undefined ? toRequest(s, head) : null;
    const req: RequestInfo = body ?? leanRequest(s, head);
    const chunkable = head.httpVersion === '1.1' || CHUNKED_TE.test(String(head.headers.te ?? ''));
    const res = new Http1Response(head.method, settings.keepalive_timeout, s, chunkable);
    res.shouldKeepAlive = !close;
    const chunks = head.chunked ? new ChunkedBody(settings.max_header_size, (data) => body!.push(data)) : null;
    const x = new FastRequest(this, head, body, res, chunks);
    res.request = x;
    if (this.answering.length === 0) res.assignSocket(s);
    this.answering.push(x);
    if (head.expectsContinue) this.serveContinued(x);
    else this.serve.lean(req, res, x);
    if (body === null) return;
    if (chunks === null && head.bodyLength === 0) return endBody(body);
    this.receiving = x;
    if (this.pending !== null) this.pending = this.feedBody(this.pending);
  }

  /** As node:http's 'checkContinue': its objects, which answer (or skip) the 100 as its own do. */
  private serveContinued(x: FastRequest): void {
    const { req, res } = x.toNode();
    (res as NodeResponse & { _expect_continue: boolean })._expect_continue = true;
    this.serve.node(req, res, true);
  }

  /** @internal The request owns the socket now (its answer is the one being written). */
  isCurrent(x: FastRequest): boolean {
    return this.answering.first === x;
  }

  /** Pushes the body's part of `chunk` into the request receiving it; what follows it, if anything. */
  private feedBody(chunk: Buffer): Buffer | null {
    const x = this.receiving!;
    const rest = x.feed(chunk);
    if (rest instanceof Error) {
      this.bodyFault(rest);
      return null;
    }
    // Not read fast enough: the socket waits (IncomingMessage resumes it when read again).
    if (x.full) this.socket.pause();
    if (x.body!.complete) {
      this.receiving = null;
      queueMicrotask(() => this.idleOrNext());
    }
    return rest;
  }

  /**
   * A chunked body llhttp refuses (a bad chunk size, trailers too large...):
   * as nginx, the connection reads nothing more, the answers before this
   * request go out, and the request is answered in its turn by what reads
   * its body (the fault's status, 400 or 413: request-body.ts), logged once
   * with its request line; the connection closes after it. A body nobody
   * reads any more (its answer is under way) needs no word: the connection
   * closes once that answer is written.
   */
  private bodyFault(fault: ChunkFault): void {
    const x = this.receiving!;
    this.receiving = null;
    this.pending = null;
    this.lastRead = this.ended = true;
    if (!x.res.headersSent) x.res.shouldKeepAlive = false;
    faultBody(x.body!, fault);
  }

  /** A response is written (node:http's resOnFinish): the next one gets the socket, or the connection waits for requests. */
  finished(x: FastRequest): void {
    const { body, res } = x;
    // A body nobody read is read and dropped, so the next request can be found after it.
    if (body !== null && !body.readableEnded) body.resume();
    res.detachSocket(this.socket);
    if (res.listenerCount('close') > 0) process.nextTick(emitClose, res);
    this.answering.remove(x);
    const last = res instanceof Http1Response ? res.last : res._last;
    if (last || this.socket.destroyed) return this.close(this.receiving !== null || this.pending !== null || this.unread);
    this.answering.first?.res.assignSocket(this.socket);
    this.idleOrNext();
  }

  /** node:http takes the connection from here, starting with the bytes not read. */
  private handOver(): void {
    // Its 'end' has come and gone: node:http would wait for it.
    if (this.finReceived) return;
    const s = this.socket;
    this.path.forget(this);
    s.setTimeout(0);
    unrouteEvents(s);
    this.toHttp(s);
    const pending = this.pending;
    this.pending = null;
    if (pending === null) return readByHttp(s);
    // A method or target llhttp would refuse: it reads a stand-in, the request gets its own back.
    const standIn = standInLine(pending);
    if (standIn !== null) expectStandIn(s, standIn);
    readByHttp(s, standIn?.bytes ?? pending);
  }
}
