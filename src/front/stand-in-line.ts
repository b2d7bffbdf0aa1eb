/**
 * Two things llhttp refuses (400) that are requests all the same, and that
 * nginx passes to the app: a method outside llhttp's table and raw bytes of
 * 0x80 and above in the target (request-head.ts says which the front
 * takes). When the front's reader leaves such a head to node:http (a chunked
 * body, HTTP/1.0...), llhttp is given a stand-in request line (the method
 * replaced, those bytes percent-encoded), and the request it reads gets the
 * line as sent back before anything routes it, so that the app sees the
 * same on both readers.
 */
import { METHODS, type IncomingMessage } from 'node:http';

/** llhttp's table of methods: node:http's METHODS, and PRI, which llhttp reads as HTTP/2's connection preface. */
export const LLHTTP_METHODS: ReadonlySet<string> = new Set([...METHODS, 'PRI']);

/** A request line as the client sent it, where llhttp was given a stand-in. */
export interface SentLine {
  method: string;
  url: string;
}

/** A method as nginx takes one (RFC 9110 allows any token); the target; the version. */
const LINE = /^([A-Z_-]+) +([\x21-\x7e\x80-\xff]+) +(HTTP\/\d\.\d)$/;
/** What llhttp reads in place of a method it does not know (the method has no meaning to llhttp or node:http otherwise). */
const STAND_IN_METHOD = 'GET';

/** A head made readable to llhttp (standInLine). */
export interface StandIn {
  /** `pending` with its first request line replaced. */
  bytes: Buffer;
  /** The line as the client sent it. */
  sent: SentLine;
  /** The line llhttp is given in its place. */
  read: SentLine;
  /** Where that line ended in `pending` (at its CRLF), and how much longer the new one is. */
  lineEnd: number;
  delta: number;
}

/**
 * The bytes `pending` starts with, its first request line made one llhttp
 * reads: a method outside its table replaced by a stand-in, and bytes of
 * 0x80 and above in the target percent-encoded. Null when llhttp reads the
 * line as it is (or refuses it, as nginx would).
 */
export function standInLine(pending: Buffer): StandIn | null {
  let start = 0;
  while (pending[start] === 13 || pending[start] === 10) start++;
  const end = pending.indexOf('\r\n', start, 'latin1');
  if (end < 0) return null;
  const m = LINE.exec(pending.toString('latin1', start, end));
  if (m === null) return null;
  const [, method, url, version] = m as unknown as [string, string, string, string];
  const unknown = !LLHTTP_METHODS.has(method);
  if (!unknown && !HIGH_BYTE.test(url)) return null;
  const encoded = url.replace(HIGH_BYTES, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const read = { method: unknown ? STAND_IN_METHOD : method, url: encoded };
  const line = Buffer.from(`${read.method} ${encoded} ${version}`, 'latin1');
  const bytes = Buffer.concat([pending.subarray(0, start), line, pending.subarray(end)]);
  return { bytes, sent: { method, url }, read, lineEnd: end, delta: line.length - (end - start) };
}

const HIGH_BYTE = /[\x80-\xff]/;
const HIGH_BYTES = /[\x80-\xff]/g;

const kSentLine = Symbol('gatehouse.sentLine');
type LineSocket = { [kSentLine]?: Pick<StandIn, 'sent' | 'read'> };

/** node:http will read this stand-in for the socket's next request line: the request gets its line as sent back (restoreLine). */
export function expectStandIn(socket: object, standIn: StandIn): void {
  (socket as LineSocket)[kSentLine] = { sent: standIn.sent, read: standIn.read };
}

/**
 * The request line as sent, for the request node:http read from a stand-in
 * (a no-op for any other). The stand-in is the first request node:http
 * reads on the socket; one it answered itself without a 'request' (417 for
 * an Expect it does not know) leaves no line for the next request.
 */
export function restoreLine(req: IncomingMessage): void {
  const socket = req.socket as unknown as LineSocket;
  const line = socket[kSentLine];
  if (line === undefined) return;
  socket[kSentLine] = undefined;
  if (req.method !== line.read.method || req.url !== line.read.url) return;
  req.method = line.sent.method;
  req.url = line.sent.url;
}
