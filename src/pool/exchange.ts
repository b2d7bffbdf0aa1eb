/**
 * What the pool needs from a request travelling through it. The front
 * implements it (src/front/wsgi-exchange.ts); tests can implement it to drive
 * a pool without HTTP.
 */
import type { FileSpec } from '../wire/frames.js';
import type { WorkerProcess } from './worker-process.js';

export interface Exchange {
  /** The REQ frame, built once by the front; the pool writes the request id into it. */
  readonly frame: Buffer;
  /** The request id the pool gave it (also in its frame), while a worker holds it. */
  id: number;
  /** "GET /path", for log lines about this request. */
  readonly label: string;
  /** The worker holding this request, while one does. */
  worker: WorkerProcess | null;
  /** When it entered the pool's queue (ms, performance.now()). */
  queuedAt: number;
  /** When it was sent to its worker (ms, performance.now()). */
  sentAt: number;
  /** Running it twice does no more than running it once (RFC 9110 §9.2.2: not POST, PATCH, CONNECT or a method unknown). */
  readonly idempotent: boolean;
  /** For an app with `sticky`: its client's affinity (worker-slots.ts), which picks its worker. */
  affinity?: number;

  /** The whole response at once: a RESPONSE frame's payload, as decodeResponse() and responseHeadEnd() (wire/frames.ts) read it. */
  response(payload: Buffer): void;
  /** The status and headers of a streamed response; `trailers`: trailer fields come after its body. */
  start(head: string[], trailers?: boolean): void;
  /** Trailer fields, sent after the body (before end()). */
  trailers?(fields: Array<[string, string]>): void;
  /** A body chunk; the exchange holds what a slow client cannot take yet (the worker is never paused). */
  body(chunk: Buffer): void;
  /** Stream a region of a file; the worker's END follows and must wait for it. */
  file(spec: FileSpec): void;
  end(): void;
  /** The app failed after the head went out: the client must see a truncated response. */
  abort(): void;
  /** The pool could not get an answer: 502 worker died, 503 queue full or timed out, 504 timeout. */
  fail(status: 502 | 503 | 504, reason: string): void;
  /** Present on an exchange whose body follows its REQ (REQ_STREAM): the REQ is now on its way to `worker`. */
  sent?(): void;
  /**
   * Present on an exchange that can switch protocols (an ASGI WebSocket): the
   * worker's frames of that protocol (WS_ACCEPT, WS_TEXT...). Its END comes
   * when the app is done with it. A streamed request body gets WS_PAUSE and
   * WS_RESUME here.
   */
  relayed?(type: number, payload: Buffer): void;
  /** The worker is leaving (reload, stop): a long-lived exchange (an open WebSocket) ends now, cleanly. */
  shutdown?(): void;
}
