/**
 * What every route action implements (app, static, redirect, return): it is
 * handed a request the router matched, and answers it.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { AccessLog } from '../log/access-log.js';
import type { Logger } from '../log/logger.js';
import type { AccelRedirect } from './accel-redirect.js';
import type { Compression } from './compression.js';

/** What the front shares with the route actions that answer asynchronously. */
export interface ExchangeContext {
  logger: Logger;
  accessLog: AccessLog<RequestInfo> | null;
  /** The server is stopping: responses say Connection: close. */
  draining: boolean;
  /** Response compression; null when it is off. */
  compression: Compression | null;
}

/**
 * A request as the front has it: node:http's IncomingMessage is one, and so
 * is the record the front's own HTTP/1.1 reader makes of a head.
 */
export interface RequestInfo extends RequestHead {
  httpVersionMajor: number;
  /** Names as sent, then values. */
  rawHeaders: string[];
  /** The connection (for HTTP/2, the stream's session socket until the stream closes). */
  socket: Socket;
}

/**
 * What an answer is written to: node:http's ServerResponse, HTTP/2's
 * compatibility response (h2-compat.ts) and the front's own HTTP/1.1 writer
 * (http1-response.ts) all are. 'drain' and 'close' are its events.
 */
export interface HttpResponse extends EventEmitter {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  shouldKeepAlive: boolean;
  /** `headers` as `[name, value, name, value...]` or an object. */
  writeHead(status: number, reason: string, headers?: OutgoingHttpHeaders | string[]): this;
  /**
   * Present where a worker's head block (`STATUS REASON\0Name\0Value...`,
   * latin-1, as the worker checked it; `block` from `start` to `end`) can go
   * out as it is, without strings made of it: writeHead() from it. The
   * status; throws on a block that is no head. 0, with nothing written, when
   * the head has an X-Accel-* header (accel-headers.ts): the caller reads
   * the head and writes it without them (or follows its X-Accel-Redirect).
   */
  writeHeadBlock?(block: Buffer, start: number, end: number): number;
  /**
   * Present where a cache records the answer (capture-response.ts): the
   * X-Accel-Expires of the head about to be written, taken off it.
   */
  cacheExpires?(value: string): void;
  removeHeader(name: string): void;
  getHeader(name: string): number | string | string[] | undefined;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): this;
  destroy(): void;
  /**
   * Trailer fields, sent after the body (HTTP/1.1: in the last chunk, so
   * only for a chunked body; HTTP/2: a trailing HEADERS frame). Call before end().
   */
  addTrailers?(trailers: ReadonlyArray<[string, string]>): void;
  /** Present where the head must say that trailers follow (HTTP/2): call before writeHead(). */
  expectTrailers?(): void;
}

export interface RouteRequest<Req extends RequestInfo = IncomingMessage, Res extends HttpResponse = ServerResponse> {
  req: Req;
  res: Res;
  /** `http` or `https`, as the client sees it. */
  scheme: string;
  /** The Host asked for, lower case, without port ('' when the client sent none). */
  host: string;
  /**
   * The path, percent-decoded to latin-1 ("bytes in a str", as PATH_INFO is),
   * as the route's prefix ('' for `/`) and the part below it ('' or starting with '/').
   */
  prefix: string;
  rest: string;
  /** The raw query string, without '?'. */
  query: string;
  /** The largest body this route takes. */
  maxRequestBody: number;
  /** Writes the access log line once the answer is sent. */
  log(status: number, bytes: number): void;
  /**
   * Routes the request again, as the front routed it, to what an
   * X-Accel-Redirect names: the action calls it instead of writing that head
   * (nothing of its answer is written), and the access log line is then the
   * final answer's. Null for a request from a uwsgi, FastCGI or SCGI
   * listener: the web server in front follows the header (nginx does behind
   * uwsgi_pass), which goes out as any other.
   */
  reroute: Reroute | null;
  /** node:http's objects in place of lean `req` and `res` (the front's LeanParts); null when `req` and `res` are node:http's already. */
  lean: NodeParts | null;
}

/** RouteRequest.reroute: `r` is the request whose action got the X-Accel-Redirect. */
export type Reroute = (r: Rerouted, accel: AccelRedirect) => void;

/** What Reroute needs of the request it routes again (an exchange may keep these rather than the whole RouteRequest). */
export type Rerouted = Pick<RouteRequest<RequestInfo, HttpResponse>, 'req' | 'res' | 'log' | 'scheme' | 'host' | 'lean'>;

/** How a lean request gets node:http's request and response, for an action that needs them (static files). */
export interface NodeParts {
  /** Replaces the lean request and response by node:http's; call before anything is written. */
  toNode(): { req: IncomingMessage; res: ServerResponse };
}

/**
 * A request that asks to switch protocols (an HTTP/1.1 `Upgrade`, such as a
 * WebSocket handshake), routed as any other, for Handler.upgrade. The action
 * owns `socket` from then on: node:http no longer reads or writes it.
 */
export interface UpgradeRequest extends Omit<RouteRequest, 'res' | 'reroute' | 'lean'> {
  /** The client connection. */
  socket: Socket;
  /** What the client sent past the request head (the new protocol's first bytes, often none). */
  head: Buffer;
  /** The action switches no protocol for this request: it is served as any other (serve()), and the connection goes on after it. */
  decline(): void;
  /**
   * The action keeps the socket open for long (an open WebSocket) and handles
   * its errors and its end itself: the front drops its own listeners for
   * them and what it kept of the connection (an idle socket costs less).
   * Call it before adding the action's own listeners.
   */
  adopt(): void;
}

/** A request for an action that needs no node:http objects (Handler.serveLean). */
export interface LeanRouteRequest extends RouteRequest<RequestInfo, HttpResponse> {
  /** The request body as it arrives; null when there is none. */
  body: Readable | null;
}

/** A request's head: what answering from memory may look at (an IncomingMessage is one). */
export interface RequestHead {
  method?: string | undefined;
  url?: string | undefined;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  /** `http` or `https` as the connection is, when the front's fast path read the head (answerFromMemory has no other way to know). */
  scheme?: string;
}

/** A whole response held in memory; `body` null: none (HEAD, 304). */
export interface MemoryResponse {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer | null;
  /**
   * Until when (performance.now() ms) the same request without
   * conditional headers gets this same answer: what it was worked out
   * from is trusted that long (the file cache's validity). Absent: work it
   * out each time.
   */
  reuseUntil?: number;
  /**
   * Present when the answer depends on more of the request than its method,
   * scheme, Host, target and Accept-Encoding (a cache hit: Authorization,
   * Vary, the request's Cache-Control), or on more than time (the stored
   * response may be purged): another request gets it again only while this
   * holds for its headers.
   */
  reusableFor?(headers: IncomingHttpHeaders): boolean;
}

export interface Handler {
  serve(request: RouteRequest): void;
  /**
   * True when the route's own settings set the answer's Cache-Control and
   * Expires (a static route's `expires` or `cache_control`): those of a head
   * that redirected here (X-Accel-Redirect) do not go over them, as nginx's
   * `expires` replaces them.
   */
  readonly setsCaching?: boolean;
  /**
   * Present when the action needs no node:http objects (the app bridge): the
   * front's own HTTP/1.1 reader then hands it its own lean request record
   * and response writer, which cost less than node:http's.
   */
  serveLean?(request: LeanRouteRequest): void;
  /**
   * The answer when it is all in memory and needs no more than the head (a
   * bodiless GET or HEAD): the fast path (fast-path.ts) writes it. Null:
   * this request needs serve().
   */
  answerFromMemory?(head: RequestHead, rest: string): MemoryResponse | null | Promise<MemoryResponse | null>;
  /**
   * Present when the action can switch protocols: an HTTP/1.1 request with
   * `Connection: upgrade` and `Upgrade` comes here instead of serve(). The
   * action writes the 101 (or any other answer) to the socket itself, calls
   * `log` once (101 and the bytes sent to the client, when the tunnel
   * closes) and closes the socket. Absent: such a request goes to serve()
   * as any other, and its connection goes on after the answer.
   */
  upgrade?(request: UpgradeRequest): void;
}
