/**
 * An upstream of the `proxy` action: what upstream-address.ts reads
 * (`host:port`, `[IPv6]:port`, `unix:PATH`), or the same behind `http://` or
 * `https://` (TLS, the certificate checked against the host name).
 */
import { formatUpstream, parseUpstream } from './upstream-address.js';

export interface ProxyTarget {
  /** The origin undici connects to (for a unix socket, a stand-in: the path is `socketPath`). */
  origin: string;
  socketPath?: string;
  tls: boolean;
  /** host:port as the upstream knows itself (Location rewriting, health checks); `localhost` for a unix socket. */
  authority: string;
  /** For logs: the address as configured. */
  name: string;
}

/**
 * What each request tells undici its TLS server name is: always the same
 * per upstream, so that undici, which otherwise takes it from the Host
 * header and reconnects when it changes, keeps its connections (the name
 * actually used is the connector's, see http-proxy.ts).
 */
export function requestServername(target: ProxyTarget): { servername?: string } {
  return target.tls ? { servername: target.authority } : {};
}

/** The target, or why the text is not one. */
export function parseProxyTarget(text: string): ProxyTarget | string {
  const scheme = /^(https?):\/\//i.exec(text);
  const tls = scheme !== null && scheme[1]!.toLowerCase() === 'https';
  let rest = scheme === null ? text : text.slice(scheme[0].length).replace(/\/$/, '');
  if (scheme === null && /^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return 'must be HOST:PORT, unix:PATH, http://HOST:PORT or https://HOST:PORT (no other scheme)';
  // With a scheme, the port may be left out, as in a URL.
  if (scheme !== null && !rest.startsWith('unix:') && !/:\d+$/.test(rest)) rest += tls ? ':443' : ':80';
  const address = parseUpstream(rest);
  if (typeof address === 'string') return address;
  if (address.kind === 'unix') {
    if (tls) return 'https:// needs HOST:PORT, not a unix socket';
    return { origin: 'http://localhost', socketPath: address.path, tls: false, authority: 'localhost', name: text };
  }
  const authority = formatUpstream(address);
  return { origin: `${tls ? 'https' : 'http'}://${authority}`, tls, authority, name: text };
}
