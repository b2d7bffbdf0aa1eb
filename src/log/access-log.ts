/**
 * The access log: one line per request, in the format access_log_format
 * names (see access-log-format.ts), to a file that SIGUSR1 reopens or to
 * stdout.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { configError } from '../errors.js';
import { LogFile } from './log-file.js';
import { accessLogFormat, type AccessEntry, type LoggedRequest, type LoggedResponse } from './access-log-format.js';

const kStarted = Symbol('gatehouse.requestStarted');
type TimedRequest = LoggedRequest & { [kStarted]?: number };

export class AccessLog<Req extends LoggedRequest = LoggedRequest> {
  private readonly out: LogFile;
  private readonly render: (e: AccessEntry) => string;
  /** The request headers the lines read. */
  private readonly headerNames: readonly string[];

  /** Opens the file now, so a bad path stops the server at start with the flag named. */
  constructor(
    target: string,
    /** access_log_format, already validated by the schema. */
    format: string,
    onError: (err: Error) => void,
    /** The client's address as the log shows it (the front knows about trusted proxies). */
    private readonly clientOf: (req: Req) => string,
  ) {
    const compiled = accessLogFormat(format);
    if (compiled.render === undefined) throw configError('--access-log-format', format, compiled.problem!);
    this.render = compiled.render;
    this.headerNames = compiled.headers ?? [];
    this.out = new LogFile(target, '--access-log', process.stdout, onError);
  }

  /** Opens the file again by name (logrotate moved the old one away). */
  reopen(): void {
    this.out.reopen();
  }

  /** Notes when a request started, for its duration (%(D)s, duration_ms). */
  begin(req: Req): void {
    (req as TimedRequest)[kStarted] = performance.now();
  }

  /** `res` gives the response headers (%({Name}o)s); `bytes` counts the body only. */
  write(req: Req, status: number, bytes: number, res?: LoggedResponse): void {
    this.line(req, this.clientOf(req), status, bytes, res);
  }

  /**
   * For a request whose line is written long after it came (an upgrade: an
   * open WebSocket's line at its close): what the line reads of the request,
   * taken now, so that the request's objects are not kept meanwhile.
   */
  kept(req: Req): (status: number, bytes: number) => void {
    const headers: IncomingHttpHeaders = {};
    for (const name of this.headerNames) if (req.headers[name] !== undefined) headers[name] = req.headers[name];
    const lean: TimedRequest = { method: req.method, url: req.url, httpVersion: req.httpVersion, headers, [kStarted]: (req as TimedRequest)[kStarted] };
    const client = this.clientOf(req);
    return (status, bytes) => this.line(lean, client, status, bytes, undefined);
  }

  private line(req: TimedRequest, client: string, status: number, bytes: number, res: LoggedResponse | undefined): void {
    const started = req[kStarted];
    const durationMs = started === undefined ? 0 : performance.now() - started;
    // The body an answer to HEAD, or a 204 or 304, may not carry was never sent, whatever the app made (nginx logs 0).
    if (req.method === 'HEAD' || status === 204 || status === 304) bytes = 0;
    this.out.write(this.render({ req, client, res, status, bytes, durationMs, now: Date.now() }) + '\n');
  }

  close(): Promise<void> {
    return this.out.close();
  }
}
