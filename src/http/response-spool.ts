/**
 * Response bytes a slow client cannot take yet. Past the in-memory buffer
 * they go to an unlinked temp file (nginx's proxy_temp), so the worker's
 * stream is never paused for one client: the other requests on that worker
 * go on, and memory per response stays bounded.
 *
 * Writes and reads are synchronous: they hit the page cache, only slow
 * clients of large responses take this path, and keeping the order of
 * appends and reads trivial is worth a few microseconds.
 *
 * A temp file that cannot be made or written (a full disk, TMPDIR gone)
 * fails nothing: what it could not take waits in memory, after what it
 * holds, and `failed` tells the caller to hold its source back until the
 * client has taken it (as with no temp file at all).
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

const READ_BLOCK = 64 * 1024;

/** Where a response's bytes are written: the response itself, or the encoder in front of it. */
export interface ByteSink {
  write(chunk: Buffer): boolean;
  end(): unknown;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  on(event: 'drain', listener: () => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

export class ResponseSpool {
  private fd = -1;
  private written = 0;
  private sent = 0;
  private closed = false;
  /** The file takes writes (until one fails: it is still read for what it holds). */
  private writable = true;
  /** What the temp file could not take, in order, and its size. */
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(
    private readonly res: ByteSink,
    /** Called each time everything spooled has been handed to the response. */
    private readonly onEmpty: () => void,
    /** The temp file failed (the first time): for the error log. */
    private readonly onFailed: (err: Error) => void,
  ) {
    const path = join(tmpdir(), `gatehouse-response-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      this.fd = openSync(path, 'w+', 0o600);
      unlinkSync(path); // nothing is left behind, whatever happens to this process
    } catch (err) {
      this.fail(err as Error);
    }
    res.on('drain', this.pump);
  }

  /** Nothing spooled is waiting to be sent. */
  get empty(): boolean {
    return this.sent === this.written && this.heldBytes === 0;
  }

  /** Bytes spooled and not sent yet. */
  get pending(): number {
    return this.written - this.sent + this.heldBytes;
  }

  /** The temp file failed: what comes waits in memory, and the caller's source should wait for the client. */
  get failed(): boolean {
    return !this.writable;
  }

  write(chunk: Buffer): void {
    if (this.writable) {
      try {
        writeSync(this.fd, chunk, 0, chunk.length, this.written);
        this.written += chunk.length;
      } catch (err) {
        this.fail(err as Error);
      }
    }
    if (!this.writable) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
    }
    if (!this.res.writableNeedDrain) this.pump();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.res.off('drain', this.pump);
    if (this.fd >= 0) closeSync(this.fd);
  }

  private fail(err: Error): void {
    // A write that failed part-way wrote nothing that counts: the file's bytes up to `written` stay good.
    this.writable = false;
    this.onFailed(err);
  }

  private readonly pump = (): void => {
    while (!this.closed && this.sent < this.written) {
      const block = Buffer.allocUnsafe(Math.min(READ_BLOCK, this.written - this.sent));
      this.sent += readSync(this.fd, block, 0, block.length, this.sent);
      if (!this.res.write(block)) return; // the next 'drain' goes on
    }
    while (!this.closed && this.held.length > 0) {
      const chunk = this.held.shift()!;
      this.heldBytes -= chunk.length;
      if (!this.res.write(chunk)) return;
    }
    if (this.closed) return;
    // All sent: the file is written from its start again, so it never holds more than what waits at once.
    this.written = this.sent = 0;
    this.onEmpty();
  };
}

/** Readable.pipe for a destination that need not be a stream (a response): the source waits while the destination is full. */
export function pipeInto(src: Readable, dest: ByteSink, endDest: boolean): void {
  let waiting = false;
  const resume = () => {
    waiting = false;
    src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    if (dest.write(chunk) || waiting) return;
    waiting = true;
    src.pause();
    dest.once('drain', resume);
  });
  if (endDest) src.once('end', () => dest.end());
}
