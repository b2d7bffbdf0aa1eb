/**
 * Reads a request body completely before any worker sees it, so a slow
 * client costs the front a buffer, never a Python process. Small bodies stay
 * in memory; past SPILL_BYTES the body goes to a temp file the worker opens.
 */
import { createWriteStream, fchown, unlink, type WriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Bodies up to this size travel inline in the request frame. */
export const SPILL_BYTES = 256 * 1024;

export type BodyResult =
  | { kind: 'ok'; length: number; data: Buffer | null; file: string | null }
  | { kind: 'too-large' }
  | { kind: 'error'; error: Error };

export function discardBodyFile(file: string | null): void {
  if (file !== null) unlink(file, () => {});
}

export function readBody(
  req: IncomingMessage,
  limit: number,
  owner: { uid?: number; gid?: number },
  done: (result: BodyResult) => void,
): void {
  const chunks: Buffer[] = [];
  let length = 0;
  let file: string | null = null;
  let out: WriteStream | null = null;
  let finished = false;

  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    req.removeListener('data', onData);
    if (result.kind !== 'ok') {
      out?.destroy();
      discardBodyFile(file);
    }
    done(result);
  };

  const onData = (chunk: Buffer) => {
    length += chunk.length;
    if (length > limit) {
      finish({ kind: 'too-large' });
      return;
    }
    if (out !== null) {
      if (!out.write(chunk)) {
        req.pause();
        out.once('drain', () => req.resume());
      }
      return;
    }
    chunks.push(chunk);
    if (length > SPILL_BYTES) {
      file = join(tmpdir(), `gatehouse-body-${process.pid}-${randomBytes(6).toString('hex')}`);
      out = createWriteStream(file, { mode: 0o600 });
      out.on('error', (error) => finish({ kind: 'error', error }));
      if (owner.uid !== undefined || owner.gid !== undefined) {
        out.once('open', (fd) => fchown(fd, owner.uid ?? -1, owner.gid ?? -1, (err) => err && finish({ kind: 'error', error: err })));
      }
      for (const c of chunks.splice(0)) out.write(c);
    }
  };

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
