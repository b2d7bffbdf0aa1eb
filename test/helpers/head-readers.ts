/**
 * Which reader gatehouse uses for each request on a connection (its fast
 * path, src/front/request-head.ts, or node:http's llhttp), worked out as
 * src/front/fast-path.ts decides it, as pure functions: gatehouseReads (what
 * the fast path reads of some bytes, and what happens to the rest),
 * gatehousePath (the readers, request by request), fastAnswer (what
 * gatehouse answers a request its fast path read), and a Case: the bytes of
 * a request as the comparison (head-differences.ts) sees them.
 */
import { ChunkedBody, sizeAlone } from '../../src/front/chunked-body.js';
import { afterLineEnds, readHead } from '../../src/front/request-head.js';
import type { Answer, Parsed } from './head-outcome.js';
import { refusalOf, viewOf } from './head-view.js';

/**
 * Which reader gatehouse uses for one request of a connection ('refused': a
 * head it can never read, answered 400 at once; 'too-long': a request line
 * whose target alone reaches max_header_size, answered 414 at once,
 * uri-too-long.ts; 'body-fault': a chunked body whose framing llhttp
 * refuses, read on the fast path, chunked-body.ts).
 */
export type Reader = 'fast' | 'llhttp' | 'waiting' | 'refused' | 'too-long' | 'body-fault';

/** A request gatehouse's fast path reads: what it parsed (request-head.ts's parseHead), its body, and whether it asked to close. */
export interface FastRead {
  parsed: Parsed;
  body: Buffer;
  close: boolean;
  /** It asks for 100 Continue (Expect). */
  continues: boolean;
  /** Where the bytes after it start (Infinity: its chunked body is not all there). */
  next: number;
  /** Its chunked body has a size line whose extensions have whitespace around `;` or `=`, which llhttp refuses (chunked-body.ts). */
  spacedExtension: boolean;
}

/**
 * How gatehouse reads the requests in `bytes`, as fast-path.ts's work()
 * decides: the requests its fast path takes, in order, then what happens to
 * the rest: 'llhttp' when it hands the connection over, 'waiting' when it
 * waits for the rest of a head (it needs CRLFCRLF), 'refused' when what came
 * of a head can never be read (request-head.ts's unreadableHead: 400 at once),
 * 'too-long' when its request line's target reached the limit (414 at once),
 * 'body-fault' when a chunked body it read is refused by llhttp (that request
 * is not among `fast`), null when nothing is left or the last request asked
 * to close (the fast path reads no further). Line ends before a request are
 * skipped, as llhttp skips them.
 */
export function gatehouseReads(bytes: Buffer, maxHeaderSize = 16 * 1024): { fast: FastRead[]; then: Exclude<Reader, 'fast'> | null } {
  const fast: FastRead[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const from = afterLineEnds(bytes.subarray(pos));
    if (from === null) break;
    pos = bytes.length - from.length;
    const head = readHead(from, maxHeaderSize, 'http');
    if (typeof head === 'string') return { fast, then: head };
    const start = pos + head.size;
    const body = head.chunked ? dechunked(bytes.subarray(start), maxHeaderSize) : { next: head.bodyLength, body: bytes.subarray(start, start + head.bodyLength) };
    if (body === null) return { fast, then: 'body-fault' };
    const parsed: Parsed = { method: head.method, url: head.url, httpVersion: head.httpVersion, rawHeaders: head.rawHeaders };
    const spacedExtension = head.chunked && hasSpacedExtension(bytes.subarray(start));
    fast.push({ parsed, body: body.body, close: head.close, continues: head.expectsContinue, next: start + body.next, spacedExtension });
    if (head.close) break;
    pos = start + body.next;
  }
  return { fast, then: null };
}

/** A chunked body at the start of `bytes` as the fast path reads it (llhttp, chunked-body.ts): the body and where what follows starts, or null for a fault. */
function dechunked(bytes: Buffer, maxHeaderSize: number): { body: Buffer; next: number } | null {
  const pieces: Buffer[] = [];
  const reader = new ChunkedBody(maxHeaderSize, (data) => pieces.push(data) > 0);
  const rest = reader.feed(bytes);
  reader.close();
  if (rest instanceof Error) return null;
  return { body: Buffer.concat(pieces), next: !reader.done ? Infinity : bytes.length - (rest?.length ?? 0) };
}

/** Whether the chunked body at the start of `bytes` has a size line the fast path gives llhttp without its extensions (chunked-body.ts's sizeAlone), its chunks followed here. */
function hasSpacedExtension(bytes: Buffer): boolean {
  for (let at = 0; ; ) {
    const lf = bytes.indexOf(0x0a, at);
    if (lf < 0) return false;
    const line = bytes.toString('latin1', at, lf + 1);
    if (sizeAlone(line) !== null) return true;
    const size = parseInt(line, 16);
    if (!(size > 0)) return false;
    at = lf + 1 + size + 2;
  }
}

/** The readers gatehouse uses, request by request: gatehouseReads as a list ('fast', 'fast', 'llhttp'...). */
export function gatehousePath(bytes: Buffer, maxHeaderSize = 16 * 1024): Reader[] {
  const r = gatehouseReads(bytes, maxHeaderSize);
  return [...r.fast.map((): Reader => 'fast'), ...(r.then === null ? [] : [r.then])];
}

/**
 * What gatehouse answers a request its fast path read: a refusal, or the
 * app's echo of what it saw; after a 100 Continue when the request asks for
 * one and is not refused before it (as node:http, request-intake.ts).
 */
export function fastAnswer(f: FastRead): Answer[] {
  const refusal = refusalOf(f.parsed);
  const final = refusal !== null ? { status: refusal.status } : { status: 200, view: viewOf(f.parsed, f.body) };
  return f.continues && refusal?.beforeContinue !== true ? [{ status: 100 }, final] : [final];
}

/** A request sent, as the comparison sees it. */
export interface Case {
  bytes: Buffer;
  /** gatehouseReads(bytes): what gatehouse's fast path read of it, and what happens to the rest. */
  reads: ReturnType<typeof gatehouseReads>;
}

/**
 * Where each request gatehouse reads itself, or hands over first, starts (gatehouseReads' requests, then the
 * handed-over one; or the one whose target is too long, which llhttp reads under gatehouse's stand-in line
 * when it is whole, to answer what gatehouse answers).
 */
export function requestStarts(reads: Case['reads']): number[] {
  const starts = [0, ...reads.fast.map((f) => f.next)];
  return starts.slice(0, reads.fast.length + (reads.then === 'llhttp' || reads.then === 'too-long' ? 1 : 0));
}

export function caseOf(bytes: Buffer): Case {
  return { bytes, reads: gatehouseReads(bytes) };
}
