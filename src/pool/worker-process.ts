/**
 * One Python worker process and its framed stream (fd 3, a socketpair).
 *
 * A sync worker answers requests in the order sent, so the oldest in
 * `inflight` is the one running and the rest have not started: if it dies,
 * only that one is lost. A threaded worker runs everything it holds (it is
 * never sent more than it has threads) and answers in any order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { forwardOutput } from '../log/worker-output.js';
import { decodeFields, decodeFile, decodeHead, encodeEmpty, Frame, FrameDecoder } from '../wire/frames.js';
import { closeAfterExit, whenGone } from './child-exit.js';
import type { Exchange } from './exchange.js';
import { SentRequests } from './sent-requests.js';

/** Bytes waiting for the worker past which relay() says to stop reading the clients. */
const RELAY_HIGH_WATER = 4 * 1024 * 1024;

const WORKER_SCRIPT = fileURLToPath(new URL('../../../python/gatehouse_worker.py', import.meta.url));

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
  /** It leaves (SIGTERM from outside, as systemd's stop sends every process): what it has not answered it never started, and it hands it back. */
  leaving(worker: WorkerProcess): void;
  spawnError(worker: WorkerProcess, err: Error): void;
}

export class WorkerProcess {
  /** 0 for a forked worker until it connects and says READY. */
  pid = 0;
  state: 'booting' | 'ready' | 'retiring' | 'dead' = 'booting';
  /** Requests sent, oldest (running) first, by id. */
  readonly inflight = new SentRequests<Exchange>();
  /** When the oldest in `inflight` started running (ms, performance.now()). */
  headStartedAt = 0;
  readonly spawnedAt = performance.now();
  readyAt = 0;
  /** The app's interface, as the worker said when ready. */
  interface: 'wsgi' | 'asgi' = 'wsgi';
  /** An ASGI worker's last HEARTBEAT (ms, performance.now()): its event loop was free then. */
  beatAt = 0;
  requests = 0;
  /** Why we are ending this worker, so its exit is not reported as a crash. */
  retiredFor: string | null = null;
  /** Its place among the pool's workers, for sticky dispatch (worker-slots.ts). */
  slot = 0;

  private child: ChildProcess | null = null;
  private stream: Socket | null = null;
  private readonly revoking = new Set<Exchange>();
  /** Responses whose client is so far behind that this worker's stream is not read (holdStream()). */
  private readonly holding = new Set<Exchange>();
  private outbox: Buffer[] = [];
  /** Waiting for the stream to the worker to drain (relay()). */
  private drainWaiters: (() => void)[] = [];
  /** Its exit: its code, or minus the signal. A forked worker is gone once its exit is reported and its stream is closed. */
  private exitStatus: number | null = null;
  private streamClosed = false;

  constructor(
    private readonly events: WorkerEvents,
    private readonly logger: Logger,
    /** Which reload of the pool this worker belongs to. */
    readonly generation: number,
    /** Requests after which the worker is replaced (--max-requests plus jitter). */
    readonly requestLimit: number,
  ) {}

  /** Starts the worker as a child process with its stream on fd 3. */
  spawn(opts: WorkerSpawnOptions): void {
    const child = spawnPython(opts, opts.settings, this.logger);
    this.child = child;
    this.pid = child.pid ?? 0;
    const stream = child.stdio[3] as Socket;
    this.listen(stream);
    child.on('error', (err) => this.events.spawnError(this, err));
    whenGone(child, stream, (code, signal) => (this.exitStatus = code ?? -(constants.signals[signal!] ?? 0)), (code, signal, held) => {
      if (held) this.logger.info(`Worker (pid:${this.pid}) exited; a process it started still holds its pipes`);
      this.state = 'dead';
      this.events.closed(this, code, signal);
    });
  }

  /** A worker forked by the --preload template connected (`first`: what it sent so far). */
  attach(stream: Socket, first: Buffer): void {
    this.listen(stream);
    stream.on('close', () => {
      this.streamClosed = true;
      this.closeIfGone();
    });
    stream.emit('data', first);
  }

  /** The template reports that this forked worker exited: its code, or minus the signal. */
  exited(status: number): void {
    this.exitStatus = status;
    if (!this.streamClosed && this.stream !== null) closeAfterExit(this.stream);
    this.closeIfGone();
  }

  /**
   * The process has exited, and is sent nothing more. Its pipes may stay open a while longer
   * (child-exit.ts): it is reported gone, its state 'dead', once they close.
   */
  get hasExited(): boolean {
    return this.exitStatus !== null;
  }

  private closeIfGone(): void {
    if (this.state === 'dead' || this.exitStatus === null || !this.streamClosed) return;
    this.state = 'dead';
    const status = this.exitStatus;
    const signal = status < 0 ? (signalName(-status) ?? null) : null;
    this.events.closed(this, status < 0 ? null : status, signal);
  }

  private listen(stream: Socket): void {
    this.stream = stream;
    const decoder = new FrameDecoder((type, id, payload) => this.onFrame(type, id, payload));
    stream.on('data', (chunk: Buffer) => decoder.push(chunk));
    stream.on('error', () => {}); // the process's exit is what we act on
    stream.on('drain', () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const fn of waiters) fn();
    });
  }

  /**
   * Sends a request. Frames are held until the event loop's check phase, so
   * requests that arrived on many connections in one poll go out in one write.
   */
  send(x: Exchange, id: number, now: number): void {
    x.frame.writeUInt32LE(id, 1);
    x.id = id;
    x.worker = this;
    x.sentAt = now;
    if (this.inflight.length === 0) this.headStartedAt = now;
    this.inflight.add(id, x);
    if (this.outbox.length === 0) setImmediate(this.flush);
    this.outbox.push(x.frame);
    x.sent?.();
  }

  private readonly flush = () => {
    const frames = this.outbox;
    this.outbox = [];
    if (this.state !== 'dead') this.stream?.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  };

  /**
   * Sends a frame of the protocol `x` switched to (a WebSocket message),
   * given with any id: `x`'s is written into it. False when the stream to
   * the worker is full: whenDrained() says when to send more.
   */
  relay(x: Exchange, frame: Buffer): boolean {
    if (x.worker !== this || this.state === 'dead') return true;
    frame.writeUInt32LE(x.id, 1);
    if (this.outbox.length === 0) setImmediate(this.flush);
    this.outbox.push(frame);
    return this.stream === null || this.stream.writableLength < RELAY_HIGH_WATER;
  }

  /** Stops reading the worker while `x`'s client is far behind (the worker then waits in its writes), or reads it again. */
  holdStream(x: Exchange, hold: boolean): void {
    const before = this.holding.size;
    if (hold) this.holding.add(x);
    else this.holding.delete(x);
    if (before === 0 && this.holding.size > 0) this.stream?.pause();
    else if (before > 0 && this.holding.size === 0) this.stream?.resume();
  }

  whenDrained(fn: () => void): void {
    this.drainWaiters.push(fn);
  }

  /** The client went away: ask the worker to stop and close() the iterable. */
  cancel(x: Exchange): void {
    this.tell(Frame.CANCEL, x);
  }

  /**
   * The running request is taking long: ask for the ones queued behind it
   * back (each comes back as REVOKED unless it already started).
   */
  revokeQueued(): void {
    const running = this.inflight.first();
    for (const x of this.inflight) {
      if (x === running || this.revoking.has(x)) continue;
      this.revoking.add(x);
      this.tell(Frame.REVOKE, x);
    }
  }

  private tell(type: Frame, x: Exchange): void {
    if (x.worker !== this || this.state === 'dead') return;
    if (this.outbox.length === 0) setImmediate(this.flush);
    this.outbox.push(encodeEmpty(type, x.id));
  }

  /** Stops waiting for `x` (its thread hung): the worker is told to drop it, and whatever it sends for it later is ignored. */
  giveUp(x: Exchange): void {
    this.tell(Frame.CANCEL, x);
    this.release(x);
  }

  /** Takes back every request this worker holds, oldest first, and forgets them. */
  takeAll(): Exchange[] {
    const all = this.inflight.takeAll();
    for (const x of all) x.worker = null;
    this.revoking.clear();
    return all;
  }

  retire(reason: string): void {
    this.state = 'retiring';
    this.retiredFor = reason;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child !== null) {
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    } else if (this.pid !== 0 && this.exitStatus === null) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /** Closing our end makes an idle worker exit by itself. */
  closeStream(): void {
    this.stream?.end();
  }

  private finish(x: Exchange): void {
    this.release(x);
    this.requests++;
    this.events.done(this);
  }

  private release(x: Exchange): void {
    const oldest = this.inflight.delete(x.id);
    this.revoking.delete(x);
    x.worker = null;
    if (oldest === true) this.headStartedAt = performance.now();
  }

  private onFrame(type: number, id: number, payload: Buffer): void {
    if (type === Frame.READY || type === Frame.BOOT_ERROR) {
      if (type === Frame.READY) {
        // The --preload template says READY with no payload.
        const info = payload.length > 0 ? (JSON.parse(payload.toString('utf8')) as { pid: number; interface?: 'wsgi' | 'asgi' }) : null;
        if (this.pid === 0 && info !== null) this.pid = info.pid;
        if (info?.interface === 'asgi') this.interface = 'asgi';
        this.state = 'ready';
        this.readyAt = this.beatAt = performance.now();
        this.events.ready(this);
      } else {
        this.events.bootError(this, payload.toString('utf8'));
      }
      return;
    }
    const x = this.inflight.get(id);
    if (x === undefined) {
      // id 0 is never a request's.
      if (type === Frame.HEARTBEAT) this.beatAt = performance.now();
      else if (type === Frame.LEAVING) this.events.leaving(this);
      return; // already answered (timed out) or cancelled
    }
    switch (type) {
      case Frame.RESPONSE:
        this.finish(x);
        x.response(payload);
        break;
      case Frame.START:
        x.start(decodeHead(payload));
        break;
      case Frame.START_TRAILERS:
        x.start(decodeHead(payload), true);
        break;
      case Frame.TRAILERS:
        x.trailers?.(decodeFields(payload));
        break;
      case Frame.BODY:
        x.body(payload);
        break;
      case Frame.FILE:
        x.file(decodeFile(payload));
        break;
      case Frame.END:
        this.finish(x);
        x.end();
        break;
      case Frame.ABORT:
        this.finish(x);
        x.abort();
        break;
      case Frame.REVOKED:
        this.release(x);
        this.events.revoked(this, x);
        break;
      default:
        if (type >= Frame.WS_ACCEPT && type <= Frame.WS_RESUME && x.relayed !== undefined) return x.relayed(type, payload);
        this.logger.error(`worker ${this.pid} sent an unknown frame type ${type}; stopping it`);
        this.kill('SIGKILL');
    }
  }
}

/**
 * Starts the Python worker script with its framed stream on fd 3 and its
 * stdout/stderr going to the error log under its pid.
 */
export function spawnPython(opts: WorkerSpawnOptions, settings: Record<string, unknown>, logger: Logger): ChildProcess {
  const child = spawn(opts.python, [WORKER_SCRIPT, JSON.stringify(settings)], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  forwardOutput(child.stdout!, 'info', logger, child.pid ?? 0);
  forwardOutput(child.stderr!, 'error', logger, child.pid ?? 0);
  return child;
}

function signalName(n: number): NodeJS.Signals | undefined {
  return (Object.entries(constants.signals) as Array<[NodeJS.Signals, number]>).find(([, v]) => v === n)?.[0];
}
