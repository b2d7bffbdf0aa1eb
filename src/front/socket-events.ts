/**
 * A fast-path connection's socket events (fast-connection.ts), routed to
 * its connection object by the same six listener functions for every socket:
 * idle connections are many, and a closure per event per connection costs
 * memory each.
 */
import type { Socket } from 'node:net';

/** What a socket's events are passed to. */
export interface SocketEvents {
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(): void;
  onTimeout(): void;
  onDrain(): void;
  onClose(): void;
}

const kTarget = Symbol('gatehouse.socketEvents');
type RoutedSocket = Socket & { [kTarget]?: SocketEvents };

const LISTENERS: ReadonlyArray<[string, (this: RoutedSocket, ...args: Buffer[]) => void]> = [
  ['data', function (this: RoutedSocket, chunk: Buffer) { this[kTarget]!.onData(chunk); }],
  ['end', function (this: RoutedSocket) { this[kTarget]!.onEnd(); }],
  ['error', function (this: RoutedSocket) { this[kTarget]!.onError(); }],
  ['timeout', function (this: RoutedSocket) { this[kTarget]!.onTimeout(); }],
  ['drain', function (this: RoutedSocket) { this[kTarget]!.onDrain(); }],
  ['close', function (this: RoutedSocket) { this[kTarget]!.onClose(); }],
];

/** `socket`'s events go to `target` from now on. */
export function routeEvents(socket: Socket, target: SocketEvents): void {
  const s = socket as RoutedSocket;
  s[kTarget] = target;
  for (const [event, listener] of LISTENERS) s.on(event, listener);
}

/** `socket`'s events go nowhere of ours any more (it is handed on). */
export function unrouteEvents(socket: Socket): void {
  const s = socket as RoutedSocket;
  for (const [event, listener] of LISTENERS) s.removeListener(event, listener);
  s[kTarget] = undefined;
}
