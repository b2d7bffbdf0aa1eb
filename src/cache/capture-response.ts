/**
 * The response a cached route's inner handler writes to: it records status,
 * headers and body (for the store) while passing them on to the client's
 * response, or holds them back from the client when the cache will answer
 * from what it recorded instead (a 304 to a revalidation, an origin error
 * while a stale copy may be served). With no client at all (a background
 * refresh) it only records.
 */
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import type { AccelRedirect } from '../http/accel-redirect.js';
import type { HttpResponse, Reroute } from '../http/handler.js';

/** Response headers as the store keeps them: lower-case names. */
export type HeaderMap = Record<string, string | string[]>;

export interface Captured {
  status: number;
  headers: HeaderMap;
  /** Null when the body outgrew the capture's limit, or was held back and not kept. */
  body: Buffer | null;
  /** Held back from the client: the cache answers it. */
  held: boolean;
  /** The origin's X-Accel-Expires (cache-policy.ts), if it sent one. */
  accelExpires: string | undefined;
}

export interface CaptureHooks {
  /**
   * At the head: `hold` keeps the response from the client (the cache
   * answers it once the capture ends); else it goes on with `cacheStatus`
   * as its Cache-Status.
   */
  head(status: number, headers: HeaderMap, accelExpires: string | undefined): { hold: boolean; cacheStatus: string };
  /** The response is complete; null: it was cut short (the origin failed mid-way, or the client left). */
  done(captured: Captured | null): void;
  /**
   * The origin's head had X-Accel-Redirect (src/http/accel-redirect.ts):
   * nothing was recorded, and the capture is over (done() never comes).
   * The redirected answer is the client's alone: what a route caches is
   * what its own origin answers.
   */
  rerouted(accel: AccelRedirect): void;
}

/** The reroute of a cached route's requests to its inner handler, whose `res` is their capture: the capture's hooks follow an X-Accel-Redirect. */
const rerouteCapture: Reroute = (inner, accel) => (inner.res as CaptureResponse).rerouted(accel);

/** The reroute to give the inner handler for route request `r`: none where `r` may not be rerouted (behind a web server in front). */
export const captureReroute = (r: { reroute: Reroute | null }): Reroute | null => (r.reroute === null ? null : rerouteCapture);

/** `writeHead`'s headers (a flat list or an object) as a map with lower-case names. */
export function headerMap(headers: OutgoingHttpHeaders | string[] | undefined): HeaderMap {
  const map: HeaderMap = {};
  if (headers === undefined) return map;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) addHeader(map, headers[i]!, headers[i + 1]!);
  } else {
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) addHeader(map, name, String(v));
    }
  }
  return map;
}

/**
 * The last flat header list made into a map (a copy), and its map: an
 * origin's responses mostly carry the same headers, and the same map lets
 * what is worked out from it be kept (cache-policy.ts, packed-response.ts).
 * No map is written to once made (removeHeader copies it first).
 */
let lastList: string[] | null = null;
let lastMap: HeaderMap = {};

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** headerMap(), the same map as last time for the same flat list. */
function sharedMap(headers: OutgoingHttpHeaders | string[] | undefined): HeaderMap {
  if (!Array.isArray(headers)) return headerMap(headers);
  if (lastList !== null && sameList(headers, lastList)) return lastMap;
  lastMap = headerMap(headers);
  lastList = headers.slice();
  return lastMap;
}

function addHeader(map: HeaderMap, name: string, value: string): void {
  const key = name.toLowerCase();
  const had = map[key];
  map[key] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
}

function withHeader(headers: OutgoingHttpHeaders | string[] | undefined, name: string, value: string): OutgoingHttpHeaders | string[] {
  if (headers === undefined) return [name, value];
  return Array.isArray(headers) ? [...headers, name, value] : { ...headers, [name]: value };
}

const EMPTY = Buffer.alloc(0);

/**
 * EventEmitter's methods without its constructor, which makes a table of
 * listeners for every capture: most (a miss passed on over HTTP/1.1) never
 * get a listener.
 */
function LazyEmitter(): void {}
Object.setPrototypeOf(LazyEmitter.prototype, EventEmitter.prototype);

type Listener = (...args: unknown[]) => void;

export class CaptureResponse extends (LazyEmitter as unknown as typeof EventEmitter) implements HttpResponse {
  /** EventEmitter's own fields, present from the start so that a first listener does not change the object's shape. */
  _events: object | undefined = undefined;
  _eventsCount = 0;
  private status = 0;
  private headers: HeaderMap = {};
  /** The body's chunks so far (most bodies come in one: no list for them). */
  private first: Buffer | null = null;
  private more: Buffer[] | null = null;
  private size = 0;
  private keep = true;
  private held = false;
  private started = false;
  private finished = false;
  private cut = false;
  /** The client's 'drain' is passed on (from the first listener for it here). */
  private drainPassed = false;
  /** The origin's X-Accel-Expires, as the relay read it from its head (cacheExpires(), from readAccel()). */
  private accelExpires: string | undefined = undefined;

  constructor(
    /** The client's response; null for a background refresh. */
    private readonly client: HttpResponse | null,
    /** Bodies larger than this are passed on but not kept. */
    private readonly limit: number,
    private readonly hooks: CaptureHooks,
  ) {
    super();
    client?.on('close', this.onClientClose);
  }

  /** The client's 'drain' is listened for once a writer here waits for it (once() comes through here too). */
  override on(event: string | symbol, listener: Listener): this {
    if (event === 'drain' && !this.drainPassed && this.client !== null) {
      this.drainPassed = true;
      this.client.on('drain', () => this.emit('drain'));
    }
    return super.on(event, listener);
  }

  override addListener(event: string | symbol, listener: Listener): this {
    return this.on(event, listener);
  }

  private readonly onClientClose = (): void => {
    // The client left before the answer was complete (its request is cancelled): the fetch is over.
    this.fail();
    this.emit('close');
  };

  /** The origin's answer is kept from the client (the cache answers it, and writes its access log line). */
  get holding(): boolean {
    return this.held;
  }

  private get passing(): HttpResponse | null {
    return this.held ? null : this.client;
  }

  get headersSent(): boolean {
    return this.started;
  }

  get destroyed(): boolean {
    return this.cut || (this.passing?.destroyed ?? false);
  }

  get writableLength(): number {
    return this.passing?.writableLength ?? 0;
  }

  get writableNeedDrain(): boolean {
    return this.passing?.writableNeedDrain ?? false;
  }

  get shouldKeepAlive(): boolean {
    return this.client?.shouldKeepAlive ?? false;
  }

  set shouldKeepAlive(value: boolean) {
    if (this.client !== null) this.client.shouldKeepAlive = value;
  }

  cacheExpires(value: string): void {
    this.accelExpires = value;
  }

  writeHead(status: number, reason: string, headers?: OutgoingHttpHeaders | string[]): this {
    this.status = status;
    this.headers = sharedMap(headers);
    const { hold, cacheStatus } = this.hooks.head(status, this.headers, this.accelExpires);
    this.held = hold || this.client === null;
    this.started = true;
    if (!this.held) this.client!.writeHead(status, reason, withHeader(headers, 'Cache-Status', cacheStatus));
    return this;
  }

  removeHeader(name: string): void {
    // A copy: a map made at writeHead is never written to (it may be shared, and what it gave is kept by it).
    this.headers = { ...this.headers };
    delete this.headers[name.toLowerCase()];
    this.passing?.removeHeader(name);
  }

  getHeader(name: string): number | string | string[] | undefined {
    return this.passing?.getHeader(name) ?? this.headers[name.toLowerCase()];
  }

  write(chunk: Buffer): boolean {
    this.record(chunk);
    return this.passing?.write(chunk) ?? true;
  }

  end(chunk?: Buffer): this {
    if (this.finished) return this;
    if (chunk !== undefined) this.record(chunk);
    this.finished = true;
    this.passing?.end(chunk);
    // Past the end the client's 'close' only matters to those listening here; with none, it need not be
    // listened for (the front's writer then has no 'close' to emit once the response is written).
    if (this.listenerCount('close') === 0) this.client?.removeListener('close', this.onClientClose);
    const body = !this.keep ? null : this.more !== null ? Buffer.concat(this.more) : (this.first ?? EMPTY);
    this.first = this.more = null;
    this.hooks.done({ status: this.status, headers: this.headers, body, held: this.held, accelExpires: this.accelExpires });
    return this;
  }

  destroy(): void {
    this.passing?.destroy();
    this.fail();
  }

  /** The origin asked for an internal redirect instead of answering (rerouteCapture). */
  rerouted(accel: AccelRedirect): void {
    if (this.finished) return;
    this.finished = true;
    this.client?.removeListener('close', this.onClientClose);
    this.hooks.rerouted(accel);
  }

  private fail(): void {
    if (this.finished) return;
    this.finished = true;
    this.cut = true;
    this.first = this.more = null;
    this.hooks.done(null);
  }

  private record(chunk: Buffer): void {
    if (!this.keep) return;
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.keep = false;
      this.first = this.more = null;
    } else if (this.first === null) {
      this.first = chunk;
    } else {
      (this.more ??= [this.first]).push(chunk);
    }
  }
}
