/**
 * The error log: gunicorn's line format, `[time] [pid] [LEVEL] message`,
 * so existing log parsers and habits keep working.
 */

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `2026-11-21 10:49:00 +0000`, local time with offset, as gunicorn prints it. */
export function logTimestamp(d = new Date()): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

export class Logger {
  private threshold: number;

  constructor(
    level: LogLevel = 'info',
    /** Where the lines go: stderr, or --error-log's file (log-file.ts). */
    private readonly out: { write(line: string): unknown } = process.stderr,
    /** Starts every message, e.g. `[api] ` for one app's pool when a site has several. */
    private readonly prefix = '',
  ) {
    this.threshold = RANK[level];
  }

  /** The same log, its messages prefixed by `[name] `. */
  named(name: string): Logger {
    const child = new Logger('info', this.out, `${this.prefix}[${name}] `);
    child.threshold = this.threshold;
    return child;
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.threshold;
  }

  log(level: LogLevel, message: string, pid: number = process.pid): void {
    if (RANK[level] < this.threshold) return;
    this.out.write(`[${logTimestamp()}] [${pid}] [${level.toUpperCase()}] ${this.prefix}${message}\n`);
  }

  debug(message: string): void {
    this.log('debug', message);
  }
  info(message: string): void {
    this.log('info', message);
  }
  warning(message: string): void {
    this.log('warning', message);
  }
  error(message: string): void {
    this.log('error', message);
  }
}
