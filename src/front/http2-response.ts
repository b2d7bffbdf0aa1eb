/**
 * HTTP/2 streams without node:http2's compatibility objects, for the route
 * actions that take the lean contract (the app bridge): the stream's request
 * as a plain record, and a response writer straight onto the stream.
 *
 * Why: Http2ServerRequest and Http2ServerResponse (made by node:http2 for
 * every stream once a server has a 'request' listener) cost more than the
 * rest of an HTTP/2 request's work in the front. Actions that need them
 * (static files through `send`, say) still get them, made on demand
 * (h2-compat.ts).
 */
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import { constants, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { HttpResponse, RequestInfo } from '../http/handler.js';
import type { InFlight } from '../http/in-flight.js';

/** Header fields HTTP/2 forbids (RFC 9113 §8.2.2): dropped from an answer rather than failing it. */
export const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** What the front keeps for one HTTP/2 connection (session). */
export interface H2Connection {
  /**
   * The TLS socket itself: `session.socket` is a Proxy that routes every
   * property read through a trap (and throws once the session is gone).
   */
  readonly socket: TLSSocket;
  /** Streams with a response under way (keepalive_timeout closes a session only when none is). */
  open: number;
}

const kConnection = Symbol('gatehouse.h2Connection');
type TrackedSession = ServerHttp2Session & { [kConnection]?: H2Connection };

/** Starts keeping `conn` for `session`. */
export function trackSession(session: ServerHttp2Session, conn: H2Connection): void {
  (session as TrackedSession)[kConnection] = conn;
}

/** The connection a stream came on (its session must not be destroyed yet, as in the 'stream' event). */
export function connectionOf(stream: ServerHttp2Stream): H2Connection {
  const session = stream.session as TrackedSession;
  return (session[kConnection] ??= { socket: session.socket as TLSSocket, open: 0 });
}

/**
 * Whether a stream's header list is over `max` (max_header_size) while its
 * session still waits for the client to acknowledge the SETTINGS announcing
 * that limit: nghttp2 holds header lists to it only once acknowledged (RFC
 * 9113 §6.5.3), so a client's first requests could carry up to node's own
 * limit. Counted as RFC 9113 §6.5.2 counts (each field's name and value
 * and 32); after the acknowledgement nghttp2 does this itself, at no cost
 * here.
 */
export function overHeaderListSize(stream: ServerHttp2Stream, rawHeaders: readonly string[], max: number): boolean {
  if (stream.session?.pendingSettingsAck !== true) return false;
  let size = 0;
  for (const field of rawHeaders) size += field.length;
  return size + 16 * rawHeaders.length > max;
}

/** A stream's request as the front's handlers read it; Host from `:authority` when the client sent none. */
export function h2Request(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], socket: TLSSocket): RequestInfo {
  const authority = headers[':authority'];
  if (headers.host === undefined && authority !== undefined) {
    headers.host = authority;
    rawHeaders.push('host', authority);
  }
  return {
    method: headers[':method'],
    url: headers[':path'],
    httpVersion: '2.0',
    httpVersionMajor: 2,
    headers,
    rawHeaders,
    // The connection's socket: unlike the stream's, it still says who the client is once the stream closes.
    socket,
    // As Http2ServerRequest has it: the app bridge asks whether a body without a length follows.
    stream,
  } as RequestInfo;
}

/** The stream's errors: its 'close' follows, which is what the front acts on. */
function ignore(): void {}

function onStreamDrain(this: ServerHttp2Stream & { [kResponse]?: Http2Response }): void {
  this[kResponse]?.emit('drain');
}

function onStreamClose(this: ServerHttp2Stream & { [kResponse]?: Http2Response }): void {
  this[kResponse]?.closed();
}

const kResponse = Symbol('gatehouse.h2Response');

export class Http2Response extends EventEmitter implements HttpResponse {
  /** Set by the front while draining; an HTTP/2 session is closed with GOAWAY instead. */
  shouldKeepAlive = true;
  headersSent = false;
  /** The head as sent (getHeader); null before writeHead. */
  private headers: OutgoingHttpHeaders | null = null;
  /** No body may be sent: HEAD, 1xx, 204, 304. */
  private bodiless: boolean;
  /** Trailer fields, sent once the body has ended; null when the head did not say that trailers follow. */
  private trailerFields: OutgoingHttpHeaders | null = null;
  /** The stream's 'drain' is passed on once a write has had to wait (the only time it matters). */
  private drainWatched = false;
  /** Stopped if the stream closes first (watchClient): a field, not a closure and a listener per request. */
  private work: InFlight | null = null;

  constructor(
    private readonly stream: ServerHttp2Stream,
    method: string | undefined,
    private readonly conn: H2Connection,
  ) {
    super();
    this.bodiless = method === 'HEAD';
    conn.open++;
    (stream as { [kResponse]?: Http2Response })[kResponse] = this;
    stream.on('close', onStreamClose);
    stream.on('error', ignore);
  }

  /** The client going away (the stream closing before the answer is done) stops `work`. */
  watch(work: InFlight): void {
    if (this.work === null) this.work = work;
    else this.once('close', () => work.clientGone());
  }

  /** @internal the stream closed, answered or reset. */
  closed(): void {
    this.conn.open--;
    const work = this.work;
    this.work = null;
    work?.clientGone();
    this.emit('close');
  }

  get destroyed(): boolean {
    // A reset stream is closed before it is destroyed; either way it takes no more writes (they would throw).
    return this.stream.destroyed || this.stream.closed;
  }

  get writableLength(): number {
    return this.stream.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.stream.writableNeedDrain;
  }

  /** `headers` as `[name, value, ...]` (names as the app gave them) or an object; the reason phrase is HTTP/1's only. */
  writeHead(status: number, _reason: string, headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('the response head was already written');
    const out: OutgoingHttpHeaders = { ':status': status };
    if (Array.isArray(headers)) {
      const flat = headers as readonly string[];
      for (let i = 0; i < flat.length; i += 2) add(out, flat[i]!.toLowerCase(), flat[i + 1]!);
    } else if (headers !== undefined) {
      for (const name in headers) {
        const value = (headers as OutgoingHttpHeaders)[name];
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) add(out, name.toLowerCase(), v);
        else add(out, name.toLowerCase(), String(value));
      }
    }
    if (status < 200 || status === 204 || status === 304) this.bodiless = true;
    // Throws on a header node:http2 refuses (the caller answers 500 then); nothing is sent before.
    const trailing = this.trailerFields !== null && !this.bodiless;
    this.stream.respond(out, { endStream: this.bodiless, waitForTrailers: trailing });
    if (trailing) this.stream.once('wantTrailers', () => this.stream.sendTrailers(this.trailerFields!));
    this.headers = out;
    this.headersSent = true;
    return this;
  }

  getHeader(name: string): number | string | string[] | undefined {
    return this.headers?.[name.toLowerCase()];
  }

  /** The head goes out whole in writeHead: nothing is left to remove. */
  removeHeader(): void {}

  expectTrailers(): void {
    this.trailerFields ??= {};
  }

  /** Sent after the body when expectTrailers() came before the head, else dropped. */
  addTrailers(trailers: ReadonlyArray<[string, string]>): void {
    if (this.trailerFields === null) return;
    for (const [name, value] of trailers) add(this.trailerFields, name.toLowerCase(), value);
  }

  write(chunk: Buffer): boolean {
    if (this.destroyed || this.bodiless || chunk.length === 0) return !this.writableNeedDrain;
    if (this.stream.write(chunk)) return true;
    if (!this.drainWatched) {
      this.drainWatched = true;
      this.stream.on('drain', onStreamDrain);
    }
    return false;
  }

  end(chunk?: Buffer): this {
    if (this.destroyed) return this;
    if (!this.headersSent) this.writeHead(200, 'OK');
    if (this.bodiless) return this;
    if (chunk !== undefined && chunk.length > 0) this.stream.end(chunk);
    else this.stream.end();
    return this;
  }

  destroy(): void {
    if (!this.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }
}

function add(out: OutgoingHttpHeaders, name: string, value: string): void {
  if (CONNECTION_SPECIFIC.has(name)) return;
  const had = out[name];
  if (had === undefined) out[name] = value;
  else if (Array.isArray(had)) had.push(value);
  else out[name] = [String(had), value];
}
