/**
 * One request through the `proxy` action: its tries (each on another
 * upstream), and the response streamed back as undici's dispatch handler
 * (undici's lowest API: raw headers, and the parser paused for backpressure).
 *
 * A try that fails before any response byte reached the client may go on
 * to the next upstream: after a connect failure (the request was never
 * sent: any method), or a reset or a 502/503 answer (idempotent methods
 * only, unless retry_non_idempotent), within `tries` and `tries_timeout`.
 * A read timeout is not retried (the upstream may still be working on it).
 * A kept-alive connection that fails before any answer (the upstream closed
 * it, idle, as the request went out: its keep-alive timeout ran out) does not
 * count as a try and marks no upstream failed: an idempotent request goes
 * again on a new connection, to the same upstream (nginx gives a failure on
 * a cached connection a try of its own too).
 * tries_timeout also ends a try that has no response head by then (504).
 * The body goes out through body-sink.ts (compression, temp file).
 * Once the response head went out, a failure cuts the client connection
 * (upstream-failure.ts): a half-forwarded response never looks complete.
 */
import { createReadStream } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import type { ProxySettings } from '../config/proxy.js';
import type { HttpResponse, RequestInfo, Reroute, RouteRequest } from '../http/handler.js';
import type { Compression } from '../http/compression.js';
import { sendPlain } from '../http/plain-response.js';
import { unwatchClient, watchClient, type InFlight } from '../http/in-flight.js';
import type { Logger } from '../log/logger.js';
import { discardBodyFile } from '../http/request-body.js';
import type { Balancer, Peer } from './balancer.js';
import { BodySink } from '../http/body-sink.js';
import { clientResponseHead, upstreamRequestHeaders, upstreamTarget, type HeaderRules } from './proxy-headers.js';
import type { CarriedHandler, Carrier } from './proxy-pool.js';
import { requestServername, type ProxyTarget } from './proxy-target.js';
import { UpstreamError, upstreamFailed, warnPastEnd } from './upstream-failure.js';
import { isIdempotent } from '../http/idempotent.js';
import { ACCEL_REDIRECT, type AccelRedirect } from '../http/accel-redirect.js';
import { readAccel } from '../http/accel-headers.js';

export interface ProxyPeer extends Peer {
  readonly pool: Pool;
  readonly target: ProxyTarget;
}

/** What every request of one proxy route shares. */
export interface ProxyRoute {
  balancer: Balancer<ProxyPeer>;
  rules: HeaderRules;
  settings: ProxySettings;
  logger: Logger;
  compression: Compression | null;
}

/** The request body as it goes up: none, in memory, spilled to a file, or streamed from the client. */
export type UpstreamBody = null | Buffer | { file: string; length: number } | Readable;

class SendTimeout extends Error {}
class TriesTimeout extends Error {}

/** undici's parser refused the answer, or its body did not match its Content-Length. */
function malformed(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
}

export class ProxyExchange implements CarriedHandler, InFlight {
  private peer: ProxyPeer | null = null;
  private readonly tried = new Set<ProxyPeer>();
  private readonly startedAt = performance.now();
  /** The upstream picked for the next try, when one is decided on. */
  private reserved: ProxyPeer | null = null;
  private abort: ((err?: Error) => void) | null = null;
  /** This try's request is on a connection / wholly written. */
  private connected = false;
  /** This try's connection had carried a request before. */
  private reused = false;
  private sent = false;
  /** This try's answer is being read and dropped: a 502/503, for a retry, or an X-Accel-Redirect's. */
  private discarding = false;
  /** The upstream said it closes the connection after this answer. */
  private closing = false;
  /** The answer declared its length (else it is chunked). */
  private declaredLength = false;
  /** This try's connection (proxy-pool.ts). */
  carrier: Carrier | null = null;
  private status = 0;
  private readonly sink: BodySink;
  /** undici's: reading the upstream goes on (after onData returned false). */
  private resume: () => void = () => {};
  private sendTimer: NodeJS.Timeout | undefined;
  private triesTimer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly target: string;
  private readonly headers: string[];
  /** The Host sent up: a Location at it points at the upstream too. */
  private readonly sentHost: string;

  constructor(
    private readonly route: ProxyRoute,
    private readonly r: RouteRequest<RequestInfo, HttpResponse>,
    private readonly body: UpstreamBody,
    private readonly key: string,
  ) {
    const length = body === null ? null : Buffer.isBuffer(body) ? body.length : 'file' in body ? body.length : null;
    this.headers = upstreamRequestHeaders(r, route.rules, length);
    this.target = upstreamTarget(r, route.rules.passPath);
    const at = this.headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'host');
    this.sentHost = at < 0 ? '' : this.headers[at + 1]!;
    const s = route.settings;
    this.sink = new BodySink(r.res, { buffering: s.buffering, memory: s.buffer_size, maxFile: s.max_temp_file_size }, (err) => {
      this.abort?.(err);
      this.fail(this.peer!.name, new UpstreamError(502, 'read', `compression failed: ${err.message}`));
    }, route.logger);
    watchClient(r.req, r.res, this);
  }

  start(): void {
    const limit = this.route.settings.tries_timeout * 1000;
    if (limit > 0) this.triesTimer = setTimeout(() => this.triesExpired(), limit);
    const peer = this.route.balancer.pick(this.tried, this.key);
    if (peer === null) return this.fail(this.route.balancer.peers.map((p) => p.name).join(', '), new UpstreamError(502, 'connect', 'no live upstreams'));
    this.send(peer);
  }

  private send(peer: ProxyPeer): void {
    const s = this.route.settings;
    this.tried.add(peer);
    this.peer = peer;
    this.reserved = null;
    this.connected = this.sent = this.discarding = this.reused = false;
    peer.active++;
    const req = this.r.req;
    const read = s.read_timeout * 1000;
    peer.pool.dispatch(
      {
        ...requestServername(peer.target),
        path: this.target,
        method: req.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.bodyForTry(),
        headersTimeout: read,
        bodyTimeout: read,
      },
      this,
    );
  }

  private bodyForTry(): Buffer | Readable | null {
    const body = this.body;
    if (body === null || Buffer.isBuffer(body)) return body;
    return 'file' in body ? createReadStream(body.file) : body;
  }

  // undici's dispatch handler.

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    this.connected = true;
    this.reused = this.carrier !== null && this.carrier.written++ > 0;
    if (this.done) return abort();
    if (this.body !== null) this.armSend();
  }

  onBodySent(): void {
    this.armSend();
  }

  onRequestSent(): void {
    this.sent = true;
    clearTimeout(this.sendTimer);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.done) return false;
    if (status < 200) return true;
    clearTimeout(this.sendTimer);
    const peer = this.peer!;
    if ((status === 502 || status === 503) && this.retryTo(false) !== null) {
      this.route.balancer.failed(peer);
      this.route.logger.warning(`${this.what()}: upstream ${peer.name} answered ${status}; trying ${this.reserved!.name}`);
      this.discarding = true;
      return true;
    }
    this.route.balancer.succeeded(peer);
    clearTimeout(this.triesTimer);
    const head = clientResponseHead(raw, this.route.rules, this.r, [peer.target.authority, this.sentHost]);
    if (head.accel && this.readAccel(head.headers)) return true;
    this.status = status;
    this.resume = resume;
    this.closing = head.close;
    this.declaredLength = head.length !== undefined;
    this.sink.head(this.route.compression, this.r.req, status, statusText || STATUS_CODES[status] || '', head.headers, head.length);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarding || this.done) return this.discarding;
    if (this.sink.write(chunk)) return true;
    this.sink.whenReady(this.resume);
    return false;
  }

  onComplete(): void {
    if (this.closing) unstackedUntilMicrotask();
    this.peer!.active--;
    if (this.done) return;
    if (this.discarding) return this.send(this.reserved!);
    if (this.carrier !== null) this.carrier.answered = this;
    // A slow client may still be taking the temp file's bytes: the upstream's part is over.
    this.sink.end(() => this.finish(this.status, 0));
  }

  onError(err: Error): void {
    clearTimeout(this.sendTimer);
    const peer = this.peer!;
    peer.active--;
    if (this.done) return;
    if (this.discarding) return this.send(this.reserved!);
    const failure = this.classify(err);
    if (this.status === 0) {
      const retryable = failure.phase === 'connect' || (failure.status === 502 && !malformed(err));
      // A reused connection was connected: its failure is the stale connection's, not the upstream's.
      if (retryable && this.reused && this.retryTo(false, peer) !== null) {
        this.route.logger.debug(`${this.what()}: upstream ${peer.name} closed a kept-alive connection (${failure.message}); sending it again on a new one`);
        return this.send(peer);
      }
      this.route.balancer.failed(peer);
      if (retryable && this.retryTo(failure.phase === 'connect') !== null) {
        this.route.logger.warning(`${this.what()}: upstream ${peer.name} failed while ${failure.phase === 'connect' ? 'connecting' : 'waiting for the response'} (${failure.message}); trying ${this.reserved!.name}`);
        return this.send(this.reserved!);
      }
    }
    this.fail(peer.name, failure);
  }

  pastEnd(upstream: string): void {
    warnPastEnd(this.route.logger, this.what(), upstream, this.declaredLength);
  }

  get clientResponse(): HttpResponse {
    return this.r.res;
  }

  /** The client went away: the upstream request is cancelled. */
  clientGone(): void {
    if (this.done) return;
    // nginx's 499: the client closed the connection before the answer was complete.
    this.finish(499, 0);
    // After finish(): undici may call onError at once, which must find the request done.
    this.abort?.(new Error('the client went away'));
    const body = this.body;
    if (body !== null && !Buffer.isBuffer(body) && !('file' in body)) body.destroy();
  }

  /**
   * A body streamed from the client went past max_request_body (413) or its
   * framing broke off (400): refused when no answer has started, else the
   * answer is cut.
   */
  bodyRefused(status: number): void {
    if (this.done) return;
    const why = status === 413 ? 'the request body went past max_request_body' : 'the request body broke off';
    if (this.r.res.headersSent) {
      this.route.logger.warning(`${this.what()}: ${why} after the response started; connection cut`);
      this.r.res.destroy();
      this.finish(this.status, 0);
    } else {
      this.finish(status, sendPlain(this.r.res, status, STATUS_CODES[status] ?? 'Error', true));
    }
    this.abort?.(new Error(why));
  }

  /** tries_timeout passed: no response head yet, so this try ends (504) and no other starts. */
  private triesExpired(): void {
    if (this.done || this.status !== 0) return;
    const failure = new UpstreamError(504, this.connected ? (this.sent ? 'read' : 'send') : 'connect', `no response within tries_timeout (${this.route.settings.tries_timeout} s)`);
    const peer = this.peer!;
    this.route.balancer.failed(peer);
    this.fail(peer.name, failure);
    // After fail(): the try's onError finds the request done.
    this.abort?.(new TriesTimeout());
  }

  /**
   * The upstream for another try, or null when this request may not have one.
   * `unsent`: the failed try never reached its upstream; `again`: the try
   * failed on a stale connection, and this upstream is tried once more.
   */
  private retryTo(unsent: boolean, again?: ProxyPeer): ProxyPeer | null {
    const s = this.route.settings;
    const body = this.body;
    // A body streamed from the client cannot be sent twice.
    if (body !== null && !Buffer.isBuffer(body) && !('file' in body)) return null;
    if (!unsent && !s.retry_non_idempotent && !isIdempotent(this.r.req.method)) return null;
    if (s.tries_timeout > 0 && performance.now() - this.startedAt >= s.tries_timeout * 1000) return null;
    if (again !== undefined) return again;
    const tries = s.tries === 0 ? this.route.balancer.peers.length : s.tries;
    if (this.tried.size >= tries) return null;
    return (this.reserved = this.route.balancer.pick(this.tried, this.key));
  }

  private classify(err: Error): UpstreamError {
    const code = (err as { code?: string }).code ?? '';
    if (err instanceof SendTimeout) return new UpstreamError(504, 'send', `no progress for send_timeout (${this.route.settings.send_timeout} s)`);
    if (!this.connected) return new UpstreamError(code === 'UND_ERR_CONNECT_TIMEOUT' ? 504 : 502, 'connect', `${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}`);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError(504, 'read', `no data for read_timeout (${this.route.settings.read_timeout} s)`);
    if (malformed(err)) return new UpstreamError(502, 'read', `malformed response: ${err.message}`);
    return new UpstreamError(502, this.sent || this.status !== 0 ? 'read' : 'send', err.message);
  }

  private armSend(): void {
    const ms = this.route.settings.send_timeout * 1000;
    if (ms === 0) return;
    clearTimeout(this.sendTimer);
    this.sendTimer = setTimeout(() => this.abort?.(new SendTimeout()), ms);
  }

  private fail(upstream: string, failure: UpstreamError): void {
    const bytes = upstreamFailed(this.r, this.route.logger, upstream, failure, false);
    this.finish(this.status || failure.status, bytes);
  }

  private what(): string {
    return `${this.r.req.method} ${this.r.req.url}`;
  }

  /**
   * The upstream's head has X-Accel-* headers (`headers`, after
   * response_headers: one it removes is not acted on, as with nginx's
   * proxy_ignore_headers): taken off unless a web server in front reads
   * them (reroute null), the buffering and the cache's freshness they ask
   * for applied. True when the front follows its X-Accel-Redirect.
   */
  private readAccel(headers: string[]): boolean {
    const accel = readAccel(headers, 0, this.r.res, this.r.reroute);
    if (accel === null) return false;
    if (accel.buffering !== null) this.sink.buffer(accel.buffering);
    if (accel.redirect === null || this.route.rules.responseHeaders.has(ACCEL_REDIRECT)) return false;
    this.redirect(this.r.reroute!, accel.redirect);
    return true;
  }

  /**
   * The front routes the request again and logs its final answer; the rest
   * of this answer is read and dropped, so that its connection may serve
   * another request.
   */
  private redirect(reroute: Reroute, accel: AccelRedirect): void {
    this.discarding = true;
    this.close();
    reroute(this.r, accel);
  }

  /** `bytes`: those the front wrote itself, besides the upstream's body. */
  private finish(status: number, bytes: number): void {
    this.close();
    this.r.log(status, bytes + this.sink.bytes);
  }

  /** Nothing more goes to the client. */
  private close(): void {
    this.done = true;
    clearTimeout(this.sendTimer);
    clearTimeout(this.triesTimer);
    this.sink.close();
    unwatchClient(this.r.req, this);
    const body = this.body;
    if (body !== null && !Buffer.isBuffer(body) && 'file' in body) discardBodyFile(body.file);
  }
}

let unstacked = false;

/**
 * Right after a `Connection: close` answer's onComplete, undici closes the
 * socket with a new error object that nobody reads, and the socket's destroy
 * formats its stack: with a back end that closes every connection (gunicorn's
 * sync workers) that is a stack captured and formatted per request. Errors
 * made until this task's synchronous work ends carry no stack frames.
 */
function unstackedUntilMicrotask(): void {
  if (unstacked) return;
  unstacked = true;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  queueMicrotask(() => {
    Error.stackTraceLimit = limit;
    unstacked = false;
  });
}
