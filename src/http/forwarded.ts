/**
 * `forwarded_allow_ips` (gunicorn's name): which peers may tell us, by
 * X-Forwarded-For / -Proto / -Host or RFC 7239 `Forwarded`, who the client
 * really is. gatehouse is meant to be the edge server, so by default no peer
 * is trusted: anyone can send these headers, and believing them would let a
 * client pick its own REMOTE_ADDR or make an app build https:// links for an
 * http request. List your load balancer or CDN only when one sits in front.
 *
 * From a trusted peer:
 * - the client address is found as nginx's real_ip_recursive finds it:
 *   walking the list right to left, skipping addresses that are themselves
 *   trusted, the first untrusted one is the client (the leftmost if all are
 *   trusted); an entry that is not an IP address stops the walk;
 * - the scheme (http or https only) and the host are taken from the same hop;
 * - `Forwarded` wins over X-Forwarded-* for each of the three it gives.
 * Bad values are ignored, one by one. Routing still uses the Host the peer
 * sent (nginx routes on the Host it received too); the app sees the
 * forwarded one in HTTP_HOST. X-Forwarded-Port and -Prefix are not applied.
 */
import { isIP } from 'node:net';
import { PeerList } from './peer-list.js';
import type { RequestInfo } from './handler.js';
import type { Socket } from 'node:net';

/** What a trusted peer forwarded; each field only when the peer gave a valid one. */
export interface ForwardedRequest {
  /** The client's address, and its port when the peer said (Forwarded's `for="[::1]:4711"`). */
  addr?: string;
  port?: string;
  proto?: 'http' | 'https';
  host?: string;
}

/** Headers a proxy sets about the client: they reach the app only from a trusted peer. */
export const PROXY_HEADER = /^(?:x-forwarded-[a-z0-9-]+|forwarded|x-real-ip)$/i;

const kForwarded = Symbol('gatehouse.forwarded');
const kTrusted = Symbol('gatehouse.trustedPeer');
type ForwardedReq = RequestInfo & { [kForwarded]?: ForwardedRequest };
type TrustSocket = Socket & { [kTrusted]?: boolean };

/** What a trusted peer forwarded for this request; undefined when the peer is not trusted. */
export function forwardedOf(req: RequestInfo): ForwardedRequest | undefined {
  return (req as ForwardedReq)[kForwarded];
}

/** The client's address for the logs: the forwarded one from a trusted peer, else the socket's. */
export function clientAddress(req: RequestInfo): string {
  const fwd = (req as ForwardedReq)[kForwarded];
  if (fwd?.addr !== undefined) return fwd.addr;
  // An HTTP/2 request's socket no longer leads to the connection once its stream closed.
  const remote = 'peerAddress' in req ? (req.peerAddress as string | undefined) : req.socket.remoteAddress;
  if (remote === undefined) return '-';
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote;
}

/** A hop's address, as a proxy wrote it in X-Forwarded-For or Forwarded's for=. */
interface Node {
  addr: string;
  port?: string;
}

/** An address without IPv6 brackets or a port, or undefined when it is not an IP address. */
function parseNode(text: string): Node | undefined {
  let addr = text.trim();
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(addr);
  if (bracketed) [addr, port] = [bracketed[1]!, bracketed[2]];
  else {
    const v4 = /^([\d.]+):(\d{1,5})$/.exec(addr);
    if (v4) [addr, port] = [v4[1]!, v4[2]];
  }
  const family = isIP(addr);
  if (family === 0) return undefined;
  if (family === 6 && addr.toLowerCase().startsWith('::ffff:') && isIP(addr.slice(7)) === 4) addr = addr.slice(7);
  return { addr: family === 6 ? addr.toLowerCase() : addr, port };
}

/** host or host:port, a name or an IP literal, nothing else (it becomes HTTP_HOST). */
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function validProto(value: string | undefined): 'http' | 'https' | undefined {
  const v = value?.trim().toLowerCase();
  return v === 'http' || v === 'https' ? v : undefined;
}

function validHost(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v !== undefined && HOST.test(v) ? v : undefined;
}

/** A header's comma-separated values (Node joins repeated headers with ', '). */
function listOf(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',');
}

/** `for=...;proto=...;host=...` → lower-cased names and unquoted values; null when malformed. */
function parseElement(text: string): Map<string, string> | null {
  const pairs = new Map<string, string>();
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const m = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)=(?:([A-Za-z0-9!#$%&'*+.^_`|~:-]+)|"((?:[^"\\]|\\.)*)")\s*$/.exec(part);
    if (!m) return null;
    pairs.set(m[1]!.toLowerCase(), m[2] ?? m[3]!.replace(/\\(.)/g, '$1'));
  }
  return pairs;
}

export class TrustedProxies {
  private readonly peers: PeerList;

  constructor(peers: readonly string[]) {
    this.peers = new PeerList(peers);
  }

  /** Whether an address (as parsed from a header) is a trusted proxy. */
  private trusts(addr: string): boolean {
    return this.peers.has(addr);
  }

  /** Whether the connection's peer is trusted; remembered per connection. */
  private trustsPeer(socket: TrustSocket): boolean {
    let trusted = socket[kTrusted];
    if (trusted === undefined) {
      const remote = socket.remoteAddress;
      trusted = remote === undefined ? this.peers.unix : this.trusts(parseNode(remote)?.addr ?? remote);
      socket[kTrusted] = trusted;
    }
    return trusted;
  }

  /**
   * For a request from a trusted peer, works out what it forwarded and keeps
   * it on the request (see forwardedOf); undefined for any other peer.
   */
  resolve(req: RequestInfo): ForwardedRequest | undefined {
    if (!this.trustsPeer(req.socket)) return undefined;
    const h = req.headers as Record<string, string | undefined>;
    const fwd: ForwardedRequest = {};
    // X-Forwarded-*: the address hop first; Proto and Host are taken from the same hop when they list several.
    const xff = listOf(h['x-forwarded-for']);
    const hop = this.walk(xff.map((entry) => parseNode(entry)));
    if (hop.node !== undefined) fwd.addr = hop.node.addr;
    const sameHop = (values: string[]) => (values.length === 0 ? undefined : values[Math.max(0, values.length - 1 - hop.fromRight)]);
    fwd.proto = validProto(sameHop(listOf(h['x-forwarded-proto'])));
    fwd.host = validHost(sameHop(listOf(h['x-forwarded-host'])));
    // RFC 7239: one element per hop, each with what that proxy received.
    const header = h.forwarded;
    if (header !== undefined) {
      const parsed = listOf(header).map(parseElement);
      const elements = parsed.filter((e): e is Map<string, string> => e !== null);
      // One malformed element and the whole header is ignored: its hops could no longer be counted.
      if (elements.length === parsed.length) {
        const chosen = this.walk(elements.map((e) => (e.has('for') ? parseNode(e.get('for')!) : undefined)));
        const element = elements[elements.length - 1 - chosen.fromRight];
        if (chosen.node !== undefined) {
          fwd.addr = chosen.node.addr;
          fwd.port = chosen.node.port;
        }
        fwd.proto = validProto(element?.get('proto')) ?? fwd.proto;
        fwd.host = validHost(element?.get('host')) ?? fwd.host;
      }
    }
    (req as ForwardedReq)[kForwarded] = fwd;
    return fwd;
  }

  /**
   * Right to left over the hops' addresses: the first that is not a trusted
   * proxy is the client; an unusable one (not an IP) ends the walk there.
   * `fromRight` is the chosen hop's position counted from the right.
   */
  private walk(nodes: Array<Node | undefined>): { node?: Node; fromRight: number } {
    let found: { node?: Node; fromRight: number } = { fromRight: 0 };
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      const fromRight = nodes.length - 1 - i;
      // The hop's own fields still count; the address stays the nearest known one.
      if (node === undefined) return { node: found.node, fromRight };
      found = { node, fromRight };
      if (!this.trusts(node.addr)) break;
    }
    return found;
  }
}
