/**
 * Kept-alive connections to one back end, idle between requests (nginx's
 * `keepalive N` in an upstream block): the most recently used is taken
 * first, one the back end closes (or writes to while idle) leaves the pool,
 * and an idle one is closed after `idleMs`. Idle connections do not keep
 * the process alive.
 */
import type { Socket } from 'node:net';

export class SocketPool {
  private readonly idle: Socket[] = [];
  private closed = false;

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
      detach(socket);
      socket.setTimeout(0);
      if (socket.destroyed || socket.readableEnded) {
        socket.destroy();
        continue;
      }
      socket.ref();
      return socket;
    }
    return null;
  }

  /** A connection whose exchange ended cleanly, with nothing left unread. */
  give(socket: Socket): void {
    detach(socket);
    if (this.closed || socket.destroyed || this.idle.length >= this.max) {
      socket.destroy();
      return;
    }
    const drop = () => {
      const at = this.idle.indexOf(socket);
      if (at >= 0) this.idle.splice(at, 1);
      socket.destroy();
    };
    // Bytes while idle break the protocol's framing: the connection is of no more use.
    socket.on('data', drop).on('close', drop).on('error', drop).on('timeout', drop);
    // Its last exchange may have paused it for a slow client: idle, it must see the back end close.
    socket.resume();
    socket.setTimeout(this.idleMs);
    socket.unref();
    this.idle.push(socket);
  }

  close(): void {
    this.closed = true;
    for (const socket of this.idle.splice(0)) socket.destroy();
  }
}

/** Removes an exchange's listeners (never all of them: net.Socket keeps its own 'end' handler). */
export function detach(socket: Socket): void {
  for (const event of ['data', 'error', 'close', 'drain', 'timeout', 'connect']) socket.removeAllListeners(event);
}
