/**
 * Sending the same bytes to gatehouse and to a reference, over real sockets
 * (test/request-head-fuzz.test.ts, test/request-head-fixtures.test.ts).
 *
 * The reference is a plain node:http server in the test process (llhttp,
 * max header size 16k as gatehouse's default, node's own answers to what
 * llhttp refuses, but 414 where gatehouse answers it: a head that overflows
 * while its target is read, src/front/uri-too-long.ts). It is sent
 * head-stand-ins.ts's stand-in lines where gatehouse reads or makes one, and
 * gives those requests the lines as sent back (as
 * src/front/stand-in-line.ts's restoreLine). What it parses goes
 * through head-view.ts's refusalOf and viewOf — what gatehouse does with
 * a request once read — and comes back as test/apps/echo_head.py's answer
 * does: 200 with the view in X-Echo.
 *
 * An exchange writes the bytes at once and reads answers (status and X-Echo
 * of each; bodies are not needed) until it is settled: the server closed the
 * connection, or gatehouse answered 408 (header timeout), or nothing more
 * came for a short quiet time. Gatehouse's side waits at least for as many
 * answers as the reference gave, and for the close when the reference
 * closed, so a slow Python worker is never taken for a missing answer.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { clientErrorStatus, URI_TOO_LONG } from '../../src/front/client-errors.js';
import type { SentLine } from '../../src/front/stand-in-line.js';
import { overflowedInTarget, readByHttp, type ParserError } from '../../src/front/uri-too-long.js';
import type { Answer, AppView, Outcome, Parsed } from './head-outcome.js';
import { refusalOf, viewOf } from './head-view.js';

/** What the reference read on one connection, and the answers it decided to give, request by request. */
export interface ReferenceRecord {
  parsed: Parsed[];
  /**
   * Its answers in request order, whether or not node:http got to write
   * them (an interim 100 before the answer it precedes); null while a body
   * is still arriving.
   */
  decided: Array<Answer | null>;
}

export interface Reference {
  port: number;
  /** What node:http read and decided on the connection from client port `port` (forgotten once taken). */
  take(port: number): ReferenceRecord;
  /** The requests (by their place) on the connection from client port `port` whose lines it reads as stand-ins, each with its line as sent. */
  standIns(port: number, sent: Map<number, SentLine>): void;
  /**
   * Whether the reference has done all it will do on that connection until
   * the client sends more: it read the `sent` bytes, every request it read
   * whole is answered (its response flushed), and the client has seen `seen`
   * of those answers.
   */
  idle(port: number, sent: number, seen: number): boolean;
  close(): Promise<void>;
}

/** One connection to the reference. */
interface Conn extends ReferenceRecord {
  socket: Socket;
  exchanges: Array<{ req: IncomingMessage; res: ServerResponse }>;
}

export async function startReference(maxHeaderSize = 16 * 1024): Promise<Reference> {
  /** By the client's port. */
  const conns = new Map<number, Conn>();
  const connOf = (req: IncomingMessage): Conn | undefined => conns.get(req.socket.remotePort ?? 0);
  /** By the client's port: lines as sent, by the request's place on the connection. */
  const sentLines = new Map<number, Map<number, SentLine>>();
  const parsedOf = (req: IncomingMessage): Parsed => {
    const sent = sentLines.get(req.socket.remotePort ?? 0)?.get(connOf(req)?.parsed.length ?? -1);
    if (sent !== undefined) {
      req.method = sent.method;
      req.url = sent.url;
    }
    return { method: req.method!, url: req.url!, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders };
  };
  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
    const p = parsedOf(req);
    const conn = connOf(req);
    conn?.parsed.push(p);
    conn?.exchanges.push({ req, res });
    const decide = (a: Answer) => conn?.decided.push(a);
    const refusal = refusalOf(p);
    const refuse = (status: number) => {
      decide({ status });
      res.writeHead(status, { 'Content-Length': 0, Connection: 'close' });
      res.end();
    };
    if (refusal?.beforeContinue) return refuse(refusal.status);
    if (expectsContinue) {
      decide({ status: 100 });
      res.writeContinue();
    }
    if (refusal !== null) return refuse(refusal.status);
    // Its place in the order is taken now; the answer is known once the body is in.
    const at = conn?.decided.push(null);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      const view = viewOf(p, Buffer.concat(chunks));
      if (conn !== undefined && at !== undefined) conn.decided[at - 1] = { status: 200, view };
      const echo = Buffer.from(JSON.stringify(view)).toString('base64');
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': 0, 'X-Echo': echo });
      res.end();
    });
  };
  // As gatehouse's listener (listener.ts, http-front.ts), with the header timeout left long.
  const server: Server = createServer({ maxHeaderSize, requestTimeout: 0, keepAliveTimeout: 5000 }, (req, res) => handle(req, res, false));
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  // What node:http does with an Expect it does not know when nothing listens (gatehouse does not), recorded.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const conn = connOf(req);
    conn?.parsed.push(parsedOf(req));
    conn?.exchanges.push({ req, res });
    conn?.decided.push({ status: 417 });
    res.writeHead(417);
    res.end();
  });
  server.on('connect', (req: IncomingMessage, socket) => {
    const conn = connOf(req);
    conn?.parsed.push(parsedOf(req));
    conn?.decided.push({ status: 405 });
    // node:http takes its error listener away with the socket; answers to requests before the CONNECT
    // that are still to be written then write after this end (a harmless error, not to go uncaught).
    socket.on('error', () => {});
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  // node:http's own answer to a request llhttp refuses (lib/_http_server.js's socketOnError), but 414 for a target too long.
  server.on('clientError', (err: ParserError, socket: Socket & { _httpMessage?: { _headerSent: boolean } | null }) => {
    const code = err.code === 'HPE_HEADER_OVERFLOW' && overflowedInTarget(socket, err) ? URI_TOO_LONG : err.code;
    const status = clientErrorStatus(code);
    if (socket.writable && (!socket._httpMessage || !socket._httpMessage._headerSent)) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    socket.destroy(err);
  });
  server.on('connection', (socket: Socket) => {
    readByHttp(socket);
    const port = socket.remotePort ?? 0;
    // A new connection from a port used before starts afresh.
    conns.set(port, { socket, parsed: [], decided: [], exchanges: [] });
    // Kept a while after the close, for take(); the timer does not keep the process alive.
    socket.once('close', () => setTimeout(() => {
      if (conns.get(port)?.socket === socket) conns.delete(port);
    }, 10_000).unref());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    idle: (port, sent, seen) => {
      const conn = conns.get(port);
      // Not yet accepted; or closed, which the client is about to see.
      if (conn === undefined || conn.socket.destroyed) return false;
      // A request still receiving its body waits for the client; one read whole must have its answer out.
      const answered = conn.exchanges.filter((x) => x.res.writableFinished).length;
      return conn.socket.bytesRead >= sent && conn.exchanges.every((x) => !x.req.complete || x.res.writableFinished) && seen >= answered;
    },
    standIns: (port, sent) => void (sent.size > 0 && sentLines.set(port, sent)),
    take: (port) => {
      const conn = conns.get(port);
      conns.delete(port);
      sentLines.delete(port);
      return { parsed: conn?.parsed ?? [], decided: conn?.decided ?? [] };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One response head as read off the wire. */
interface RawAnswer {
  status: number;
  close: boolean;
  echo: AppView | undefined;
}

const STATUS_LINE = /HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/g;

/** Every response head in `text` (a status line at the start or after a line end, then headers up to an empty line). */
function answersIn(text: string): RawAnswer[] {
  const out: RawAnswer[] = [];
  STATUS_LINE.lastIndex = 0;
  for (let m = STATUS_LINE.exec(text); m !== null; m = STATUS_LINE.exec(text)) {
    if (m.index > 0 && text[m.index - 1] !== '\n') continue;
    const end = text.indexOf('\r\n\r\n', m.index);
    if (end < 0) break;
    const lines = text.slice(m.index + m[0].length, end + 2).split('\r\n');
    let close = false;
    let echo: AppView | undefined;
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'connection' && /close/i.test(value)) close = true;
      if (name === 'x-echo') echo = JSON.parse(Buffer.from(value, 'base64').toString()) as AppView;
    }
    out.push({ status: Number(m[1]), close, echo });
    STATUS_LINE.lastIndex = end + 4;
  }
  return out;
}

export interface ExchangeOptions {
  /** Done once this many answers came (and `quietMs` passed with nothing more); gatehouse's side waits for the reference's count, Infinity until it is known. */
  atLeast?: () => number;
  /** Nothing more for this long: settled. */
  quietMs?: number;
  /** Give up waiting (the outcome is what came so far, the connection 'open'). */
  capMs?: number;
  /** 408 is gatehouse's header timeout (the reference's is long): the end, not an answer. */
  timeout408?: boolean;
  /** Not settled until the server closes the connection (or capMs): the reference closed it. */
  untilClosed?: () => boolean;
  /** Not settled until this says so (the reference's own view of the connection, from the client's port, the bytes sent and the final answers seen). */
  ready?: (clientPort: number, sent: number, seen: number) => boolean;
  /** Called with the client's port once connected, before anything is sent. */
  connected?: (clientPort: number) => void;
}

/** Pieces of a request sent apart wait this long between them (ms). */
const PIECE_GAP = 5;

/** Writes `bytes` (or its pieces, PIECE_GAP ms apart) on a new connection to `port` and reads the outcome; `port` in it is the client's. */
export function exchange(port: number, bytes: Buffer | Buffer[], opts: ExchangeOptions = {}): Promise<Outcome & { port: number }> {
  const pieces = Array.isArray(bytes) ? bytes : [bytes];
  const { atLeast = () => 0, quietMs = 30, capMs = 5000, timeout408 = false, untilClosed = () => false, ready = () => true, connected } = opts;
  const total = pieces.reduce((n, p) => n + p.length, 0);
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let clientPort = 0;
    const chunks: Buffer[] = [];
    let closed = false;
    let finished = false;
    let writing = true;
    let quiet: NodeJS.Timeout | undefined;
    let activity = 0;
    const outcome = (): { answers: RawAnswer[]; end: Outcome['end']; settled: boolean } => {
      const raw = answersIn(Buffer.concat(chunks).toString('latin1'));
      if (timeout408 && raw.length > 0 && raw[raw.length - 1]!.status === 408 && raw[raw.length - 1]!.echo === undefined) {
        return { answers: raw.slice(0, -1), end: 'timeout', settled: true };
      }
      const last = raw[raw.length - 1];
      const final = raw.filter((a) => a.status >= 200).length;
      // An answer saying Connection: close: settled only once the close is seen.
      const settled = closed || (raw.length >= atLeast() && !(last?.close ?? false) && !untilClosed() && ready(clientPort, total, final));
      return { answers: raw, end: closed ? 'closed' : 'open', settled };
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      socket.destroy();
      const o = outcome();
      resolve({ answers: o.answers.map((a): Answer => (a.echo === undefined ? { status: a.status } : { status: a.status, view: a.echo })), end: o.end, port: clientPort });
    };
    // Quiet means no bytes for quietMs, and none pending behind a timer that fired late (two setImmediate: a poll phase each).
    const arm = () => {
      clearTimeout(quiet);
      const seen = activity;
      quiet = setTimeout(() => setImmediate(() => setImmediate(() => {
        if (activity === seen && !writing && outcome().settled) finish();
        else if (!finished) arm();
      })), quietMs);
    };
    const cap = setTimeout(finish, capMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      activity++;
      const o = outcome();
      if (o.end === 'timeout' || closed) return finish();
      arm();
    });
    const onClose = () => {
      closed = true;
      activity++;
      finish();
    };
    socket.on('end', onClose);
    socket.on('close', onClose);
    socket.on('error', () => {});
    socket.on('connect', () => {
      clientPort = socket.localPort ?? 0;
      connected?.(clientPort);
      const next = (i: number) => {
        if (finished) return;
        socket.write(pieces[i]!);
        if (i + 1 < pieces.length) return void setTimeout(() => next(i + 1), PIECE_GAP);
        writing = false;
        arm();
      };
      next(0);
    });
  });
}
