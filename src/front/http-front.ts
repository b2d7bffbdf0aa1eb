/**
 * The HTTP/1.1 front: listeners, request limits, body buffering, and handing
 * each request to the worker pool. Node's llhttp parses HTTP: keep-alive,
 * pipelining (answered in order), HTTP/1.0, chunked bodies, and 400 for
 * malformed requests or ones with both Content-Length and Transfer-Encoding.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lstatSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../errors.js';
import type { BindAddress } from '../config/bind.js';
import { formatBind } from '../config/bind.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { encodeRequest } from '../wire/frames.js';
import { bodyEnviron, buildEnviron } from './environ.js';
import { readBody } from './request-body.js';
import { sendPlain, WsgiExchange, type ExchangeContext } from './wsgi-exchange.js';

export interface FrontOptions {
  maxRequestBody: number;
}

export class HttpFront {
  readonly servers: Server[] = [];
  /** Responses from the request's arrival until sent (or the client left). */
  private readonly active = new Set<ServerResponse>();
  /** Stopping: responses say Connection: close. */
  private draining = false;

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
    this.draining = true;
    for (const res of this.active) if (!res.headersSent) res.shouldKeepAlive = false;
    for (const s of this.servers) {
      s.close();
      s.closeIdleConnections();
    }
    while (this.active.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** Cuts every connection at once. */
  closeAll(): void {
    for (const s of this.servers) s.closeAllConnections();
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
    this.active.add(res);
    let x: WsgiExchange | null = null;
    res.once('close', () => {
      this.active.delete(res);
      if (x !== null && !x.finished) {
        x.clientGone();
        this.pool.cancel(x);
      }
    });
    if (this.draining) res.shouldKeepAlive = false;
    const env = buildEnviron(req, 'http');
    const dispatch = (block: string, data: Buffer | null, file: string | null) => {
      x = new WsgiExchange(encodeRequest(0, block, data), req, res, this.ctx, file);
      this.pool.dispatch(x);
    };
    if (env.block === null) return this.reject(req, res, 400, 'Bad Request');
    const block = env.block;
    const te = env.transferEncoding;
    if (env.contentLength === undefined && te === undefined) return dispatch(block, null, null);
    // llhttp de-chunks; any other coding would reach the app still encoded (nginx: 501 too).
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return this.reject(req, res, 501, 'Not Implemented');
    if (this.tooLarge(req, res, env.contentLength)) return;
    readBody(req, this.opts.maxRequestBody, (result) => {
      if (result.kind === 'too-large') return this.reject(req, res, 413, 'Payload Too Large');
      if (result.kind === 'error') {
        this.ctx.logger.debug(`reading the body of ${req.method} ${req.url} failed: ${result.error.message}`);
        if (!res.headersSent && !res.destroyed) this.reject(req, res, 400, 'Bad Request');
        return;
      }
      dispatch(block + bodyEnviron(result.length, result.file), result.data, result.file);
    });
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
