/**
 * Peers as settings name them (forwarded_allow_ips, a cache's purge_allow):
 * IP addresses, CIDR blocks, `unix` for unix-socket peers (which have no
 * address) and `*` for anyone.
 */
import { BlockList, isIP } from 'node:net';

export class PeerList {
  private readonly list = new BlockList();
  /** Unix-socket peers are on the list. */
  readonly unix: boolean;

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

  /** Whether an IP address is on the list. */
  has(addr: string): boolean {
    return this.list.check(addr, isIP(addr) === 6 ? 'ipv6' : 'ipv4');
  }

  /** Whether a connection's peer is on the list: its remoteAddress (IPv4-mapped or not), undefined on a unix socket. */
  hasPeer(remoteAddress: string | undefined): boolean {
    if (remoteAddress === undefined) return this.unix;
    return this.has(remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress);
  }
}
