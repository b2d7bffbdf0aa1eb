/**
 * A plain TCP connection of an HTTP listener, read without node's Readable
 * stream's push: net.Socket's `onread` option has each read land in one
 * buffer for every connection, and its callback hands a copy of exactly the
 * bytes read to the socket's 'data' listeners, as node would. What it saves on each
 * read: the 64 KiB allocation node makes for it (then shrinks), the Readable
 * machinery's push, and the tick it schedules after every chunk (one more
 * call from C++ into JavaScript). A request on a kept-alive connection is
 * one read, so this is a good part of what the front spends on it that is
 * not the system calls themselves (the README's Performance section has the
 * figures).
 *
 * Node offers `onread` only to sockets it creates for a caller, not to the
 * ones a server accepts: the accepted socket's handle is given to a new
 * socket made with it (as node's own server does when it accepts), and the
 * accepted one, never used, is dropped. Everything else is the same socket:
 * writes, timeouts, pause() and resume() (they stop and start the reads),
 * 'end' at the client's FIN, and node:http reading it after a hand-over.
 * Where this node has no handle to take, the accepted socket is used as it is.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';

/** Where every read lands before it is copied out; one read at a time in this thread, each copied before the next. */
const landing = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * Node calls it as a method of the socket read; false stops the reads (as a
 * full Readable does). A Buffer of its own for each read: a chunk kept (a
 * head arriving in pieces) holds only its bytes. It goes to the 'data'
 * listeners at once when the socket flows with nothing buffered and no
 * encoding, as every connection the front reads does; otherwise through the
 * Readable, which then does what it always does (decoding, buffering for
 * read(), keeping bytes put back with unshift() first).
 */
function delivered(this: Socket, bytes: number, buffer: Buffer): boolean {
  const chunk = Buffer.allocUnsafeSlow(bytes);
  buffer.copy(chunk, 0, 0, bytes);
  if (this.readableFlowing === true && this.readableLength === 0 && this.readableEncoding === null) return this.emit('data', chunk) || true;
  return this.push(chunk);
}

interface DirectOptions {
  handle: object;
  onread: { buffer: Buffer; callback: (this: Socket, bytes: number, buffer: Buffer) => boolean };
}

/** The internals this takes over: the accepted socket's handle, and the server it counts towards. */
interface Accepted {
  _handle: object | null;
  server?: unknown;
  _server?: unknown;
}

/** The socket to read `accepted` through: a new one on its handle, or `accepted` itself where that cannot be done. */
export function directSocket(accepted: Socket): Socket {
  const a = accepted as Socket & Accepted;
  const handle = a._handle;
  if (handle === null || handle === undefined || accepted.destroyed) return accepted;
  // `handle` and (for a socket made this way) `onread` are not in the constructor's declared options.
  const options: SocketConstructorOpts & DirectOptions = { handle, allowHalfOpen: accepted.allowHalfOpen, onread: { buffer: landing, callback: delivered } };
  const direct = new Socket(options) as Socket & Accepted;
  // The server counts its connections by the socket it made; the new one is that connection now.
  direct.server = a.server;
  direct._server = a._server;
  a._handle = null;
  a._server = null;
  return direct;
}
