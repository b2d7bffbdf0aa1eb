/**
 * Active health checks for the `proxy` action: every `interval` each
 * upstream is asked for `path`; an answer with an expected status (any 2xx
 * or 3xx by default) within `timeout` is healthy. An unhealthy upstream gets
 * no requests (balancer.ts) until a check passes again. Each change is one
 * line in the error log.
 */
import type { ProxySettings } from '../config/proxy.js';
import type { Logger } from '../log/logger.js';
import type { ProxyPeer } from './proxy-exchange.js';
import { requestServername } from './proxy-target.js';

type CheckSettings = NonNullable<ProxySettings['health_check']>;

export class HealthChecks {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly peers: readonly ProxyPeer[],
    private readonly check: CheckSettings,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const round = () => {
      for (const peer of this.peers) void this.probe(peer);
    };
    round();
    this.timer = setInterval(round, this.check.interval * 1000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async probe(peer: ProxyPeer): Promise<void> {
    const ms = this.check.timeout * 1000;
    let why: string;
    try {
      const res = await peer.pool.request({ ...requestServername(peer.target), path: this.check.path, method: 'GET', headers: { host: peer.target.authority }, headersTimeout: ms, bodyTimeout: ms });
      await res.body.dump();
      const ok = this.check.status === undefined ? res.statusCode >= 200 && res.statusCode < 400 : this.check.status.includes(res.statusCode);
      why = ok ? '' : `answered ${res.statusCode}`;
    } catch (err) {
      why = (err as Error).message;
    }
    if (this.stopped || peer.healthy === (why === '')) return;
    peer.healthy = why === '';
    if (peer.healthy) this.logger.info(`upstream ${peer.name} passed its health check (${this.check.path}): back in use`);
    else this.logger.warning(`upstream ${peer.name} failed its health check (${this.check.path}: ${why}): no requests until it passes`);
  }
}
