/**
 * The work under way for a connection's requests (more than one when the
 * client pipelines): the front stops it when the client goes away, and waits
 * for it before closing connections when the server drains. Route actions
 * that answer asynchronously (an app, later a proxy) register here.
 */
import type { Socket } from 'node:net';

export interface InFlight {
  /** The client went away before the answer was complete. */
  clientGone(): void;
}

const kInFlight = Symbol('gatehouse.inFlight');
type TrackedSocket = Socket & { [kInFlight]?: InFlight[] };

/** The work still under way on a connection. */
export function inFlightOn(socket: Socket): InFlight[] {
  return ((socket as TrackedSocket)[kInFlight] ??= []);
}
