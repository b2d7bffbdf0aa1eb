/**
 * One Python worker process and its framed stream (fd 3, a socketpair).
 *
 * A sync worker answers requests in the order sent, so `inflight[0]` is the
 * one running and the rest have not started: if it dies, only `inflight[0]`
 * is lost. A threaded worker runs everything it holds (it is never sent more
 * than it has threads) and answers in any order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { decodeFile, decodeHead, decodeResponse, encodeEmpty, Frame, FrameDecoder } from '../wire/frames.js';
import type { Exchange } from './exchange.js';

export const WORKER_SCRIPT = fileURLToPath(new URL('../../../python/gatehouse_worker.py', import.meta.url));

export interface WorkerSpawnOptions {
  python: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** JSON-able settings handed to the Python side. */
  settings: Record<string, unknown>;
  /** Run the worker as this user and group (the front must be root). */
  uid?: number;
  gid?: number;
}

export interface WorkerEvents {
  ready(worker: WorkerProcess): void;
  bootError(worker: WorkerProcess, traceback: string): void;
  /** A request finished; the worker may take another. */
  done(worker: WorkerProcess): void;
  /** A request came back unstarted; it must go to another worker. */
  revoked(worker: WorkerProcess, x: Exchange): void;
  /** The process is gone and its streams are closed. */
  closed(worker: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void;
  spawnError(worker: WorkerProcess, err: Error): void;
}

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  state: 'booting' | 'ready' | 'retiring' | 'dead' = 'booting';
  /** Requests sent, oldest (running) first. */
  readonly inflight: Exchange[] = [];
  /** When inflight[0] started running (ms, performance.now()). */
  headStartedAt = 0;
  readonly spawnedAt = performance.now();
  readyAt = 0;
  requests = 0;
  /** Why we are ending this worker, so its exit is not reported as a crash. */
  retiredFor: string | null = null;

  private readonly stream: Socket;
  private readonly byId = new Map<number, Exchange>();
  private readonly revoking = new Set<Exchange>();
  private outbox: Buffer[] = [];

  constructor(
    opts: WorkerSpawnOptions,
    private readonly events: WorkerEvents,
    private readonly logger: Logger,
    /** Which reload of the pool this worker belongs to. */
    readonly generation: number,
    /** Requests after which the worker is replaced (--max-requests plus jitter). */
    readonly requestLimit: number,
  ) {
    this.child = spawn(opts.python, [WORKER_SCRIPT, JSON.stringify(opts.settings)], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    this.pid = this.child.pid ?? 0;
    this.stream = this.child.stdio[3] as Socket;
    const decoder = new FrameDecoder((type, id, payload) => this.onFrame(type, id, payload));
    this.stream.on('data', (chunk: Buffer) => decoder.push(chunk));
    this.stream.on('error', () => {}); // the child's exit is what we act on
    this.forwardOutput(this.child.stdout!, 'info');
    this.forwardOutput(this.child.stderr!, 'error');
    this.child.on('error', (err) => this.events.spawnError(this, err));
    this.child.on('close', (code, signal) => {
      this.state = 'dead';
      this.events.closed(this, code, signal);
    });
  }

  /**
   * Sends a request. Frames are held until the event loop's check phase, so
   * requests that arrived on many connections in one poll go out in one write.
   */
  send(x: Exchange, id: number, now: number): void {
    x.frame.writeUInt32LE(id, 1);
    x.worker = this;
    x.sentAt = now;
    if (this.inflight.length === 0) this.headStartedAt = now;
    this.inflight.push(x);
    this.byId.set(id, x);
    if (this.outbox.length === 0) setImmediate(this.flush);
    this.outbox.push(x.frame);
  }

  private readonly flush = () => {
    const frames = this.outbox;
    this.outbox = [];
    if (this.state !== 'dead') this.stream.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  };

  /** The client went away: ask the worker to stop and close() the iterable. */
  cancel(x: Exchange): void {
    this.tell(Frame.CANCEL, x);
  }

  /**
   * The running request is taking long: ask for the ones queued behind it
   * back (each comes back as REVOKED unless it already started).
   */
  revokeQueued(): void {
    for (let i = 1; i < this.inflight.length; i++) {
      const x = this.inflight[i]!;
      if (this.revoking.has(x)) continue;
      this.revoking.add(x);
      this.tell(Frame.REVOKE, x);
    }
  }

  private tell(type: Frame, x: Exchange): void {
    const id = x.frame.readUInt32LE(1);
    if (this.byId.get(id) !== x || this.state === 'dead') return;
    if (this.outbox.length === 0) setImmediate(this.flush);
    this.outbox.push(encodeEmpty(type, id));
  }

  /** Takes back every request this worker holds, oldest first, and forgets them. */
  takeAll(): Exchange[] {
    const all = this.inflight.splice(0);
    for (const x of all) x.worker = null;
    this.byId.clear();
    this.revoking.clear();
    return all;
  }

  retire(reason: string): void {
    this.state = 'retiring';
    this.retiredFor = reason;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Closing our end makes an idle worker exit by itself. */
  closeStream(): void {
    this.stream.end();
  }

  private finish(id: number, x: Exchange): void {
    this.release(id, x);
    this.requests++;
    this.events.done(this);
  }

  private release(id: number, x: Exchange): void {
    this.byId.delete(id);
    this.revoking.delete(x);
    const i = this.inflight.indexOf(x);
    this.inflight.splice(i, 1);
    x.worker = null;
    if (i === 0) this.headStartedAt = performance.now();
  }

  private onFrame(type: number, id: number, payload: Buffer): void {
    if (type === Frame.READY || type === Frame.BOOT_ERROR) {
      if (type === Frame.READY) {
        this.state = 'ready';
        this.readyAt = performance.now();
        this.events.ready(this);
      } else {
        this.events.bootError(this, payload.toString('utf8'));
      }
      return;
    }
    const x = this.byId.get(id);
    if (x === undefined) return; // already answered (timed out) or cancelled
    switch (type) {
      case Frame.RESPONSE: {
        const { head, body } = decodeResponse(payload);
        this.finish(id, x);
        x.response(head, body);
        break;
      }
      case Frame.START:
        x.start(decodeHead(payload));
        break;
      case Frame.BODY:
        x.body(payload);
        break;
      case Frame.FILE:
        x.file(decodeFile(payload));
        break;
      case Frame.END:
        this.finish(id, x);
        x.end();
        break;
      case Frame.ABORT:
        this.finish(id, x);
        x.abort();
        break;
      case Frame.REVOKED:
        this.release(id, x);
        this.events.revoked(this, x);
        break;
      default:
        this.logger.error(`worker ${this.pid} sent an unknown frame type ${type}; stopping it`);
        this.kill('SIGKILL');
    }
  }

  private forwardOutput(stream: NodeJS.ReadableStream, level: 'info' | 'error'): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.logger.log(level, line, this.pid);
    });
    stream.on('end', () => {
      if (partial) this.logger.log(level, partial, this.pid);
    });
  }
}
