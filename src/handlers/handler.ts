/**
 * What every route action implements (app, static, redirect, return): it is
 * handed a request the router matched, and answers it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

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

export interface Handler {
  serve(request: RouteRequest): void;
}
