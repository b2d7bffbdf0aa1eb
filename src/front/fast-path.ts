/**
 * The fast path of a plain HTTP/1.1 listener: the front's own reading of
 * ordinary requests, node:http's parser kept for the rest.
 *
 * A connection starts here. A head that arrived whole and that
 * request-head.ts accepts is either answered from memory on the socket (hot
 * static files, memory-answers.ts), or made into node:http's own request and
 * response objects and given to the front's request handler, exactly as
 * node:http would (its body, a plain Content-Length or chunked, pushed in as
 * it arrives; a 100 Continue as node:http sends it). Between requests a connection holds only the socket and this
 * object, no parser: an idle keep-alive connection costs about half what it
 * does in node:http (3.6 KiB against 6.9), and so does a head trickling in
 * (slowloris), timed here by header_timeout. The first request this path
 * does not take (an upgrade, a head over max_header_size, a repeated framing
 * field, anything unusual) hands the connection, unread bytes included, to
 * node:http for good.
 *
 * Why by hand: node:http spends about 45 µs on each request whatever the
 * answer; on this project's 2-core machine bare node:http sending a 1 KiB
 * buffer did 18–22k req/s where nginx sent a 1 KiB file at 28k, and this
 * path does more than nginx. Ordinary requests are a small, strict part of
 * HTTP/1.1; llhttp stays the parser for everything else.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { TrustedProxies } from '../http/forwarded.js';
import type { ExchangeContext, HttpResponse, NodeParts, RequestInfo } from '../http/handler.js';
import { headerValue, type MemoryAnswers, type Prepared } from './memory-answers.js';
import { toRequest } from './fast-request.js';
import type { ParsedHead } from './request-head.js';
import { FastConnection } from './fast-connection.js';
import { MemberList } from '../http/member-list.js';

export interface FastPathOptions {
  memory: MemoryAnswers;
  settings: Config;
  ctx: ExchangeContext;
  proxies: TrustedProxies | null;
  /**
   * Answers a client error on the socket and closes it, as node:http does for
   * its parser's errors: ERR_HTTP_REQUEST_TIMEOUT (408, header_timeout) or a
   * head that can never be read (400).
   */
  onClientError(socket: Socket, code: string): void;
}

/** What a listener does with a request: the front's request handlers, for node:http's objects and for the lean ones. */
export interface Serve {
  /** `expectsContinue`: the request asks for 100 Continue (node:http's 'checkContinue'). */
  node(req: IncomingMessage, res: ServerResponse, expectsContinue?: boolean): void;
  lean(req: RequestInfo, res: HttpResponse, lean: LeanParts): void;
}

/** What comes with a lean request: its body, and node:http's objects for an action that needs them. */
export interface LeanParts extends NodeParts {
  /** The body as it arrives (node:http's IncomingMessage, which is also the request, or an HTTP/2 stream); null: none. */
  body: Readable | null;
}

export class FastPath {
  private readonly connections = new MemberList<FastConnection>();

  constructor(readonly options: FastPathOptions) {}

  /** Reads `socket` here; `serve` handles its requests; `toHttp` gives it to node:http (its 'connection' listeners). */
  take(socket: Socket, serve: Serve, toHttp: (socket: Socket) => void): void {
    const c = new FastConnection(this, socket, serve, toHttp);
    this.connections.add(c);
    c.start();
  }

  /** Draining: connections waiting for their next request are closed. */
  closeIdle(): void {
    for (const c of this.connections) c.closeIfIdle();
  }

  /** The access log's line for an answer from memory (fast-connection.ts). */
  logAnswer(socket: Socket, head: ParsedHead, prepared: Prepared): void {
    const { ctx, proxies } = this.options;
    // The access log reads what node:http's requests have: this one is made up only for it.
    const req = toRequest(socket, head);
    proxies?.resolve(req);
    const answer = prepared.answer;
    ctx.accessLog!.write(req, answer.status, answer.body?.length ?? 0, { getHeader: (name) => headerValue(answer.headers, name) });
  }

  /** @internal the connection left (closed or handed to node:http). */
  forget(c: FastConnection): void {
    this.connections.delete(c);
  }
}
