/**
 * What an upgrade request needs beside request-intake.ts's routing: the
 * request an action with upgrade() gets (it adopts the socket, or declines
 * and the request is served as any other), and the head of an upgrade with a
 * body, read again without its `upgrade` option.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { RouteRequest, UpgradeRequest } from '../http/handler.js';
import { onClientEnd } from '../http/in-flight.js';
import type { ListenerInfo, Placement, RequestIntake } from './request-intake.js';

/**
 * The request's head as it came (llhttp checked it), without `upgrade` among
 * its Connection options (llhttp reads Proxy-Connection's too). Any option
 * that holds the word goes, so that llhttp cannot read it as an upgrade again.
 */
export function headWithoutUpgrade(req: IncomingMessage): Buffer {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    let value = raw[i + 1]!;
    const name = raw[i]!.toLowerCase();
    if (name === 'connection' || name === 'proxy-connection') {
      value = value.split(',').map((o) => o.trim()).filter((o) => o !== '' && !o.toLowerCase().includes('upgrade')).join(', ');
      if (value === '') continue;
    }
    text += `${raw[i]}: ${value}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** A socket's error listener while the front holds it outside node:http: the socket just closes. */
export function destroySocket(this: Socket): void {
  this.destroy();
}

/** An upgrade for an action (Handler.upgrade); decline() makes the ServerResponse only then. */
export class Upgrade implements UpgradeRequest {
  readonly scheme: string;
  readonly host: string;
  readonly prefix: string;
  readonly rest: string;
  readonly query: string;
  readonly maxRequestBody: number;

  constructor(
    private readonly intake: RequestIntake,
    readonly req: IncomingMessage,
    readonly socket: Socket,
    readonly head: Buffer,
    private readonly place: Placement,
    readonly log: RouteRequest['log'],
    private readonly listener: ListenerInfo,
    private readonly resume: ((socket: Socket) => void) | null,
  ) {
    ({ scheme: this.scheme, host: this.host, prefix: this.prefix, rest: this.rest, query: this.query, maxRequestBody: this.maxRequestBody } = place);
  }

  decline(): void {
    this.intake.declined(this, this.place, this.listener, this.resume);
  }

  adopt(): void {
    const socket = this.socket as AdoptedSocket;
    socket.removeListener('error', destroySocket);
    socket.removeListener('end', onClientEnd);
    socket.setTimeout(0);
    // net.Socket keeps its cleared timer object, and the addresses it read (re-read on demand while open).
    kTimeout ??= Object.getOwnPropertySymbols(socket).find((s) => s.description === 'timeout') ?? Symbol('none');
    socket[kTimeout] = null;
    socket._peername = undefined;
    socket._sockname = undefined;
  }
}

/** net.Socket's own slot for its timer (an internal symbol, found on the first socket adopted). */
let kTimeout: symbol | undefined;
type AdoptedSocket = Socket & { [key: symbol]: unknown; _peername?: unknown; _sockname?: unknown };
