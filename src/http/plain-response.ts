import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from './handler.js';

/** A small text response from the front itself (errors, refusals). */
export function sendPlain(res: HttpResponse, status: number, text: string, close: boolean, extra?: Record<string, string>): number {
  const body = Buffer.from(text + '\n');
  const headers: Record<string, string | number> = { ...extra, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length };
  if (close) headers.Connection = 'close';
  res.writeHead(status, STATUS_CODES[status] ?? '', headers);
  res.end(body);
  return body.length;
}

/**
 * Refuses a request (its status's own text as the body) and logs it; the
 * connection is closed after the answer, as the request's body may be unread.
 */
export function refuse(r: { res: HttpResponse; log(status: number, bytes: number): void }, status: number): void {
  r.log(status, sendPlain(r.res, status, STATUS_CODES[status] ?? 'Error', true));
}
