/**
 * The `fastcgi` action's wire (php-fpm and any FastCGI responder): one
 * request per connection at a time (request id 1, as nginx), BEGIN_REQUEST
 * with FCGI_KEEP_CONN when connections are kept, the CGI variables as
 * PARAMS, the body as STDIN; STDOUT is the CGI response, each STDERR line
 * goes to the error log naming the upstream, END_REQUEST ends it (a
 * protocol status other than REQUEST_COMPLETE is a 502).
 */
import type { Logger } from '../log/logger.js';
import type { Pairs } from './cgi-params.js';
import {
  decodeEndRequest,
  encodeRecord,
  encodeRequest,
  encodeStream,
  FCGI,
  FCGI_CANT_MPX_CONN,
  FCGI_OVERLOADED,
  FCGI_REQUEST_COMPLETE,
  RecordReader,
} from './fastcgi-records.js';
import type { BufferedBody, ExchangeWire, ResponseDecoder } from './upstream-exchange.js';
import type { SocketPool } from './socket-pool.js';

const ID = 1;
const END_STDIN = encodeRecord(FCGI.STDIN, ID);
const REFUSALS: Record<number, string> = {
  [FCGI_CANT_MPX_CONN]: 'FCGI_CANT_MPX_CONN',
  [FCGI_OVERLOADED]: 'FCGI_OVERLOADED (the application is overloaded)',
};

/** Up to this size an in-memory body is copied into the request's buffer; past it, it goes as its own records beside it. */
const JOIN_LIMIT = 64 * 1024;

/** `pairs`: the request's own (CONTENT_LENGTH is added to them). */
export function fastcgiWire(pairs: Pairs, body: BufferedBody | null, pool: SocketPool | undefined, stderr: (line: string) => void): ExchangeWire {
  const length = body?.length ?? 0;
  pairs.push(['CONTENT_LENGTH', length > 0 || body !== null ? String(length) : '']);
  const keep = pool !== undefined;
  const data = body?.data ?? null;
  const inFile = Boolean(body?.file);
  const head =
    data === null || data.length <= JOIN_LIMIT
      ? [encodeRequest(ID, keep, pairs, data, !inFile)]
      : [encodeRequest(ID, keep, pairs, null, false), ...encodeStream(FCGI.STDIN, ID, data), ...(inFile ? [] : [END_STDIN])];
  return { head, frame: (chunk) => encodeStream(FCGI.STDIN, ID, chunk), tail: [END_STDIN], decoder: () => new FastcgiDecoder(stderr), pool };
}

/** STDERR lines for the error log, as nginx writes them (trailing newlines and dots trimmed). */
export function stderrLogger(logger: Logger, upstream: string): (text: string) => void {
  return (text) => {
    for (const line of text.split('\n')) {
      const trimmed = line.replace(/[\r. ]+$/, '');
      if (trimmed !== '') logger.error(`FastCGI ${upstream} sent in stderr: ${JSON.stringify(trimmed)}`);
    }
  };
}

class FastcgiDecoder implements ResponseDecoder {
  readonly eofEnds = false;
  reusable = false;
  private readonly reader = new RecordReader();
  private ended = false;

  constructor(private readonly stderr: (text: string) => void) {}

  push(chunk: Buffer): { data: Buffer[]; ended: boolean } | string {
    const records = this.reader.push(chunk);
    if (typeof records === 'string') return records;
    const data: Buffer[] = [];
    for (const record of records) {
      if (this.ended) return 'a record after END_REQUEST';
      if (record.requestId !== ID) return `a record for request ${record.requestId}, not ${ID}`;
      if (record.type === FCGI.STDOUT) data.push(record.content);
      else if (record.type === FCGI.STDERR) this.stderr(record.content.toString('latin1'));
      else if (record.type === FCGI.END_REQUEST) {
        const end = decodeEndRequest(record.content);
        if (end === null) return 'a short END_REQUEST record';
        if (end.protocolStatus !== FCGI_REQUEST_COMPLETE) return `the application refused the request: ${REFUSALS[end.protocolStatus] ?? `protocol status ${end.protocolStatus}`}`;
        this.ended = true;
      } else return `an unexpected record of type ${record.type}`;
    }
    this.reusable = this.ended && this.reader.buffered === 0;
    return { data, ended: this.ended };
  }
}
