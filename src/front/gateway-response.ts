/**
 * The answer to a request that came in over uwsgi, FastCGI or SCGI
 * (gateway-listener.ts), written straight to the front end's connection:
 * the route actions write it as any response (http/handler.ts
 * HttpResponse), and the protocol's wire frames it.
 *
 * The head is the status line and the headers as given: uwsgi and SCGI
 * answer raw HTTP (as uWSGI does; nginx reads the status line), FastCGI a
 * CGI response with `Status:`. Nothing is chunked and no Date or Connection
 * is added: the front end frames the answer to its client itself, and the
 * end of the response is the connection's end (uwsgi, SCGI) or
 * END_REQUEST (FastCGI). A whole small response is one write (the wire's).
 */
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpResponse } from '../http/handler.js';
import { flatHeader } from '../http/header-name.js';
import { flatten } from './http1-response.js';

/** Up to this size a response's pieces are joined into one write. */
export const JOIN_LIMIT = 64 * 1024;

/** How one protocol carries a response on its connection. */
export interface GatewayWire {
  readonly socket: Socket;
  /** What the head starts with, before `200 OK`: `HTTP/1.1 ` or `Status: `. */
  readonly statusPrefix: string;
  /** Sends response bytes (none: `data` empty), framed; `last`: the response ends with them. socket.write's answer. */
  send(data: Buffer[], last: boolean): boolean;
}

export class GatewayResponse extends EventEmitter implements HttpResponse {
  /** Not used: the front end decides about its client's connection. */
  shouldKeepAlive = false;
  headersSent = false;
  destroyed = false;
  finished = false;
  private head: string | null = null;
  private headers: readonly string[] = [];
  private bodiless: boolean;
  private needDrain = false;
  private closed = false;

  constructor(
    method: string,
    private readonly wire: GatewayWire,
  ) {
    super();
    this.bodiless = method === 'HEAD';
  }

  get writableLength(): number {
    return this.wire.socket.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  writeHead(status: number, reason: string, headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('the response head was already written');
    const flat = headers === undefined ? [] : Array.isArray(headers) ? (headers as string[]) : flatten(headers as OutgoingHttpHeaders);
    let head = `${this.wire.statusPrefix}${status} ${reason}\r\n`;
    for (let i = 0; i < flat.length; i += 2) head += `${flat[i]}: ${flat[i + 1]}\r\n`;
    if (status < 200 || status === 204 || status === 304) this.bodiless = true;
    this.head = head + '\r\n';
    this.headers = flat;
    this.headersSent = true;
    return this;
  }

  getHeader(name: string): string | undefined {
    return flatHeader(this.headers, name);
  }

  /** The head is made whole in writeHead: nothing is left to remove. */
  removeHeader(): void {}

  write(chunk: Buffer): boolean {
    if (this.finished || this.destroyed) return false;
    const ok = this.wire.send(this.withHead(this.bodiless ? null : chunk), false);
    if (!ok) this.needDrain = true;
    return ok;
  }

  end(chunk?: Buffer): this {
    if (this.finished || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(200, 'OK');
    this.finished = true;
    this.wire.send(this.withHead(this.bodiless ? null : (chunk ?? null)), true);
    process.nextTick(finish, this);
    return this;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.wire.socket.destroy();
  }

  /** The response is over: written, or its client gone (the listener tells). 'close', once, as node:http's. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.listenerCount('close') > 0) this.emit('close');
  }

  /** The connection drained (the listener passes its 'drain' on). */
  onDrain(): void {
    if (!this.needDrain) return;
    this.needDrain = false;
    this.emit('drain');
  }

  /** `body` with the head in front of it if the head has not gone out: one buffer when small (the wire writes it at once). */
  private withHead(body: Buffer | null): Buffer[] {
    const head = this.head;
    const empty = body === null || body.length === 0;
    if (head === null) return empty ? [] : [body!];
    this.head = null;
    if (empty) return [Buffer.from(head, 'latin1')];
    if (head.length + body!.length > JOIN_LIMIT) return [Buffer.from(head, 'latin1'), body!];
    const joined = Buffer.allocUnsafe(head.length + body!.length);
    joined.write(head, 0, 'latin1');
    body!.copy(joined, head.length);
    return [joined];
  }
}

/** As node:http's 'finish' and 'close'. */
function finish(res: GatewayResponse): void {
  res.emit('finish');
  res.close();
}
