/** Listen addresses in gunicorn's syntax: `HOST:PORT`, `[::1]:PORT`, `HOST`, `unix:PATH`. */

export type BindAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseBind(text: string): { address?: BindAddress; problem?: string } {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    return path ? { address: { kind: 'unix', path } } : { problem: 'unix: needs a socket path' };
  }
  let host = text;
  let portText = '8000';
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2] ?? '8000';
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    if (text.indexOf(':') !== colon) return { problem: 'IPv6 addresses go in brackets, e.g. [::1]:8000' };
    host = text.slice(0, colon) || '0.0.0.0';
    portText = text.slice(colon + 1);
  }
  if (!host) return { problem: 'missing host' };
  // Node would take a bare number for an IPv4 address (8080 is 0.0.31.144): it is always a port meant.
  if (/^\d+$/.test(host)) return { problem: `a host is missing: :${host} listens on every interface, 127.0.0.1:${host} on this machine alone` };
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) return { problem: 'port must be a number from 0 to 65535' };
  return { address: { kind: 'tcp', host, port: Number(portText) } };
}

export function formatBind(address: BindAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
