/**
 * 414 URI Too Long for a request whose target alone reaches max_header_size
 * (RFC 9110 §15.5.15; nginx answers 414 when the request line does not fit
 * its buffer), 431 kept for a head whose header fields take it over. The
 * line is drawn where llhttp draws it: node:http counts the target, then
 * each header name and value, against max_header_size (not the method, the
 * version or the separators), so a target of that many bytes is what
 * overflows while the request line is read, and nothing else does.
 *
 * Both readers say it. The fast path, of the request line at the start of
 * what it holds (targetTooLong), as soon as it has that much of the target,
 * whatever follows (as nginx): a line it would otherwise hand over unfinished
 * (a method or raw bytes llhttp refuses, read only under a stand-in line,
 * stand-in-line.ts) gets the same answer. node:http's parser says only
 * HPE_HEADER_OVERFLOW, with the chunk it was reading and how far it got; the
 * line under way may have begun in an earlier chunk (a long target comes in
 * several reads), so each connection node:http reads is watched: the first
 * bytes of the line under way at the end of each chunk are kept, and
 * overflowedInTarget reads them with the chunk.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** A request line so far: a method (nginx's characters, llhttp's methods among them) and a space. */
const LINE_START = /^[A-Z_-]+ /;
/** Bytes kept of a line's start: more than any method llhttp knows and its space. */
const KEPT = 32;

/** Whether `pending` starts with a request line whose target has reached `max` bytes (of those a target may hold). */
export function targetTooLong(pending: Buffer, max: number): boolean {
  let i = 0;
  while (i < pending.length && isMethodByte(pending[i]!)) i++;
  if (i === 0 || pending[i] !== 0x20) return false;
  while (pending[i] === 0x20) i++;
  const end = i + max;
  if (pending.length < end) return false;
  // Visible ASCII and bytes 0x80 and above, as the fast path reads a target (request-head.ts).
  for (; i < end; i++) if (pending[i]! <= 0x20 || pending[i] === 0x7f) return false;
  return true;
}

function isMethodByte(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d;
}

/**
 * node:http's parser on a socket (undocumented, as node:http's own code
 * uses it): it reads the socket's handle itself when `_consumed`, and calls
 * its kOnExecute slot after each chunk, the chunk still at getCurrentBuffer().
 */
type NodeParser = { _consumed?: boolean; getCurrentBuffer?: () => Buffer } & Record<number, unknown>;
type ParsedSocket = Socket & { parser?: NodeParser | null };
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: { kOnExecute?: number } };
const kOnExecute = HTTPParser.kOnExecute;

/** The start of the line under way on each watched connection, as of the chunks node:http has read. */
const lineStarts = new WeakMap<Socket, string>();

/**
 * node:http (given `socket` just now) reads from the start of a request
 * line: `first`, what the fast path had of it, then what comes. Each chunk
 * is seen once node:http has read it (an error in it is answered first):
 * through its parser's kOnExecute when the parser reads the handle itself,
 * so that node:http reads as it would unwatched; else as a 'data' listener
 * after node:http's own (where a socket's first reading made it one).
 */
export function readByHttp(socket: Socket, first: Buffer | null = null): void {
  lineStarts.set(socket, '');
  const parser = (socket as ParsedSocket).parser;
  const onExecute = kOnExecute === undefined ? undefined : parser?.[kOnExecute];
  if (parser?._consumed === true && typeof onExecute === 'function' && typeof parser.getCurrentBuffer === 'function') {
    parser[kOnExecute!] = function (this: unknown, ...args: unknown[]): void {
      const chunk = parser.getCurrentBuffer!();
      onExecute.apply(this, args);
      seen(socket, chunk);
    };
    if (first === null) return;
    socket.emit('data', first);
    return seen(socket, first);
  }
  // A 'data' listener would make a parser that reads the handle itself stop doing so (node:http's socket.on).
  if (!socket.listeners('data').includes(onData)) socket.on('data', onData);
  if (first !== null) socket.emit('data', first);
}

/** node:http let go of `socket` (an upgrade, CONNECT): nothing to keep for it any more. */
export function unwatchLines(socket: Socket): void {
  lineStarts.delete(socket);
  socket.removeListener('data', onData);
}

function onData(this: Socket, chunk: Buffer): void {
  seen(this, chunk);
}

function seen(socket: Socket, chunk: Buffer): void {
  const kept = lineStarts.get(socket);
  // Let go of meanwhile (an upgrade node:http read in this chunk).
  if (kept === undefined) return;
  const lf = chunk.lastIndexOf(0x0a);
  if (lf < 0 && kept.length >= KEPT) return;
  const start = lf < 0 ? kept : '';
  lineStarts.set(socket, start + chunk.toString('latin1', lf + 1, Math.min(chunk.length, lf + 1 + KEPT - start.length)));
}

/** node:http's parse error, as it comes to 'clientError': the chunk being read and where in it. */
export type ParserError = NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number };

/**
 * Whether node:http's HPE_HEADER_OVERFLOW on a watched `socket` came while
 * a request line was read (its target reached the limit): the line under
 * way where the parser stopped begins with a method and a space, where a
 * header line begins with its name and a colon (and a folded one with
 * whitespace). A body's last bytes with no line end right before a pipelined
 * request line would hide that line's start: such an overflow stays a 431.
 */
export function overflowedInTarget(socket: Socket, err: ParserError): boolean {
  const kept = lineStarts.get(socket);
  const chunk = err.rawPacket;
  if (kept === undefined || chunk === undefined) return false;
  const read = Math.min(chunk.length, err.bytesParsed ?? chunk.length);
  const lf = read === 0 ? -1 : chunk.lastIndexOf(0x0a, read - 1);
  const line = lf < 0 ? kept + chunk.toString('latin1', 0, Math.min(read, KEPT)) : chunk.toString('latin1', lf + 1, Math.min(read, lf + 1 + KEPT));
  return LINE_START.test(line);
}
