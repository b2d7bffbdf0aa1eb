/**
 * The socket of a WebSocket handshake while it waits for the app's answer
 * (websocket-session.ts): watched, so that a client that leaves is seen at
 * once, and what it sends early kept for ws.
 */
import type { Socket } from 'node:net';

/** Bytes a client may send before its handshake is answered (RFC 6455 says none). */
const EARLY_LIMIT = 64 * 1024;

/**
 * Reads the socket while the app decides on the handshake (or it waits for a
 * worker), so that a client that leaves is seen at once: the app's
 * receive() says so, and a queued handshake leaves the queue. What the
 * client sends meanwhile is given back to the socket when the returned
 * function ends the watch, right before ws takes the socket (same turn).
 */
export function watchHandshake(socket: Socket, onClose: () => void): () => void {
  const early: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > EARLY_LIMIT) return void socket.destroy();
    early.push(chunk);
  };
  const onEnd = () => socket.destroy();
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.on('close', onClose);
  socket.resume();
  return () => {
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    // Still flowing: ws's 'data' listener, added in this same turn, gets what comes next.
    if (early.length > 0) socket.unshift(Buffer.concat(early));
  };
}
