/**
 * `--preload`: one Python process imports the app, and workers are forked
 * from it so they share its memory pages (gunicorn's preload_app, NGINX
 * Unit's prototype). Unlike gunicorn, a reload makes a new template, so new
 * code is picked up.
 *
 * A forked child cannot inherit a stream made by Node, so the front listens
 * on a private unix socket; each child connects and says READY with the
 * token of the FORK that made it. The template reports its children's exits
 * (EXITED), since they are not Node's children.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { encodeEmpty, Frame, FrameDecoder, HEADER_SIZE } from '../wire/frames.js';
import { whenGone } from './child-exit.js';
import { spawnPython, type WorkerProcess, type WorkerSpawnOptions } from './worker-process.js';

export interface TemplateEvents {
  ready(t: TemplateProcess): void;
  bootError(t: TemplateProcess, traceback: string): void;
  /** The template is gone (its children die with it). */
  closed(t: TemplateProcess, code: number | null, signal: NodeJS.Signals | null): void;
}

export class TemplateProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  state: 'booting' | 'ready' | 'dead' = 'booting';
  readonly spawnedAt = performance.now();
  /** Set when we end it, so its exit is not reported as a crash. */
  stopped = false;
  /** Workers forked from this template that have not exited. */
  readonly forked = new Set<WorkerProcess>();
  private readonly dir: string;
  private readonly server: Server;
  private readonly waiting = new Map<number, WorkerProcess>();
  private nextToken = 1;

  constructor(
    opts: WorkerSpawnOptions,
    readonly generation: number,
    private readonly events: TemplateEvents,
    logger: Logger,
  ) {
    this.dir = socketDir(opts);
    const socketPath = join(this.dir, 'workers.sock');
    this.server = createServer((socket) => this.onConnection(socket));
    // The directory is private (0700, the workers' owner); the socket itself must be writable by them.
    this.server.listen(socketPath, () => chmodSync(socketPath, 0o777));
    // Its workers then never connect: they fail their boot within --timeout, and that is reported.
    this.server.on('error', (err) => logger.error(`The --preload template's socket ${socketPath} failed: ${err.message}`));
    // Forked workers share the template's stdout/stderr: their lines carry the template's pid.
    this.child = spawnPython(opts, { ...opts.settings, fork_socket: socketPath }, logger);
    this.pid = this.child.pid ?? 0;
    const stream = this.child.stdio[3] as Socket;
    stream.on('error', () => {});
    const decoder = new FrameDecoder((type, id, payload) => this.onFrame(type, id, payload));
    stream.on('data', (chunk: Buffer) => decoder.push(chunk));
    this.child.on('error', () => {}); // its exit follows; the pool reports it
    whenGone(this.child, stream, () => {}, (code, signal) => {
      this.state = 'dead';
      this.cleanUp();
      // Its children die with it (parent-death signal), and no one is left to report their exits.
      for (const w of this.forked) w.exited(-constants.signals.SIGKILL);
      this.forked.clear();
      this.events.closed(this, code, signal);
    });
  }

  /** Asks for a child; `w` learns its pid and stream when the child connects. */
  fork(w: WorkerProcess): void {
    const token = this.nextToken++;
    this.waiting.set(token, w);
    this.forked.add(w);
    (this.child.stdio[3] as Socket).write(encodeEmpty(Frame.FORK, token));
  }

  kill(signal: NodeJS.Signals): void {
    if (this.state !== 'dead') this.child.kill(signal);
  }

  /** Ends the template; children still running die with it, so call this once they are gone. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cleanUp(); // no more forks: the socket can go now, even if we exit before the template does
    (this.child.stdio[3] as Socket).end();
    if (this.state !== 'dead') this.child.kill('SIGTERM');
  }

  private cleanUp(): void {
    if (this.server.listening) this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private onFrame(type: number, id: number, payload: Buffer): void {
    if (type === Frame.READY) {
      this.state = 'ready';
      this.events.ready(this);
    } else if (type === Frame.BOOT_ERROR) {
      this.events.bootError(this, payload.toString('utf8'));
    } else if (type === Frame.EXITED) {
      const status = Number(payload.toString('latin1'));
      for (const w of this.forked) {
        if (w.pid !== id) continue;
        this.forked.delete(w);
        w.exited(status);
      }
    }
  }

  /** A forked child connected: its first frame's id is the token of its FORK. */
  private onConnection(socket: Socket): void {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < HEADER_SIZE) return;
      socket.off('data', onData);
      const token = head.readUInt32LE(1);
      const w = this.waiting.get(token);
      this.waiting.delete(token);
      if (w === undefined) socket.destroy();
      else w.attach(socket, head);
    };
    socket.on('data', onData);
    socket.on('error', () => {});
  }
}

/** The private directory of the template's socket; GH_ERR_WORKER_BOOT when TMPDIR cannot have it (gone, full). */
function socketDir(opts: WorkerSpawnOptions): string {
  let dir: string | null = null;
  try {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-fork-'));
    if (opts.uid !== undefined || opts.gid !== undefined) chownSync(dir, opts.uid ?? -1, opts.gid ?? -1);
    return dir;
  } catch (err) {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
    throw new GatehouseError('GH_ERR_WORKER_BOOT', `cannot make the --preload template's socket directory in ${tmpdir()} (TMPDIR): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
