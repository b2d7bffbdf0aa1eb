/**
 * A plain TCP connection of an HTTP listener, read without node's Readable
 * stream's push: each read lands in one buffer for every connection, and a
 * copy of exactly the bytes read goes to the socket's 'data' listeners, as
 * node would hand them. What it saves on each read: the 64 KiB allocation
 * node makes for it (then shrinks), the Readable machinery's push, and the
 * tick it schedules after every chunk (one more call from C++ into
 * JavaScript). A request on a kept-alive connection is one read, so this is
 * a good part of what the front spends on it that is not the system calls
 * themselves (docs/performance-log.md's Performance section has the figures).
 *
 * This is net.Socket's own `onread` mode, which node offers only to the
 * sockets it makes for a caller, not to those a server accepts: the accepted
 * socket is switched to it in place (the mode's three fields, found by their
 * names, and its handle told to read into the buffer), so nothing else
 * changes: writes, timeouts, pause() and resume() (in this mode they stop and
 * start the reads), 'end' at the client's FIN, and node:http reading it after
 * a hand-over. A node without them leaves the socket as it is.
 */
import { Socket } from 'node:net';

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
  if (this.readableFlowing !== true || this.readableLength !== 0 || this.readableEncoding !== null) return this.push(chunk);
  this.emit('data', chunk);
  return true;
}

/** The onread mode's fields of a net.Socket (node's lib/net.js: the buffer, its callback, a buffer-making function), by their names. */
const fields = ((): { buffer: symbol; callback: symbol; generator: symbol } | null => {
  const found = new Map(Object.getOwnPropertySymbols(new Socket()).map((s) => [s.description, s]));
  const [buffer, callback, generator] = [found.get('kBuffer'), found.get('kBufferCb'), found.get('kBufferGen')];
  return buffer && callback && generator ? { buffer, callback, generator } : null;
})();

type Switchable = Socket & { _handle?: { useUserBuffer?: (buffer: Buffer) => void } | null } & Record<symbol, unknown>;

/** Switches an accepted socket to reading directly; false (the socket unchanged) where this node cannot. */
export function readDirectly(socket: Socket): boolean {
  const s = socket as Switchable;
  const handle = s._handle;
  if (fields === null || typeof handle?.useUserBuffer !== 'function' || s[fields.buffer] !== null || socket.destroyed) return false;
  handle.useUserBuffer(landing);
  s[fields.buffer] = landing;
  s[fields.callback] = delivered;
  s[fields.generator] = null;
  return true;
}
