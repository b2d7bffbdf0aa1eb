/** A raw HTTP/1.x client over node:net, for tests where the exact bytes on the wire matter. */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  /** e.g. `HTTP/1.1` */
  version: string;
  status: number;
  reason: string;
  /** Header names lower-cased, in order, repeated names kept. */
  headers: Array<[string, string]>;
  /** Value of the first header with this name (any case), or undefined. */
  header(name: string): string | undefined;
  /** The body after de-chunking, if it was chunked. */
  body: Buffer;
  /** The exact bytes of the head (status line and headers, up to and including the blank line). */
  rawHead: string;
  chunked: boolean;
}

/** A TCP connection with a buffer of everything received, for byte-level HTTP tests. */
export class RawConnection {
  readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private ended = false;
  private waiters = new Set<() => void>();
  readonly connected: Promise<void>;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = connect({ port, host });
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    this.socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    this.socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    const c = new RawConnection(port, host);
    await c.connected;
    return c;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** True once the server closed (or reset) the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Everything received and not yet consumed by readResponse(). */
  get pending(): Buffer {
    return this.buf;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves when `check` is true for the received bytes, or rejects after `ms`. */
  waitForData(check: (received: Buffer, closed: boolean) => boolean, ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const run = () => {
        let ok: boolean;
        try {
          ok = check(this.buf, this.ended);
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        if (ok) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms; received so far: ${JSON.stringify(this.buf.toString('latin1'))}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(run);
      };
      this.waiters.add(run);
      run();
    });
  }

  /** Resolves when the server has closed the connection, or rejects after `ms`. */
  waitClosed(ms = 5000): Promise<void> {
    return this.waitForData((_b, closed) => closed, ms);
  }

  /**
   * Reads one complete response off the front of the buffer. `headRequest`:
   * a response to HEAD has no body. Bodies without Content-Length or chunking
   * run to the connection's close.
   */
  async readResponse(ms = 5000, opts: { headRequest?: boolean } = {}): Promise<RawResponse> {
    let parsed: { res: RawResponse; used: number } | null = null;
    await this.waitForData((b, closed) => {
      parsed = tryParseResponse(b, closed, opts.headRequest ?? false);
      if (parsed === null && closed) throw new Error(`connection closed mid-response: ${JSON.stringify(b.toString('latin1'))}`);
      return parsed !== null;
    }, ms);
    const { res, used } = parsed!;
    this.buf = this.buf.subarray(used);
    return res;
  }

  close(): void {
    this.socket.destroy();
  }
}

function tryParseResponse(b: Buffer, closed: boolean, headRequest: boolean): { res: RawResponse; used: number } | null {
  const headEnd = b.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const rawHead = b.subarray(0, headEnd + 4).toString('latin1');
  const lines = rawHead.slice(0, -4).split('\r\n');
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]!);
  if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(lines[0])}`);
  const headers: Array<[string, string]> = lines.slice(1).map((l) => {
    const c = l.indexOf(':');
    return [l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim()];
  });
  const header = (name: string) => headers.find(([n]) => n === name.toLowerCase())?.[1];
  const status = Number(m[2]);
  let pos = headEnd + 4;
  let body: Buffer;
  const te = header('transfer-encoding');
  const chunked = te !== undefined && /chunked/i.test(te);
  if (headRequest || (status >= 100 && status < 200) || status === 204 || status === 304) {
    body = Buffer.alloc(0);
  } else if (chunked) {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = b.indexOf('\r\n', pos);
      if (eol < 0) return null;
      const size = parseInt(b.subarray(pos, eol).toString('latin1').split(';')[0]!, 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size line: ${JSON.stringify(b.subarray(pos, eol).toString('latin1'))}`);
      if (size === 0) {
        // "0\r\n", optional trailer lines, then an empty line.
        const end = b.indexOf('\r\n\r\n', eol);
        if (end < 0) return null;
        pos = end + 4;
        break;
      }
      if (b.length < eol + 2 + size + 2) return null;
      parts.push(b.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (header('content-length') !== undefined) {
    const n = Number(header('content-length'));
    if (b.length < pos + n) return null;
    body = b.subarray(pos, pos + n);
    pos += n;
  } else {
    if (!closed) return null;
    body = b.subarray(pos);
    pos = b.length;
  }
  return {
    res: { version: m[1]!, status, reason: m[3]!, headers, header, body: Buffer.from(body), rawHead, chunked },
    used: pos,
  };
}
