/**
 * Where a back end listens, in nginx's words: `HOST:PORT`, `[IPv6]:PORT` or
 * `unix:PATH`. Shared by every upstream action (fastcgi, scgi, uwsgi, proxy).
 */
import type { NetConnectOpts } from 'node:net';

export type UpstreamAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseUpstream(text: string): UpstreamAddress | string {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    return path ? { kind: 'unix', path } : 'unix: needs a socket path';
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port < 1 || port > 65535) return 'must be HOST:PORT, [IPv6]:PORT or unix:PATH, with a port from 1 to 65535';
  return { kind: 'tcp', host: m[1] ?? m[2]!, port };
}

export function connectOptions(address: UpstreamAddress): NetConnectOpts {
  return address.kind === 'unix' ? { path: address.path } : { host: address.host, port: address.port };
}

export function formatUpstream(address: UpstreamAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
