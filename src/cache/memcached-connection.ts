/**
 * A memcached connection (memjs, the binary protocol) that never fails a
 * request: every operation has a deadline (memjs can leave a promise pending
 * when its connection breaks), a failure pauses the connection for a second
 * (the next requests do not wait for it again), and both answer a given
 * fallback value, with a log line at most every few seconds.
 */
import { createRequire } from 'node:module';
import type memjs from 'memjs';
import type { Logger } from '../log/logger.js';

const TIMEOUT_S = 0.25;
const PAUSE_MS = 1000;
/** A whole operation (a get with its tags' versions, a put) past this is a failure. */
const DEADLINE_MS = 1000;
const WARN_EVERY_MS = 5000;

export class MemcachedConnection {
  readonly client: memjs.Client;
  private pausedUntil = 0;
  private warnedAt = -Infinity;

  constructor(
    /** HOST:PORT */
    readonly address: string,
    private readonly logger: Logger,
    /** Names the user's setting in log lines. */
    private readonly label: string,
  ) {
    // Loaded only when memcached is used: servers without it do not carry its memory.
    const { Client } = createRequire(import.meta.url)('memjs') as typeof memjs;
    this.client = Client.create(address, { retries: 0, timeout: TIMEOUT_S, conntimeout: TIMEOUT_S, keepAlive: true, logger: { log: () => {} } });
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
      if (now - this.warnedAt >= WARN_EVERY_MS) {
        this.warnedAt = now;
        this.logger.warning(`${this.label}: ${what} failed, answering as a miss: ${(err as Error).message}`);
      }
      return otherwise;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.client.close();
  }
}
