/**
 * Upstream host names resolved once per TTL (nginx's `resolver ... valid=`):
 * not fixed at start, so a back end that moves is followed, and not looked
 * up for every connection, which costs a trip through the thread pool's
 * getaddrinfo (and a proxy to a back end that closes each connection opens
 * one per request). The addresses of one name are used in turn. A name that
 * fails to resolve again keeps its last addresses until the next TTL.
 *
 * `lookup` has net.connect's signature, so it is given to the sockets'
 * connect options (undici's connector passes it on).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';

type Resolver = (host: string) => Promise<LookupAddress[]>;

interface Entry {
  addresses: LookupAddress[];
  /** performance.now() after which the name is resolved again. */
  expires: number;
  next: number;
  pending: Promise<LookupAddress[]> | null;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

export class DnsCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** ms */
    private readonly ttl: number,
    private readonly resolver: Resolver = (host) => dnsLookup(host, { all: true }),
  ) {}

  /** The name's addresses, from the cache while they are fresh. */
  async resolve(host: string): Promise<LookupAddress[]> {
    let entry = this.entries.get(host);
    if (entry !== undefined && performance.now() < entry.expires) return entry.addresses;
    if (entry?.pending) return entry.pending;
    entry ??= { addresses: [], expires: 0, next: 0, pending: null };
    this.entries.set(host, entry);
    const e = entry;
    e.pending = this.resolver(host).then(
      (addresses) => {
        e.addresses = addresses;
        e.expires = performance.now() + this.ttl;
        e.pending = null;
        return addresses;
      },
      (err: unknown) => {
        e.pending = null;
        if (e.addresses.length === 0) {
          this.entries.delete(host);
          throw err;
        }
        e.expires = performance.now() + this.ttl;
        return e.addresses;
      },
    );
    return e.pending;
  }

  /** For net.connect: one address in turn, or all of them when asked (`all`, as with autoSelectFamily). */
  readonly lookup = (host: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void => {
    this.resolve(host).then(
      (all) => {
        const family = options.family === 6 || options.family === 'IPv6' ? 6 : options.family === 4 || options.family === 'IPv4' ? 4 : 0;
        const fitting = family === 0 ? all : all.filter((a) => a.family === family);
        if (fitting.length === 0) return callback(Object.assign(new Error(`${host}: no IPv${family} address`), { code: 'ENOTFOUND' }), '');
        if (options.all) return callback(null, fitting);
        const entry = this.entries.get(host);
        const pick = fitting[(entry ? entry.next++ : 0) % fitting.length]!;
        callback(null, pick.address, pick.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}
