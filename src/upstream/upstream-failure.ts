/**
 * How a request fails because of its back end, for every upstream action:
 * 502 (refused, reset, a malformed answer) or 504 (a timeout), with one
 * error-log line naming the upstream and the phase it failed in; once the
 * response head went out, the client connection is cut instead, so a
 * half-forwarded response never looks complete.
 */
import type { HttpResponse, RequestInfo, RouteRequest } from '../http/handler.js';
import { sendPlain } from '../http/plain-response.js';
import type { Logger } from '../log/logger.js';

/** connect: opening the connection; send: writing the request; read: waiting for or reading the response. */
export type UpstreamPhase = 'connect' | 'send' | 'read';

export class UpstreamError extends Error {
  constructor(
    readonly status: 502 | 504,
    readonly phase: UpstreamPhase,
    message: string,
  ) {
    super(message);
  }
}

/** Answers 502/504, or cuts the response when its head went out already, and logs; returns the bytes sent. */
export function upstreamFailed(
  r: RouteRequest<RequestInfo, HttpResponse>,
  logger: Logger,
  upstream: string,
  error: UpstreamError,
  close: boolean,
): number {
  const doing = error.phase === 'connect' ? 'connecting' : error.phase === 'send' ? 'sending the request' : 'reading the response';
  const what = `${r.req.method} ${r.req.url}: upstream ${upstream} failed while ${doing}: ${error.message}`;
  if (r.res.headersSent) {
    logger.error(`${what}; response cut`);
    r.res.destroy();
    return 0;
  }
  logger.error(`${what} (${error.status})`);
  return sendPlain(r.res, error.status, error.status === 504 ? 'Gateway Timeout' : 'Bad Gateway', close);
}

/**
 * nginx's warning for an answer that goes on past its end: bytes beyond its
 * Content-Length (`declaredLength`) or after its last chunk are dropped, and
 * its connection is not reused. `what`: the request, as `GET /x`.
 */
export function warnPastEnd(logger: Logger, what: string, upstream: string, declaredLength: boolean): void {
  const sent = declaredLength ? 'more data than specified in its Content-Length' : 'data after its last chunk';
  logger.warning(`${what}: upstream ${upstream} sent ${sent}; the rest was dropped`);
}
