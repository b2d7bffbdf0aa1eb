/**
 * A memcached connection (memjs, the binary protocol) that never fails a
 * request: every operation has a deadline (memjs can leave a promise pending
 * when its connection breaks), a failure pauses the connection for a second
 * (the next requests do not wait for it again), and both answer a given
 * fallback value, with a log line at most every few seconds.
 *
 * After a failure the connection starts clean: memjs (1.3.2) on a request's
 * deadline only ends the socket, keeps reading it, and keeps the part of an
 * answer it had read; what comes late, or that part, was then read as the
 * beginning of the next connection's answers (they went unanswered, or
 * wrong). Here every socket memjs opened is destroyed and what it had read
 * dropped (reset()).
 *
 * Compare-and-swap (a get that returns the item's CAS, a set or delete that
 * applies only while the item still has it) is written here: memjs (1.3.2,
 * its latest) has none, but its perform() sends any request, and CAS is a
 * field of the binary protocol's request header.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type memjs from 'memjs';
import type { Logger } from '../log/logger.js';

const TIMEOUT_S = 0.25;
const PAUSE_MS = 1000;
/** A whole operation (a get with its tags' versions, a put) past this is a failure. */
const DEADLINE_MS = 1000;
const WARN_EVERY_MS = 5000;

/** Binary protocol opcodes and statuses used by the CAS commands. */
const GET = 0x00;
const SET = 0x01;
const DELETE = 0x04;
const FOUND = 0;
const NOT_FOUND = 1;
const EXISTS = 2;
/** Where the CAS goes in a request's 24-byte header. */
const CAS_AT = 16;

/** What reset() touches of memjs's Server (lib/memjs/server.js). */
interface MemjsServer {
  _socket: Socket | undefined;
  connected: boolean;
  responseBuffer: Buffer;
  sock(sasl: boolean, go: (socket: Socket) => void): void;
  error(err: Error): void;
}

/** An item's value and CAS (both null when it is absent). */
export interface Versioned {
  value: Buffer | null;
  cas: Buffer | null;
}

export class MemcachedConnection {
  readonly client: memjs.Client;
  private readonly makeRequest: typeof memjs.Utils.makeRequestBuffer;
  private pausedUntil = 0;
  private warnedAt = -Infinity;
  /** Every socket memjs opened that is not closed yet. */
  private readonly sockets = new Set<Socket>();

  constructor(
    /** HOST:PORT */
    readonly address: string,
    private readonly logger: Logger,
    /** Names the user's setting in log lines. */
    private readonly label: string,
  ) {
    // Loaded only when memcached is used: servers without it do not carry its memory.
    const { Client, Utils } = createRequire(import.meta.url)('memjs') as typeof memjs;
    this.makeRequest = Utils.makeRequestBuffer;
    this.client = Client.create(address, { retries: 0, timeout: TIMEOUT_S, conntimeout: TIMEOUT_S, keepAlive: true, logger: { log: () => {} } });
    const sockets = this.sockets;
    for (const server of this.servers) {
      const sock = server.sock;
      server.sock = function (this: MemjsServer, sasl, go) {
        const had = this._socket;
        sock.call(this, sasl, go);
        const opened = this._socket;
        if (opened !== undefined && opened !== had) {
          sockets.add(opened);
          opened.once('close', () => sockets.delete(opened));
        }
      };
    }
  }

  private get servers(): MemjsServer[] {
    return (this.client as unknown as { servers: MemjsServer[] }).servers;
  }

  /** A failed connection starts clean: its requests fail, its sockets are destroyed, what they had read is dropped. */
  private reset(): void {
    for (const server of this.servers) {
      server.error(new Error('reset after a failure'));
      server._socket = undefined;
      server.connected = false;
      server.responseBuffer = Buffer.alloc(0);
    }
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Runs `command`, or answers `otherwise` when memcached is paused, fails or is late. */
  async run<T>(what: string, command: (client: memjs.Client) => Promise<T>, otherwise: T): Promise<T> {
    if (performance.now() < this.pausedUntil) return otherwise;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in time')), DEADLINE_MS);
    });
    try {
      return await Promise.race([command(this.client), deadline]);
    } catch (err) {
      const now = performance.now();
      this.pausedUntil = now + PAUSE_MS;
      this.reset();
      if (now - this.warnedAt >= WARN_EVERY_MS) {
        this.warnedAt = now;
        this.logger.warning(`${this.label}: ${what} failed, answering as a miss: ${(err as Error).message}`);
      }
      return otherwise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `key`'s value with its CAS, for setIfUnchanged and deleteIfUnchanged. */
  async gets(key: string): Promise<Versioned> {
    const response = await this.send(GET, key, Buffer.alloc(0), Buffer.alloc(0), null, [FOUND, NOT_FOUND]);
    return response.header.status === FOUND ? { value: response.val, cas: response.header.cas } : { value: null, cas: null };
  }

  /** Sets `key` only if it is unchanged since `cas` was read; false when another client changed or deleted it first. */
  async setIfUnchanged(key: string, value: Buffer, expires: number, cas: Buffer): Promise<boolean> {
    const extras = Buffer.alloc(8);
    extras.writeUInt32BE(expires, 4);
    return (await this.send(SET, key, extras, value, cas, [FOUND, NOT_FOUND, EXISTS])).header.status === FOUND;
  }

  /** Deletes `key` only if it is unchanged since `cas` was read. */
  async deleteIfUnchanged(key: string, cas: Buffer): Promise<boolean> {
    return (await this.send(DELETE, key, Buffer.alloc(0), Buffer.alloc(0), cas, [FOUND, NOT_FOUND, EXISTS])).header.status === FOUND;
  }

  /** One request (with `cas` in its header when given); rejects on a status not in `expected`. */
  private send(opcode: number, key: string, extras: Buffer, value: Buffer, cas: Buffer | null, expected: number[]): Promise<memjs.Response> {
    const client = this.client;
    client.incrSeq();
    const seq = client.seq;
    const request = this.makeRequest(opcode, key, extras, value, seq);
    cas?.copy(request, CAS_AT);
    return new Promise((resolve, reject) =>
      client.perform(key, request, seq, (err: Error | null, response: memjs.Response) => {
        if (err !== null) reject(err);
        else if (!expected.includes(response.header.status)) reject(new Error(`memcached answered status ${response.header.status}`));
        else resolve(response);
      }),
    );
  }

  close(): void {
    this.client.close();
  }
}
