/**
 * The request the cache hands the route's inner handler: the client's,
 * seen through a copy that changes only the headers (the client's
 * conditional and range headers are the cache's to answer; a revalidation
 * adds the stored validators) and, for HEAD, the method: the origin is asked
 * for the whole GET response, which is what gets stored. The copy inherits
 * everything else from the client's request (its start time for the access
 * log, what the front worked out about forwarding). A GET with none of
 * those headers, and nothing to add, is passed on as it is.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestInfo } from '../http/handler.js';

/** Request headers the cache answers from a stored response, never passed on. */
const CLIENT_ONLY_NAMES = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'range', 'if-range'];
const CLIENT_ONLY = new Set(CLIENT_ONLY_NAMES);

export function originRequest(req: RequestInfo, add: Record<string, string>, socket?: Socket): RequestInfo {
  // The common miss: a plain GET goes on as it came (every read of a copy goes through its prototype).
  if (req.method === 'GET' && socket === undefined && !hasClientOnly(req.headers) && isEmpty(add)) return req;
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    if (!CLIENT_ONLY.has(name.toLowerCase())) rawHeaders.push(name, req.rawHeaders[i + 1]!);
  }
  for (const name in req.headers) if (!CLIENT_ONLY.has(name)) headers[name] = req.headers[name];
  for (const [name, value] of Object.entries(add)) {
    headers[name] = value;
    rawHeaders.push(name, value);
  }
  const copy = Object.create(req) as RequestInfo;
  Object.defineProperties(copy, {
    method: { value: 'GET', enumerable: true },
    headers: { value: headers, enumerable: true },
    rawHeaders: { value: rawHeaders, enumerable: true },
  });
  if (socket !== undefined) Object.defineProperty(copy, 'socket', { value: socket, enumerable: true });
  return copy;
}

/** Whether the request has a header that makes the answer particular to it (a condition, a range). */
export function hasClientOnly(headers: IncomingHttpHeaders): boolean {
  for (let i = 0; i < CLIENT_ONLY_NAMES.length; i++) if (headers[CLIENT_ONLY_NAMES[i]!] !== undefined) return true;
  return false;
}

function isEmpty(add: Record<string, string>): boolean {
  for (const _ in add) return false;
  return true;
}

/**
 * A stand-in for the client's connection, for a background refresh: the
 * same addresses (the app sees the same REMOTE_ADDR and SERVER_PORT), but no
 * connection of its own, so the client leaving does not stop the refresh.
 */
export function detachedSocket(socket: Socket): Socket {
  const { remoteAddress, remotePort, remoteFamily, localAddress, localPort } = socket;
  return { remoteAddress, remotePort, remoteFamily, localAddress, localPort } as Socket;
}
