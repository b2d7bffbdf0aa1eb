/**
 * The work under way for a connection's requests (more than one when the
 * client pipelines): the front stops it when the client goes away, and waits
 * for it before closing connections when the server drains. Route actions
 * that answer asynchronously (an app, later a proxy) register here.
 */
import type { EventEmitter } from 'node:events';
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

/** `work` starts on the connection. */
function addInFlight(socket: Socket, work: InFlight): void {
  const s = socket as TrackedSocket;
  const list = s[kInFlight];
  if (list === undefined) s[kInFlight] = [work];
  else list.push(work);
}

/** `work` is done; a list left empty is dropped, so that an idle keep-alive connection (they are many) holds none. */
function removeInFlight(socket: Socket, work: InFlight): void {
  const s = socket as TrackedSocket;
  const list = s[kInFlight];
  const at = list?.indexOf(work) ?? -1;
  if (at === 0) list!.shift();
  else if (at > 0) list!.splice(at, 1);
  if (list?.length === 0) s[kInFlight] = undefined;
}

/** A request's connection: HTTP/2 streams are watched through their response. */
interface Watched {
  httpVersionMajor: number;
  socket: Socket;
}

/**
 * Stops `work` if the client goes away before it is done: an HTTP/2 stream
 * says so itself ('close' on its response); an HTTP/1 connection is watched
 * by the front. `work.clientGone()` must do nothing once the work is done.
 */
export function watchClient(req: Watched, res: EventEmitter, work: InFlight): void {
  if (req.httpVersionMajor === 2) res.once('close', () => work.clientGone());
  else addInFlight(req.socket, work);
}

/** `work` is done: the client is no longer watched for it. */
export function unwatchClient(req: Watched, work: InFlight): void {
  if (req.httpVersionMajor !== 2) removeInFlight(req.socket, work);
}
