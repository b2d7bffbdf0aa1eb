/**
 * The access log in Combined Log Format (what nginx and Apache write, and
 * what log analysers read):
 * `host - user [time] "request line" status bytes "referer" "user-agent"`.
 */
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { configError } from '../errors.js';
import type { IncomingMessage } from 'node:http';
import { H2Request } from '../front/h2-compat.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

let cachedSecond = 0;
let cachedStamp = '';

/** `21/Nov/2026:10:49:00 +0000`, recomputed at most once a second. */
function clfTime(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    const d = new Date(now);
    const off = -d.getTimezoneOffset();
    const abs = Math.abs(off);
    const p = (n: number) => String(n).padStart(2, '0');
    cachedStamp =
      `${p(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ` +
      `${off >= 0 ? '+' : '-'}${p(Math.floor(abs / 60))}${p(abs % 60)}`;
  }
  return cachedStamp;
}

function quote(value: string | undefined): string {
  if (!value) return '"-"';
  return '"' + value.replace(/["\\]/g, (c) => '\\' + c).replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) + '"';
}

export class AccessLog {
  private out: WriteStream | NodeJS.WriteStream;

  /** Opens the file now, so a bad path stops the server at start with the flag named. */
  constructor(
    private readonly target: string,
    private readonly onError: (err: Error) => void,
  ) {
    this.out = target === '-' ? process.stdout : this.open();
  }

  private open(): WriteStream {
    let fd: number;
    try {
      fd = openSync(this.target, 'a');
    } catch (err) {
      throw configError('--access-log', this.target, `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const out = createWriteStream('', { fd });
    out.on('error', this.onError);
    return out;
  }

  /** Opens the file again by name (logrotate moved the old one away); lines already buffered go to the old file. */
  reopen(): void {
    if (this.out === process.stdout) return;
    const old = this.out as WriteStream;
    try {
      this.out = this.open();
      old.end();
    } catch (err) {
      this.onError(err as Error);
    }
  }

  write(req: IncomingMessage, status: number, bytes: number): void {
    let remote = (req instanceof H2Request ? req.peerAddress : req.socket.remoteAddress) ?? '-';
    if (remote.startsWith('::ffff:')) remote = remote.slice(7);
    const line = `${req.method} ${req.url} HTTP/${req.httpVersion}`;
    this.out.write(
      `${remote} - - [${clfTime(Date.now())}] ${quote(line)} ${status} ${bytes > 0 ? bytes : '-'} ` +
        `${quote(req.headers.referer)} ${quote(req.headers['user-agent'])}\n`,
    );
  }

  close(): Promise<void> {
    if (this.out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => (this.out as WriteStream).end(resolve));
  }
}
