/**
 * The HTTP/1.1 front: listeners, request limits, body buffering, and handing
 * each request to the worker pool. Node's llhttp parses HTTP: keep-alive,
 * pipelining (answered in order), HTTP/1.0, chunked bodies, and 400 for
 * malformed requests or ones with both Content-Length and Transfer-Encoding.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lstatSync, unlinkSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors.js';
import type { BindAddress } from '../config/bind.js';
import { formatBind } from '../config/bind.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { encodeRequest } from '../wire/frames.js';
import { bodyEnviron, buildEnviron } from './environ.js';
import { readBody } from './request-body.js';
import type { StaticFiles } from '../handlers/static-files.js';
import { sendPlain } from './plain-response.js';
import { exchangesOf, WsgiExchange, type ExchangeContext } from './wsgi-exchange.js';

export interface FrontOptions {
  maxRequestBody: number;
  /** --static routes, checked before the app (longest prefix first). */
  statics: StaticFiles[];
  /** Spilled request bodies are handed to this user, who runs the workers. */
  bodyOwner: { uid?: number; gid?: number };
}

export class HttpFront {
  readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly ctx: ExchangeContext,
    private readonly opts: FrontOptions,
  ) {}

  /** Listens on every address; rejects with GH_ERR_BIND naming the address that failed. */
  async listen(binds: readonly BindAddress[]): Promise<string[]> {
    const bound: string[] = [];
    for (const bind of binds) {
      const server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => this.onRequest(req, res));
      server.on('checkContinue', (req, res) => this.onExpectContinue(req, res));
      server.on('connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.onConnectionClosed(socket));
      });
      // Without a listener Node drops CONNECT silently; a client deserves an answer.
      server.on('connect', (_req, socket: Duplex) => {
        socket.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      });
      this.servers.push(server);
      if (bind.kind === 'unix') removeStaleSocket(bind.path);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
          reject(new GatehouseError('GH_ERR_BIND', `cannot listen on ${formatBind(bind)}: ${why}`));
        });
        const listening = () => resolve();
        if (bind.kind === 'unix') server.listen(bind.path, listening);
        else server.listen({ host: bind.host, port: bind.port }, listening);
      });
      const addr = server.address();
      bound.push(typeof addr === 'string' || addr === null ? `unix:${addr}` : formatTcp(addr));
    }
    return bound;
  }

  /**
   * Stops accepting and closes idle keep-alive connections; requests under
   * way (still sending their body, or still receiving the response) go on
   * until `deadline` (performance.now() ms), and are answered with
   * Connection: close.
   */
  async drain(deadline: number): Promise<void> {
    this.ctx.draining = true;
    for (const s of this.servers) s.close();
    while (this.sockets.size > 0 && performance.now() < deadline) {
      // Node counts a connection idle once its response is ended, even while
      // that response is still being written to a slow client: close idle ones
      // only when nothing is still on its way out.
      const flushing = [...this.sockets].some((s) => exchangesOf(s).length > 0 || s.writableLength > 0);
      if (!flushing) for (const s of this.servers) s.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Cuts every connection at once. */
  closeAll(): void {
    for (const s of this.servers) s.closeAllConnections();
  }

  private serveStatic(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    for (const handler of this.opts.statics) {
      const rest = handler.match(path);
      if (rest === null) continue;
      handler.serve(req, res, rest, (status, bytes) => this.ctx.accessLog?.write(req, status, bytes));
      return true;
    }
    return false;
  }

  /** The client went away: stop the work still under way for it. */
  private onConnectionClosed(socket: Socket): void {
    this.sockets.delete(socket);
    for (const x of exchangesOf(socket).slice()) {
      x.clientGone();
      this.pool.cancel(x);
    }
  }

  private onExpectContinue(req: IncomingMessage, res: ServerResponse): void {
    // Refuse an oversized body before the client sends it.
    if (this.tooLarge(req, res)) return;
    res.writeContinue();
    this.onRequest(req, res);
  }

  private tooLarge(req: IncomingMessage, res: ServerResponse, declared = req.headers['content-length']): boolean {
    if (declared === undefined || Number(declared) <= this.opts.maxRequestBody) return false;
    this.reject(req, res, 413, 'Payload Too Large');
    return true;
  }

  private reject(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
    // The unread body makes the connection unusable: close it after the answer.
    const bytes = sendPlain(res, status, text, true);
    this.ctx.accessLog?.write(req, status, bytes);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.opts.statics.length > 0 && this.serveStatic(req, res)) return;
    const env = buildEnviron(req, 'http');
    if (env.block === null) return this.reject(req, res, 400, 'Bad Request');
    const block = env.block;
    const te = env.transferEncoding;
    if (env.contentLength === undefined && te === undefined) return this.dispatch(req, res, block, null, null);
    // llhttp de-chunks; any other coding would reach the app still encoded (nginx: 501 too).
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return this.reject(req, res, 501, 'Not Implemented');
    if (this.tooLarge(req, res, env.contentLength)) return;
    readBody(req, this.opts.maxRequestBody, this.opts.bodyOwner, (result) => {
      if (result.kind === 'too-large') return this.reject(req, res, 413, 'Payload Too Large');
      if (result.kind === 'error') {
        this.ctx.logger.debug(`reading the body of ${req.method} ${req.url} failed: ${result.error.message}`);
        if (!res.headersSent && !res.destroyed) this.reject(req, res, 400, 'Bad Request');
        return;
      }
      this.dispatch(req, res, block + bodyEnviron(result.length, result.file), result.data, result.file);
    });
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, block: string, body: Buffer | null, bodyFile: string | null): void {
    this.pool.dispatch(new WsgiExchange(encodeRequest(0, block, body), req, res, this.ctx, bodyFile));
  }
}

function formatTcp(addr: AddressInfo): string {
  return formatBind({ kind: 'tcp', host: addr.address, port: addr.port });
}

/** A socket file left by a previous run would make listen fail; a non-socket file is left alone. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // does not exist
  }
}
