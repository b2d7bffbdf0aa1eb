/**
 * Where a log's lines go: a file opened for appending, which SIGUSR1 opens
 * again by name (logrotate moved the old one away), or '-': the standard
 * stream given. The file is opened at once, so a bad path stops the server
 * at start with its flag named.
 *
 * The access log writes through a stream (a line per request, in batches);
 * the error log, `sync`, writes each line at once, so that none is lost when
 * the process exits right after it (the last lines of a stop, of a crash).
 */
import { closeSync, createWriteStream, openSync, writeSync, type WriteStream } from 'node:fs';
import { configError } from '../errors.js';

export class LogFile {
  private out: WriteStream | NodeJS.WriteStream | number;

  constructor(
    private readonly target: string,
    /** The flag that named it, for the error at start. */
    private readonly flag: string,
    /** '-' means this stream. */
    private readonly std: NodeJS.WriteStream,
    /** A write or a reopen failed (a full disk, the directory gone). */
    private readonly onError: (err: Error) => void,
    private readonly sync = false,
  ) {
    this.out = target === '-' ? std : this.open();
  }

  write(line: string): void {
    if (typeof this.out !== 'number') {
      this.out.write(line);
      return;
    }
    try {
      writeSync(this.out, line);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Opens the file again by name; lines already buffered go to the old file. */
  reopen(): void {
    if (this.out === this.std) return;
    const old = this.out;
    try {
      this.out = this.open();
    } catch (err) {
      return this.onError(err as Error);
    }
    if (typeof old === 'number') closeSync(old);
    else old.end();
  }

  close(): Promise<void> {
    const out = this.out;
    if (out === this.std) return Promise.resolve();
    if (typeof out === 'number') return Promise.resolve(closeSync(out));
    return new Promise((resolve) => (out as WriteStream).end(resolve));
  }

  private open(): WriteStream | number {
    let fd: number;
    try {
      fd = openSync(this.target, 'a');
    } catch (err) {
      throw configError(this.flag, this.target, `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (this.sync) return fd;
    const out = createWriteStream('', { fd });
    out.on('error', this.onError);
    return out;
  }
}
