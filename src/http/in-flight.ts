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
  /**
   * The response the work answers through. Destroyed, it cuts the
   * connection where it stands among pipelined answers: those before it
   * still go out (nginx answers pipelined requests in order).
   */
  readonly clientResponse: { destroy(): void };
}

const kInFlight = Symbol('gatehouse.inFlight');
const kEnded = Symbol('gatehouse.clientEnded');
/** One piece of work alone (the usual case: no list made per request), or several in order (pipelining). */
type TrackedSocket = Socket & { [kInFlight]?: InFlight | InFlight[]; [kEnded]?: true };

/** The work still under way on a connection, oldest first (a list of its own: the caller may stop each). */
export function inFlightOn(socket: Socket): InFlight[] {
  const work = (socket as TrackedSocket)[kInFlight];
  return work === undefined ? [] : Array.isArray(work) ? work.slice() : [work];
}

/** The connection went away: the work under way for it stops. */
export function clientGoneFrom(socket: Socket): void {
  for (const x of inFlightOn(socket)) x.clientGone();
}

/**
 * The client half-closed its HTTP/1 connection (FIN): as nginx sees it
 * (recv() returning 0 while the request is with an upstream), it went away.
 * The work under way for it stops now, and work that starts later (a
 * request whose body was still being buffered, or which waited for its
 * app) as soon as it starts; the connection is cut then. Answers that need
 * no such work still go out.
 */
export function clientEnded(socket: Socket): void {
  const s = socket as TrackedSocket;
  s[kEnded] = true;
  if (s[kInFlight] !== undefined) cut(socket);
}

/** The 'end' listener of a tracked connection: one function for all of them (idle connections are many). */
export function onClientEnd(this: Socket): void {
  clientEnded(this);
}

/** The client half-closed the connection (clientEnded). */
export function hasEnded(socket: Socket): boolean {
  return (socket as TrackedSocket)[kEnded] === true;
}

/** Stops the work under way before the socket's 'close' (a loop turn later), so that no answer is taken for sent meanwhile. */
function cut(socket: Socket): void {
  const work = inFlightOn(socket);
  // Done meanwhile (it started after the FIN and answered at once): its answer goes out.
  if (work.length === 0) return;
  // The connection ends where the oldest of them would have answered; nothing they write after goes out.
  work[0]!.clientResponse.destroy();
  for (const x of work) x.clientGone();
}

/** `work` starts on the connection. */
function addInFlight(socket: Socket, work: InFlight): void {
  const s = socket as TrackedSocket;
  const under = s[kInFlight];
  if (under === undefined) s[kInFlight] = work;
  else if (Array.isArray(under)) under.push(work);
  else s[kInFlight] = [under, work];
}

/** `work` is done; nothing is left on a connection without work, so that an idle keep-alive connection (they are many) holds none. */
function removeInFlight(socket: Socket, work: InFlight): void {
  const s = socket as TrackedSocket;
  const under = s[kInFlight];
  if (under === work) return void (s[kInFlight] = undefined);
  if (!Array.isArray(under)) return;
  const at = under.indexOf(work);
  if (at === 0) under.shift();
  else if (at > 0) under.splice(at, 1);
  if (under.length === 0) s[kInFlight] = undefined;
}

/** A request's connection: HTTP/2 streams are watched through their response. */
interface Watched {
  httpVersionMajor: number;
  socket: Socket;
}

/** A response that stops the work for its request itself when its stream closes (the front's HTTP/2 one). */
interface WatchingResponse {
  watch(work: InFlight): void;
}

/**
 * Stops `work` if the client goes away before it is done: an HTTP/2 stream
 * says so itself ('close' on its response, or its watch()); an HTTP/1
 * connection is watched by the front. `work.clientGone()` must do nothing
 * once the work is done.
 */
export function watchClient(req: Watched, res: EventEmitter | WatchingResponse, work: InFlight): void {
  if (req.httpVersionMajor === 2) {
    if ('watch' in res) res.watch(work);
    else res.once('close', () => work.clientGone());
    return;
  }
  addInFlight(req.socket, work);
  // Once the caller has set the work going.
  if (hasEnded(req.socket)) queueMicrotask(() => cut(req.socket));
}

/** `work` is done: the client is no longer watched for it. */
export function unwatchClient(req: Watched, work: InFlight): void {
  if (req.httpVersionMajor !== 2) removeInFlight(req.socket, work);
}
