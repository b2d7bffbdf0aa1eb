/**
 * The fast path of a plain HTTP/1.1 listener: requests a route can answer
 * from memory (hot static files) are read and answered here, on the socket,
 * without node:http's per-request objects. The first request it does not
 * take hands the connection, with every byte not yet answered, to node:http
 * for the rest of its life.
 *
 * Why by hand: node:http spends about 45 µs on each request whatever the
 * answer; on this project's 2-core machine bare node:http sending a 1 KiB
 * buffer did 18–22k req/s where nginx sent a 1 KiB file at 28k, and a socket
 * answering directly did 43k. nginx's static speed needs this path.
 *
 * It takes only what it reads exactly as llhttp (the parser of record) would,
 * so no request can be read two ways: a whole head in what has arrived (a
 * partial one goes to node:http, with its header timeout), `GET` or `HEAD`,
 * an origin-form target, HTTP/1.1, token header names, values without control
 * characters, no folded lines, no repeated header, a Host, no body (no
 * Content-Length or Transfer-Encoding), no Expect or Upgrade, Connection
 * keep-alive or close.
 */
import { IncomingMessage, STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import type { MemoryResponse, RequestHead } from '../handlers/handler.js';
import { parseTarget } from './environ.js';
import type { TrustedProxies } from './forwarded.js';
import { hostName, type Router } from './router.js';
import type { ExchangeContext } from './wsgi-exchange.js';

const END_OF_HEAD = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^(GET|HEAD) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
/** A header line: a token, a colon, and a value of visible ASCII, spaces, tabs and obs-text (no control character). */
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t\x20-\x7e\x80-\xff]*)$/;
/** Headers that mean a body, a protocol switch or an interim answer: node:http's business. */
const NOT_HERE = new Set(['content-length', 'transfer-encoding', 'expect', 'upgrade', 'http2-settings']);
/** More header lines than this: not a request worth a fast path. */
const MAX_FIELDS = 100;

export interface FastPathOptions {
  router: Router;
  settings: Config;
  ctx: ExchangeContext;
  proxies: TrustedProxies | null;
  /** Answers a connection that sent nothing within header_timeout (408), as node:http would. */
  onHeaderTimeout(socket: Socket): void;
}

/** An answer with its status line and headers as text (all but Date and Connection). */
interface Prepared {
  answer: MemoryResponse;
  head: string;
  /** See MemoryResponse.reuseUntil. */
  until: number;
  /** The whole response as last written, for the Date and Connection it had. */
  wire: Buffer | null;
  wireDate: string;
  wireClose: boolean;
}

function prepare(answer: MemoryResponse): Prepared {
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n`;
  for (const name in answer.headers) {
    const value = answer.headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) head += `${name}: ${v}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  return { answer, head, until: answer.reuseUntil ?? 0, wire: null, wireDate: '', wireClose: false };
}

/** Request headers that make an answer particular to the request: never reused (see FastPath.recent). */
const CONDITIONAL = ['if-none-match', 'if-modified-since', 'range', 'if-range', 'if-match', 'if-unmodified-since'] as const;
/** Answers kept for reuse at most; more and they are all dropped (a scan of many files should not grow memory). */
const MAX_RECENT = 1024;

export class FastPath {
  private readonly connections = new Set<FastConnection>();
  /**
   * Answers worked out lately, by method, Host, target and Accept-Encoding:
   * the same request, without conditional headers, gets the same answer
   * again while what it came from is trusted (MemoryResponse.reuseUntil),
   * at the cost of a lookup.
   */
  private readonly recent = new Map<string, Prepared>();

  constructor(private readonly o: FastPathOptions) {}

  /** Reads `socket` here; `toHttp` gives it to node:http (its 'connection' listeners). */
  take(socket: Socket, toHttp: (socket: Socket) => void): void {
    const c = new FastConnection(this, socket, toHttp);
    this.connections.add(c);
    c.start();
  }

  /** Draining: connections waiting for their next request are closed. */
  closeIdle(): void {
    for (const c of this.connections) c.closeIfIdle();
  }

  /** @internal the connection left (closed or handed to node:http). */
  forget(c: FastConnection): void {
    this.connections.delete(c);
  }

  /** @internal the answer to `head` from memory; null when node:http must take it. */
  answer(head: RequestHead): Prepared | null | Promise<Prepared | null> {
    const h = head.headers;
    const key = CONDITIONAL.some((name) => h[name] !== undefined) ? null : `${head.method} ${h.host} ${head.url} ${h['accept-encoding'] ?? ''}`;
    if (key !== null) {
      const known = this.recent.get(key);
      if (known !== undefined && performance.now() < known.until) return known;
    }
    const target = parseTarget(head.url!);
    if (target === null) return null;
    const match = this.o.router.match(hostName(h.host), target.path);
    const handler = match?.entry.handler;
    if (handler?.answerFromMemory === undefined) return null;
    const answer = handler.answerFromMemory(head, match!.rest);
    if (answer instanceof Promise) return answer.then((a) => (a === null ? null : prepare(a)));
    if (answer === null) return null;
    const prepared = prepare(answer);
    if (key !== null && answer.reuseUntil !== undefined) {
      if (this.recent.size >= MAX_RECENT) this.recent.clear();
      this.recent.set(key, prepared);
    }
    return prepared;
  }

  /** @internal */
  get options(): FastPathOptions {
    return this.o;
  }
}

class FastConnection {
  /** Bytes received and not yet answered. */
  private pending: Buffer | null = null;
  /** Waiting for a handler's answer (the cache is loading a file). */
  private busy = false;
  private served = 0;
  /** The client sent FIN, or we are closing: no more requests. */
  private ended = false;

  constructor(
    private readonly path: FastPath,
    private readonly socket: Socket,
    private readonly toHttp: (socket: Socket) => void,
  ) {}

  start(): void {
    const s = this.socket;
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('timeout', this.onTimeout);
    s.once('close', this.onClose);
    // Until the first request is answered, the wait is header_timeout's.
    const wait = this.path.options.settings.header_timeout;
    if (wait > 0) s.setTimeout(wait * 1000);
  }

  closeIfIdle(): void {
    if (this.busy || this.ended) return;
    this.ended = true;
    this.socket.end();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    if (!this.busy && !this.ended) this.work();
  };

  private readonly onEnd = (): void => {
    if (this.ended) return;
    this.ended = true;
    if (!this.busy) this.socket.end();
  };

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  private readonly onTimeout = (): void => {
    if (this.served === 0) this.path.options.onHeaderTimeout(this.socket);
    else this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.path.forget(this);
  };

  /** Answers the whole heads that have arrived, in order; hands the connection over at the first it cannot. */
  private work(): void {
    const { settings } = this.path.options;
    while (this.pending !== null) {
      const end = this.pending.indexOf(END_OF_HEAD);
      // A head still arriving, too large, or a client not reading its answers: node:http's limits and backpressure.
      if (end < 0 || end + 4 > settings.max_header_size || this.socket.writableNeedDrain) return this.handOver();
      const head = parseHead(this.pending.toString('latin1', 0, end));
      if (head === null) return this.handOver();
      let answer: ReturnType<FastPath['answer']>;
      try {
        answer = this.path.answer(head);
      } catch {
        answer = null;
      }
      if (answer === null) return this.handOver();
      const rest = end + 4;
      if (answer instanceof Promise) {
        this.busy = true;
        answer.then(
          (a) => this.resume(head, a, rest),
          () => this.resume(head, null, rest),
        );
        return;
      }
      this.respond(head, answer, rest);
      if (this.ended) return;
    }
  }

  private resume(head: RequestHead, answer: Prepared | null, rest: number): void {
    this.busy = false;
    if (this.socket.destroyed) return;
    if (answer === null) return this.handOver();
    this.respond(head, answer, rest);
    if (this.ended) this.socket.end();
    else this.work();
  }

  /** Writes the answer to the head at the start of `pending` (`rest` bytes long with its blank line). */
  private respond(head: RequestHead, prepared: Prepared, rest: number): void {
    const { settings, ctx } = this.path.options;
    this.pending = rest === this.pending!.length ? null : this.pending!.subarray(rest);
    this.served++;
    const close = head.headers.connection?.toLowerCase() === 'close' || settings.keepalive_timeout === 0 || ctx.draining || this.ended;
    const bodyBytes = head.method === 'HEAD' ? 0 : (prepared.answer.body?.length ?? 0);
    this.socket.write(wire(prepared, close, settings.keepalive_timeout, bodyBytes > 0));
    if (this.served === 1 && settings.keepalive_timeout > 0) {
      // From now on the wait is for the next request. Node's socket timer restarts on every read and write;
      // as node:http, a second past the announced timeout, so a request racing the close is not lost.
      this.socket.setTimeout(settings.keepalive_timeout * 1000 + 1000);
    }
    if (ctx.accessLog !== null) this.log(head, prepared.answer, bodyBytes);
    if (close) {
      this.ended = true;
      this.socket.end();
    }
  }

  private log(head: RequestHead, answer: MemoryResponse, bytes: number): void {
    const { ctx, proxies } = this.path.options;
    // The access log reads what node:http's requests have: this one is made up only for it.
    const req = new IncomingMessage(this.socket);
    req.method = head.method;
    req.url = head.url;
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.headers = head.headers;
    proxies?.resolve(req);
    ctx.accessLog!.write(req, answer.status, bytes, { getHeader: (name) => headerValue(answer.headers, name) });
  }

  /** node:http takes the connection from here, starting with the bytes not answered. */
  private handOver(): void {
    const s = this.socket;
    this.path.forget(this);
    s.setTimeout(0);
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('error', this.onError);
    s.removeListener('timeout', this.onTimeout);
    s.removeListener('close', this.onClose);
    this.toHttp(s);
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) s.emit('data', pending);
  }
}

/** The head if the fast path may take it (see the module's comment); null: node:http's. */
export function parseHead(text: string): RequestHead | null {
  let eol = text.indexOf('\r\n');
  const m = REQUEST_LINE.exec(eol < 0 ? text : text.slice(0, eol));
  if (m === null) return null;
  // A plain object: a name such as `constructor` or `__proto__` then looks repeated, and goes to node:http.
  const headers: IncomingHttpHeaders = {};
  for (let fields = 1; eol >= 0; fields++) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const f = FIELD.exec(eol < 0 ? text.slice(start) : text.slice(start, eol));
    if (f === null || fields > MAX_FIELDS) return null;
    const key = f[1]!.toLowerCase();
    if (headers[key] !== undefined || NOT_HERE.has(key)) return null;
    headers[key] = trimSpaces(f[2]!);
  }
  const connection = headers.connection?.toLowerCase();
  if (headers.host === undefined || (connection !== undefined && connection !== 'keep-alive' && connection !== 'close')) return null;
  return { method: m[1]!, url: m[2]!, httpVersion: '1.1', headers };
}

/** Without the spaces and tabs around a field value (String#trim would take obs-text's NBSP too). */
function trimSpaces(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** The response's bytes: head (with Date and Connection as node:http writes them) and body, remade once a second. */
function wire(p: Prepared, close: boolean, keepAlive: number, withBody: boolean): Buffer {
  const date = httpDate();
  if (p.wire === null || p.wireDate !== date || p.wireClose !== close) {
    const connection = close ? 'Connection: close\r\n\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAlive}\r\n\r\n`;
    const head = Buffer.from(`${p.head}Date: ${date}\r\n${connection}`, 'latin1');
    const body = p.answer.body;
    p.wire = body === null ? head : Buffer.concat([head, body]);
    p.wireDate = date;
    p.wireClose = close;
  }
  return withBody || p.answer.body === null ? p.wire : p.wire.subarray(0, p.wire.length - p.answer.body.length);
}

function headerValue(headers: OutgoingHttpHeaders, name: string): number | string | string[] | undefined {
  const lower = name.toLowerCase();
  for (const key in headers) if (key.toLowerCase() === lower) return headers[key];
  return undefined;
}

let dateSecond = -1;
let dateText = '';

/** The Date header's value, made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
