import { STATUS_CODES, type ServerResponse } from 'node:http';

/** A small text response from the front itself (errors, refusals). */
export function sendPlain(res: ServerResponse, status: number, text: string, close: boolean): number {
  const body = Buffer.from(text + '\n');
  const headers: Record<string, string | number> = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length };
  if (close) headers.Connection = 'close';
  res.writeHead(status, STATUS_CODES[status] ?? '', headers);
  res.end(body);
  return body.length;
}
