/**
 * Which upstream a request goes to, as nginx's `upstream` block picks: round
 * robin by weight (nginx's smooth weighted round robin: weights 5,1,1 go
 * a a b a c a a, not a×5 then b and c), least connections (requests under
 * way over weight), or a consistent hash of a key (nginx's `hash ...
 * consistent`: each upstream owns points on a ring, so adding or removing
 * one moves only its share of the keys).
 *
 * Health: passive, as nginx's max_fails/fail_timeout (max_fails failures
 * within fail_timeout mark the upstream down for fail_timeout; one alone is
 * never marked down, as in nginx), and the verdict of active checks
 * (health-check.ts). A request is never sent twice to the same upstream: the
 * caller passes the ones it tried. Backup upstreams are picked, by the same
 * rule among themselves, only when no other upstream is usable.
 */
import type { Logger } from '../log/logger.js';

export type Balance = 'round_robin' | 'least_conn' | 'hash';

export interface Peer {
  readonly name: string;
  readonly weight: number;
  readonly maxFails: number;
  /** ms */
  readonly failTimeout: number;
  /** Requests under way. */
  active: number;
  /** Smooth weighted round robin's running weight. */
  current: number;
  fails: number;
  /** performance.now() of the first failure counted in `fails`. */
  firstFailAt: number;
  /** Marked down (passive) until this performance.now(). */
  downUntil: number;
  /** The active checks' verdict (true when there are none). */
  healthy: boolean;
  /** Picked only when no other upstream is usable (nginx's `backup`). */
  readonly backup: boolean;
}

/** Points per unit of weight on the hash ring (nginx uses 160). */
const POINTS = 160;

export class Balancer<P extends Peer = Peer> {
  private readonly ring: { point: number; peer: P }[] = [];
  private rotation = 0;
  private readonly primaries: readonly P[];
  private readonly backups: readonly P[];

  constructor(
    readonly peers: readonly P[],
    private readonly balance: Balance,
    private readonly logger: Logger,
  ) {
    this.primaries = peers.filter((p) => !p.backup);
    this.backups = peers.filter((p) => p.backup);
    if (balance !== 'hash') return;
    for (const peer of peers) for (let i = 0; i < POINTS * peer.weight; i++) this.ring.push({ point: fnv1a(`${peer.name}-${i}`), peer });
    this.ring.sort((a, b) => a.point - b.point);
  }

  /** The next upstream, skipping `tried` and those down; null when none is left. `key`: for hash. */
  pick(tried: ReadonlySet<P>, key: string): P | null {
    const now = performance.now();
    const usable = (p: P) => !tried.has(p) && p.healthy && p.downUntil <= now;
    if (this.balance === 'hash') {
      const ring = this.ring;
      const h = fnv1a(key);
      let lo = 0;
      let hi = ring.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ring[mid]!.point < h) lo = mid + 1;
        else hi = mid;
      }
      for (let i = 0; i < ring.length; i++) {
        const peer = ring[(lo + i) % ring.length]!.peer;
        if (usable(peer)) return peer;
      }
      return null;
    }
    return this.pickIn(this.primaries, usable) ?? (this.backups.length === 0 ? null : this.pickIn(this.backups, usable));
  }

  /** round_robin or least_conn among `group`. */
  private pickIn(group: readonly P[], usable: (p: P) => boolean): P | null {
    let best: P | null = null;
    if (this.balance === 'least_conn') {
      // Ties go round: the scan starts one further each time.
      const n = group.length;
      const start = this.rotation++ % n;
      for (let i = 0; i < n; i++) {
        const p = group[(start + i) % n]!;
        if (usable(p) && (best === null || p.active * best.weight < best.active * p.weight)) best = p;
      }
      return best;
    }
    let total = 0;
    for (const p of group) {
      if (!usable(p)) continue;
      p.current += p.weight;
      total += p.weight;
      if (best === null || p.current > best.current) best = p;
    }
    if (best !== null) best.current -= total;
    return best;
  }

  /** A failure (refused, reset, timed out, malformed, 502/503/504): counts toward max_fails. */
  failed(peer: Peer): void {
    if (peer.maxFails === 0 || this.peers.length === 1) return;
    const now = performance.now();
    if (now - peer.firstFailAt > peer.failTimeout) {
      peer.fails = 0;
      peer.firstFailAt = now;
    }
    if (++peer.fails < peer.maxFails) return;
    peer.downUntil = now + peer.failTimeout;
    peer.fails = 0;
    this.logger.warning(`upstream ${peer.name} marked down for ${peer.failTimeout / 1000} s after ${peer.maxFails} failure(s)`);
  }

  succeeded(peer: Peer): void {
    peer.fails = 0;
  }
}

/** 32-bit FNV-1a over UTF-16 code units: cheap, and spreads short keys well enough for a ring. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
