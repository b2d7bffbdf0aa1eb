/**
 * Header lines every response the front writes itself carries (memory
 * answers, http1-response.ts), as node:http writes them.
 */

/** The Connection (and Keep-Alive) header lines node:http writes on a response, `close` or not. */
export function connectionLines(close: boolean, keepAliveTimeout: number): string {
  if (close) return 'Connection: close\r\n';
  // The timeout is the server's own setting: the lines are made once, not for each response.
  if (keepAliveTimeout !== linesTimeout) {
    linesTimeout = keepAliveTimeout;
    keepAliveText = `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveTimeout}\r\n`;
  }
  return keepAliveText;
}

let linesTimeout = -1;
let keepAliveText = '';

/** The Date header's value, made once a second (node:http caches it the same way). */
let dateSecond = -1;
let dateText = '';

export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** The Date line (`Date: ...` and CRLF) as bytes, made once a second: a response's head copies it. */
let lineSecond = -1;
let dateBytes = Buffer.alloc(0);

export function dateLine(): Buffer {
  const date = httpDate();
  if (dateSecond !== lineSecond) {
    lineSecond = dateSecond;
    dateBytes = Buffer.from(`Date: ${date}\r\n`, 'latin1');
  }
  return dateBytes;
}

/** connectionLines() as bytes. */
const CLOSE_LINE = Buffer.from(connectionLines(true, 0), 'latin1');
let bytesTimeout = -1;
let keepAliveBytes = CLOSE_LINE;

export function connectionBytes(close: boolean, keepAliveTimeout: number): Buffer {
  if (close) return CLOSE_LINE;
  if (keepAliveTimeout !== bytesTimeout) {
    bytesTimeout = keepAliveTimeout;
    keepAliveBytes = Buffer.from(connectionLines(false, keepAliveTimeout), 'latin1');
  }
  return keepAliveBytes;
}
