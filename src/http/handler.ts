/**
 * What every route action implements (app, static, redirect, return): it is
 * handed a request the router matched, and answers it.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AccessLog } from '../log/access-log.js';
import type { Logger } from '../log/logger.js';
import type { Compression } from './compression.js';

/** What the front shares with the route actions that answer asynchronously. */
export interface ExchangeContext {
  logger: Logger;
  accessLog: AccessLog | null;
  /** The server is stopping: responses say Connection: close. */
  draining: boolean;
  /** Response compression; null when it is off. */
  compression: Compression | null;
}

export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
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
}

/** A request's head: what answering from memory may look at (an IncomingMessage is one). */
export interface RequestHead {
  method?: string | undefined;
  url?: string | undefined;
  httpVersion: string;
  headers: IncomingHttpHeaders;
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
}

export interface Handler {
  serve(request: RouteRequest): void;
  /**
   * The answer when it is all in memory and needs no more than the head (a
   * bodiless GET or HEAD): the fast path (fast-path.ts) writes it. Null:
   * this request needs serve().
   */
  answerFromMemory?(head: RequestHead, rest: string): MemoryResponse | null | Promise<MemoryResponse | null>;
}
