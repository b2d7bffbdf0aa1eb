/**
 * Kept-alive connections to one back end, idle between requests (nginx's
 * `keepalive N` in an upstream block): the most recently used is taken
 * first, one the back end closes (or writes to while idle) leaves the pool,
 * and one idle for `idleMs` is closed (checked a few times per `idleMs`).
 * Idle connections do not keep the process alive.
 *
 * A connection's listeners are added once (openSocket) and pass its events
 * to whoever has it, an exchange or the pool: handing a connection over is
 * a field's change (useSocket), not listeners removed and added on every
 * request. Its bytes are read into one buffer shared by all connections
 * (Node's `onread`), each read copied out to its own small Buffer: no
 * stream machinery and no buffer allocated per read.
 */
import { createConnection, type NetConnectOpts, type Socket } from 'node:net';

/** Where a back-end connection's events go. */
export interface SocketUser {
  data(chunk: Buffer, socket: Socket): void;
  error(err: NodeJS.ErrnoException, socket: Socket): void;
  closed(socket: Socket): void;
}

const kUser = Symbol('gatehouse.socketUser');
const kIdleSince = Symbol('gatehouse.idleSince');
type UsedSocket = Socket & { [kUser]?: SocketUser | null; [kIdleSince]?: number };

/** Where every connection's reads land; what a read brings is copied out before the next one. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/** A connection whose events go to `user`. */
export function openSocket(options: NetConnectOpts, user: SocketUser): Socket {
  const socket: UsedSocket = createConnection({
    ...options,
    onread: {
      buffer: readBuffer,
      callback: (n, buf) => {
        socket[kUser]?.data(Buffer.from(buf.subarray(0, n)), socket);
        return true;
      },
    },
  });
  socket[kUser] = user;
  socket.on('error', (err: NodeJS.ErrnoException) => socket[kUser]?.error(err, socket));
  socket.on('close', () => socket[kUser]?.closed(socket));
  return socket;
}

/** From now on the socket's events go to `user` (null: nowhere; the socket is being closed). */
export function useSocket(socket: Socket, user: SocketUser | null): void {
  (socket as UsedSocket)[kUser] = user;
}

export class SocketPool implements SocketUser {
  /** Oldest first. */
  private readonly idle: UsedSocket[] = [];
  private shut = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    /** Idle connections kept at most; 0 keeps none. */
    private readonly max: number,
    private readonly idleMs: number,
  ) {}

  get size(): number {
    return this.idle.length;
  }

  take(): Socket | null {
    for (let socket = this.idle.pop(); socket !== undefined; socket = this.idle.pop()) {
      if (socket.destroyed || socket.readableEnded) {
        socket.destroy();
        continue;
      }
      socket.ref();
      return socket;
    }
    return null;
  }

  /** A connection whose exchange ended cleanly, with nothing left unread (opened by openSocket). */
  give(socket: Socket): void {
    const s = socket as UsedSocket;
    if (this.shut || socket.destroyed || this.idle.length >= this.max) {
      useSocket(socket, null);
      socket.destroy();
      return;
    }
    useSocket(socket, this);
    // A request that never drained its write leaves its listener behind.
    socket.removeAllListeners('drain');
    // Its last exchange may have paused it for a slow client: idle, it must see the back end close.
    if (socket.isPaused()) socket.resume();
    socket.unref();
    s[kIdleSince] = performance.now();
    this.idle.push(s);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(this.idleMs / 4, 250)).unref();
  }

  close(): void {
    this.shut = true;
    clearInterval(this.sweeper);
    for (const socket of this.idle.splice(0)) socket.destroy();
  }

  /** Bytes while idle break the protocol's framing: the connection is of no more use. */
  data(_chunk: Buffer, socket: Socket): void {
    this.drop(socket);
  }

  error(_err: NodeJS.ErrnoException, socket: Socket): void {
    this.drop(socket);
  }

  closed(socket: Socket): void {
    this.drop(socket);
  }

  private drop(socket: Socket): void {
    const at = this.idle.indexOf(socket);
    if (at >= 0) this.idle.splice(at, 1);
    socket.destroy();
  }

  private sweep(): void {
    const oldest = performance.now() - this.idleMs;
    while (this.idle.length > 0 && this.idle[0]![kIdleSince]! <= oldest) this.idle.shift()!.destroy();
  }
}
