/** Who may send PURGE to a cached route: addresses, CIDR blocks, `unix` (unix-socket peers), `*` (default: loopback only). */
import { BlockList, isIP } from 'node:net';

export const DEFAULT_PURGE_ALLOW = ['127.0.0.1', '::1'];

export class PurgeAccess {
  private readonly list = new BlockList();
  private readonly unix: boolean;

  constructor(peers: readonly string[]) {
    this.unix = peers.includes('unix') || peers.includes('*');
    for (const peer of peers) {
      if (peer === 'unix') continue;
      if (peer === '*') {
        this.list.addSubnet('0.0.0.0', 0, 'ipv4');
        this.list.addSubnet('::', 0, 'ipv6');
        continue;
      }
      const [ip, bits] = peer.split('/') as [string, string | undefined];
      const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      this.list.addSubnet(ip, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
    }
  }

  /** Whether a connection's peer may purge (a unix-socket peer has no address). */
  allows(remoteAddress: string | undefined): boolean {
    if (remoteAddress === undefined) return this.unix;
    const addr = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
    return this.list.check(addr, isIP(addr) === 6 ? 'ipv6' : 'ipv4');
  }
}
