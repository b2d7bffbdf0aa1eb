/**
 * The wire between the front and a Python worker: one persistent stream per
 * worker (a socketpair on the worker's fd 3), binary length-prefixed frames.
 *
 * Written by hand because it is ours: no library speaks it, and its shape is
 * chosen for what is cheapest to decode in Python (python/gatehouse_wire.py
 * is the other half and must change with this file).
 *
 * Frame: 9-byte header, little-endian `type:u8 id:u32 length:u32`, then
 * `length` bytes of payload. `id` names the request the frame belongs to.
 *
 * front → worker
 *   REQ     u32 environ length, environ block, then the request body (inline).
 *           An ASGI worker gets a scope block instead (src/asgi/scope.ts).
 *           The environ block is latin-1 `KEY\0VALUE\0KEY\0VALUE...`; a key
 *           `gatehouse.body_file` instead names a temp file holding the body.
 *   CANCEL  the client went away: stop producing, close(), answer END.
 *   REVOKE  give this request back if it has not started: answer REVOKED
 *           (the front sends it to another worker), else ignore.
 *   FORK    (--preload, to the template process) fork a worker; the child
 *           connects to the front's unix socket and says READY with this id.
 *   REQ_STREAM  (ASGI) a REQ whose body follows as REQ_BODY frames (the
 *           app reads it as it arrives), then REQ_END. The worker holds
 *           the front back with WS_PAUSE / WS_RESUME under that id.
 *   REQ_BODY    a piece of a streamed request body.
 *   REQ_END     the streamed body is complete (empty).
 *   WS_OPEN a WebSocket handshake for an ASGI app: u32 scope length, the
 *           scope block (as REQ's, with an empty body). The app answers
 *           with WS_ACCEPT, or with an HTTP response (RESPONSE, or START,
 *           BODY..., END: the denial, or 403 for a close before accept).
 * worker → front (exactly one of RESPONSE, END, ABORT or REVOKED ends every REQ)
 *   READY       id 0, JSON {pid, python, interface}: the app is imported
 *               (interface: "wsgi" or "asgi"; an ASGI app's lifespan startup is done).
 *   BOOT_ERROR  id 0, the traceback (UTF-8): the app failed to import.
 *   RESPONSE    the whole response: u32 head length, head block, body.
 *   START       the head block only; BODY / FILE frames follow, then END.
 *               Head block: latin-1 `STATUS\0Name\0Value\0Name\0Value...`.
 *   START_TRAILERS  as START, and TRAILERS frames come after the body, before END.
 *   BODY        a chunk of the body.
 *   FILE        `offset\0length\0dev\0inode\0path`: the front streams that
 *               region of the file (checked against dev and inode).
 *   TRAILERS    trailer fields, latin-1 `Name\0Value\0...` (the ASGI
 *               http.response.trailers extension).
 *   END         the response is complete.
 *   ABORT       the app failed after the head went out: cut the connection.
 *   REVOKED     the request was never started (REVOKE, or the worker is leaving).
 *   HEARTBEAT   id 0, empty: an ASGI worker's event loop is not blocked (sent
 *               every min(1 s, timeout / 4) while --timeout is on).
 *   LEAVING     id 0, empty: the worker leaves (SIGTERM); it answered every
 *               request it started, so the front sends elsewhere those it
 *               has not answered (sent after its last read).
 *   EXITED      (from the template) the child with pid `id` exited; payload:
 *               its exit code, or minus the signal that killed it.
 *   WS_ACCEPT   the app accepted the WebSocket: latin-1
 *               `SUBPROTOCOL\0Name\0Value...` (subprotocol '' for none).
 *               The socket's END comes when the app has returned.
 * both ways, on an open WebSocket
 *   WS_TEXT     a text message (UTF-8); WS_BINARY a binary one.
 *   WS_CLOSE    u16 close code, then the reason (UTF-8): from the worker,
 *               the app closes; from the front, the socket closed (the
 *               app's websocket.disconnect).
 *   WS_PAUSE    the receiver holds too much of this socket's messages:
 *               stop sending them until WS_RESUME. From the worker, also
 *               for a streamed request body (REQ_STREAM); from the front,
 *               also for an ASGI response its client is far behind on.
 */

export const enum Frame {
  REQ = 1,
  CANCEL = 2,
  REVOKE = 3,
  FORK = 4,
  WS_OPEN = 5,
  REQ_STREAM = 6,
  REQ_BODY = 7,
  REQ_END = 8,
  READY = 10,
  BOOT_ERROR = 11,
  RESPONSE = 12,
  START = 13,
  BODY = 14,
  FILE = 15,
  END = 16,
  ABORT = 17,
  REVOKED = 18,
  EXITED = 19,
  HEARTBEAT = 20,
  WS_ACCEPT = 21,
  WS_TEXT = 22,
  WS_BINARY = 23,
  WS_CLOSE = 24,
  WS_PAUSE = 25,
  WS_RESUME = 26,
  START_TRAILERS = 27,
  TRAILERS = 28,
  LEAVING = 29,
}

export const HEADER_SIZE = 9;

/** Encodes a REQ frame: one allocation, one latin-1 write. */
export function encodeRequest(id: number, environ: string, body: Buffer | null): Buffer {
  const envLen = Buffer.byteLength(environ, 'latin1');
  const bodyLen = body === null ? 0 : body.length;
  const payloadLen = 4 + envLen + bodyLen;
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payloadLen);
  writeRequestHeader(frame, id, envLen, bodyLen);
  frame.write(environ, 13, envLen, 'latin1');
  if (body !== null) body.copy(frame, 13 + envLen);
  return frame;
}

/** A REQ frame's first 13 bytes: its header, then the request block's length. */
export function writeRequestHeader(frame: Buffer, id: number, blockLength: number, bodyLength: number): void {
  frame[0] = Frame.REQ;
  frame.writeUInt32LE(id, 1);
  frame.writeUInt32LE(4 + blockLength + bodyLength, 5);
  frame.writeUInt32LE(blockLength, 9);
}

/** Encodes a frame with a u16 code and a UTF-8 text (WS_CLOSE). */
export function encodeClose(id: number, code: number, reason: string): Buffer {
  const len = 2 + Buffer.byteLength(reason);
  const frame = Buffer.allocUnsafe(HEADER_SIZE + len);
  frame[0] = Frame.WS_CLOSE;
  frame.writeUInt32LE(id, 1);
  frame.writeUInt32LE(len, 5);
  frame.writeUInt16LE(code, HEADER_SIZE);
  frame.write(reason, HEADER_SIZE + 2, 'utf8');
  return frame;
}

/** Encodes a frame with no payload (CANCEL, REVOKE). */
export function encodeEmpty(type: Frame, id: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE);
  frame[0] = type;
  frame.writeUInt32LE(id, 1);
  frame.writeUInt32LE(0, 5);
  return frame;
}

/** Encodes any frame; the worker side uses this shape, tests use it to play a worker. */
export function encodeFrame(type: Frame, id: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame[0] = type;
  frame.writeUInt32LE(id, 1);
  frame.writeUInt32LE(payload.length, 5);
  payload.copy(frame, HEADER_SIZE);
  return frame;
}

/** Splits a head block into [status line, name, value, name, value, ...]. */
export function decodeHead(block: Buffer, start = 0, end = block.length): string[] {
  return block.toString('latin1', start, end).split('\0');
}

/** A TRAILERS payload as `[[name, value], ...]`. */
export function decodeFields(payload: Buffer): Array<[string, string]> {
  const flat = payload.length === 0 ? [] : payload.toString('latin1').split('\0');
  const fields: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) fields.push([flat[i]!, flat[i + 1]!]);
  return fields;
}

/** The RESPONSE payload: head block and body. */
export function decodeResponse(payload: Buffer): { head: string[]; body: Buffer } {
  const headEnd = responseHeadEnd(payload);
  return { head: decodeHead(payload, 4, headEnd), body: payload.subarray(headEnd) };
}

/** Where a RESPONSE payload's head block ends and its body starts (the block starts at 4). */
export function responseHeadEnd(payload: Buffer): number {
  return 4 + payload.readUInt32LE(0);
}

export interface FileSpec {
  offset: number;
  length: number;
  dev: number;
  ino: number;
  path: Buffer;
}

export function decodeFile(payload: Buffer): FileSpec {
  const fields: number[] = [];
  let pos = 0;
  for (let i = 0; i < 4; i++) {
    const nul = payload.indexOf(0, pos);
    if (nul < 0) throw new Error('malformed FILE frame');
    fields.push(Number(payload.toString('latin1', pos, nul)));
    pos = nul + 1;
  }
  return { offset: fields[0]!, length: fields[1]!, dev: fields[2]!, ino: fields[3]!, path: payload.subarray(pos) };
}

export type FrameHandler = (type: number, id: number, payload: Buffer) => void;

/**
 * Cuts a byte stream into frames. Payloads are views into the received
 * chunk (no copy) unless a frame straddles two chunks.
 */
export class FrameDecoder {
  private rest: Buffer | null = null;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let pos = 0;
    const size = buf.length;
    while (size - pos >= HEADER_SIZE) {
      const length = buf.readUInt32LE(pos + 5);
      const end = pos + HEADER_SIZE + length;
      if (end > size) break;
      this.onFrame(buf[pos]!, buf.readUInt32LE(pos + 1), buf.subarray(pos + HEADER_SIZE, end));
      pos = end;
    }
    if (pos < size) this.rest = buf.subarray(pos);
  }

  /** Bytes received that do not yet make a whole frame. */
  get buffered(): number {
    return this.rest === null ? 0 : this.rest.length;
  }
}
