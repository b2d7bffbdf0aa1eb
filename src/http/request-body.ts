/**
 * Reads a request body completely before any worker sees it, so a slow
 * client costs the front a buffer, never a Python process. Small bodies stay
 * in memory; past SPILL_BYTES the body goes to a temp file the worker opens.
 * A body that stops arriving for `idleMs` ends as a timeout (nginx's
 * client_body_timeout: the clock restarts with each piece of data).
 */
import { createWriteStream, fchown, unlink, type WriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import type { HttpResponse, RequestInfo, RouteRequest } from './handler.js';
import type { Logger } from '../log/logger.js';
import { refuse } from './plain-response.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Bodies up to this size travel inline in the request frame. */
export const SPILL_BYTES = 256 * 1024;

export type BodyResult =
  | { kind: 'ok'; length: number; data: Buffer | null; file: string | null }
  | { kind: 'too-large' }
  | { kind: 'timeout' }
  | { kind: 'error'; error: Error }
  /** The temp file could not be written (a full disk, TMPDIR not writable): the server's fault, not the client's. */
  | { kind: 'spool-failed'; error: Error };

export type ReadBody = Extract<BodyResult, { kind: 'ok' }>;

/**
 * The error a body stream ends in when its framing breaks off mid-way (a bad
 * chunk): the request is refused with `status` (400, or 413 for chunk
 * extensions past llhttp's limit), as nginx answers "client sent invalid
 * chunked body".
 */
export type BodyFault = Error & { status: number };

/**
 * Tells whoever reads `body` that its framing broke off (they refuse the
 * request in its turn); false when nobody reads it. Not destroy(): an
 * IncomingMessage destroyed mid-body destroys its socket, and the answers
 * before this one with it.
 */
export function faultBody(body: Readable, fault: BodyFault): boolean {
  return body.listenerCount('error') > 0 && body.emit('error', fault);
}

/** The status `error` refuses its request with when it is a BodyFault; undefined for any other error. */
export function faultStatus(error: Error): number | undefined {
  return (error as Partial<BodyFault>).status;
}

/**
 * A route's request body read whole for its action, or the request refused
 * as nginx would: 413 past max_request_body, 408 when the body stops
 * arriving, 400 when it breaks off, the fault's status when its framing is
 * faulty (logged at debug level). `done` runs only
 * once the body is in.
 */
export function readRouteBody(
  r: RouteRequest<RequestInfo, HttpResponse>,
  body: Readable,
  owner: { uid?: number; gid?: number },
  idleMs: number,
  logger: Logger,
  done: (body: ReadBody) => void,
): void {
  readBody(body, r.maxRequestBody, owner, idleMs, (result) => {
    if (result.kind === 'ok') return done(result);
    if (result.kind === 'too-large') return refuse(r, 413);
    if (result.kind === 'timeout') return refuse(r, 408);
    if (result.kind === 'spool-failed') {
      // nginx answers 500 too when client_body_temp_path cannot be written.
      logger.error(`${r.req.method} ${r.req.url}: cannot keep its request body in a temp file in ${tmpdir()} (TMPDIR): ${result.error.message} (500)`);
      return refuse(r, 500);
    }
    logger.debug(`reading the body of ${r.req.method} ${r.req.url} failed: ${result.error.message}`);
    if (r.res.headersSent) return;
    // A client gone mid-body is told nothing, but its request is logged as nginx logs it.
    if (r.res.destroyed) return r.log(400, 0);
    refuse(r, faultStatus(result.error) ?? 400);
  });
}

export function discardBodyFile(file: string | null): void {
  if (file !== null) unlink(file, () => {});
}

export function readBody(
  req: Readable,
  limit: number,
  owner: { uid?: number; gid?: number },
  idleMs: number,
  done: (result: BodyResult) => void,
): void {
  const chunks: Buffer[] = [];
  let length = 0;
  let file: string | null = null;
  let out: WriteStream | null = null;
  let finished = false;
  let idle: NodeJS.Timeout | undefined;
  /** (Re)starts the idle clock; not while the front itself holds the client back (disk backpressure). */
  const arm = () => {
    if (idleMs <= 0 || finished) return;
    clearTimeout(idle);
    idle = setTimeout(() => finish({ kind: 'timeout' }), idleMs);
  };

  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(idle);
    req.removeListener('data', onData);
    if (result.kind !== 'ok') {
      const spilled = file;
      // The temp file may still be opening: remove it once the stream has let go of it.
      if (out !== null) out.once('close', () => discardBodyFile(spilled)).destroy();
      else discardBodyFile(spilled);
    }
    done(result);
  };

  const onData = (chunk: Buffer) => {
    arm();
    length += chunk.length;
    if (length > limit) {
      finish({ kind: 'too-large' });
      return;
    }
    if (out !== null) {
      if (!out.write(chunk)) {
        req.pause();
        clearTimeout(idle);
        out.once('drain', () => {
          req.resume();
          arm();
        });
      }
      return;
    }
    chunks.push(chunk);
    if (length > SPILL_BYTES) {
      file = join(tmpdir(), `gatehouse-body-${process.pid}-${randomBytes(6).toString('hex')}`);
      out = createWriteStream(file, { mode: 0o600 });
      out.on('error', (error) => finish({ kind: 'spool-failed', error }));
      if (owner.uid !== undefined || owner.gid !== undefined) {
        out.once('open', (fd) => fchown(fd, owner.uid ?? -1, owner.gid ?? -1, (err) => err && finish({ kind: 'spool-failed', error: err })));
      }
      for (const c of chunks.splice(0)) out.write(c);
    }
  };

  arm();
  req.on('data', onData);
  req.on('error', (error) => finish({ kind: 'error', error }));
  // An HTTP/2 stream reset mid-body ends the request as if it were complete: it must not reach the app.
  req.on('aborted', () => finish({ kind: 'error', error: new Error('the client aborted the request') }));
  req.on('end', () => {
    if (out === null) {
      const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      finish({ kind: 'ok', length, data, file: null });
    } else {
      out.end(() => finish({ kind: 'ok', length, data: null, file }));
    }
  });
}

/** An HTTP/2 request whose body has no Content-Length: its stream did not end with the headers. */
export function hasUnsizedH2Body(req: RequestInfo): boolean {
  return req.httpVersionMajor === 2 && (req as { stream?: { endAfterHeaders: boolean } }).stream?.endAfterHeaders === false;
}

/**
 * A body streamed to its action as it comes (no Content-Length: chunked, or
 * HTTP/2), cut at `limit` bytes: `refuse(413)` runs when a byte past it
 * arrives, then the stream ends in an error (the front checks declared
 * lengths); `refuse(400)` (or the fault's status) when its framing breaks off.
 */
export function capBody(body: Readable, limit: number, refuse: (status: number) => void): Readable {
  let length = 0;
  const capped = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      length += chunk.length;
      if (length <= limit) return callback(null, chunk);
      refuse(413);
      callback(new Error('the request body is over max_request_body'));
    },
  });
  body.once('error', (err) => {
    const status = faultStatus(err);
    if (status !== undefined) refuse(status);
    capped.destroy(err);
  });
  return body.pipe(capped);
}
