/**
 * The access log: one line per request, in the format access_log_format
 * names (see access-log-format.ts), to a file that SIGUSR1 reopens or to
 * stdout.
 */
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { configError } from '../errors.js';
import { accessLogFormat, type AccessEntry, type LoggedRequest, type LoggedResponse } from './access-log-format.js';

const kStarted = Symbol('gatehouse.requestStarted');
type TimedRequest = LoggedRequest & { [kStarted]?: number };

export class AccessLog<Req extends LoggedRequest = LoggedRequest> {
  private out: WriteStream | NodeJS.WriteStream;
  private readonly render: (e: AccessEntry) => string;

  /** Opens the file now, so a bad path stops the server at start with the flag named. */
  constructor(
    private readonly target: string,
    /** access_log_format, already validated by the schema. */
    format: string,
    private readonly onError: (err: Error) => void,
    /** The client's address as the log shows it (the front knows about trusted proxies). */
    private readonly clientOf: (req: Req) => string,
  ) {
    const compiled = accessLogFormat(format);
    if (compiled.render === undefined) throw configError('--access-log-format', format, compiled.problem!);
    this.render = compiled.render;
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

  /** Notes when a request started, for its duration (%(D)s, duration_ms). */
  begin(req: Req): void {
    (req as TimedRequest)[kStarted] = performance.now();
  }

  /** `res` gives the response headers (%({Name}o)s); `bytes` counts the body only. */
  write(req: Req, status: number, bytes: number, res?: LoggedResponse): void {
    const started = (req as TimedRequest)[kStarted];
    const durationMs = started === undefined ? 0 : performance.now() - started;
    this.out.write(this.render({ req, client: this.clientOf(req), res, status, bytes, durationMs, now: Date.now() }) + '\n');
  }

  close(): Promise<void> {
    if (this.out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => (this.out as WriteStream).end(resolve));
  }
}
