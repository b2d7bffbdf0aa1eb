/**
 * The uwsgi packet (uWSGI's own protocol): a 4-byte header (modifier1, the
 * size of the vars as 16 bits little-endian, modifier2), then the vars as
 * pairs of 16-bit little-endian length-prefixed strings; the body follows
 * the packet. The vars block cannot pass 65535 bytes: such a request is
 * refused (431) rather than sent cut. No npm package implements it.
 */

export const UWSGI_MAX_VARS = 0xffff;

/** The packet, or null when its vars do not fit the 16-bit size. */
export function encodeUwsgiPacket(pairs: readonly (readonly [string, string])[], modifier1 = 0, modifier2 = 0): Buffer | null {
  let size = 0;
  const parts: Buffer[] = [Buffer.alloc(4)];
  for (const [name, value] of pairs) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    size += 4 + n.length + v.length;
    if (size > UWSGI_MAX_VARS) return null;
    const nl = Buffer.alloc(2);
    nl.writeUInt16LE(n.length);
    const vl = Buffer.alloc(2);
    vl.writeUInt16LE(v.length);
    parts.push(nl, n, vl, v);
  }
  const head = parts[0]!;
  head[0] = modifier1;
  head.writeUInt16LE(size, 1);
  head[3] = modifier2;
  return Buffer.concat(parts, 4 + size);
}

export interface UwsgiPacket {
  modifier1: number;
  modifier2: number;
  pairs: [string, string][];
  /** Bytes of `data` the packet took. */
  used: number;
}

/** The packet at the start of `data`; null while incomplete; an error message when the vars are malformed. */
export function decodeUwsgiPacket(data: Buffer): UwsgiPacket | null | string {
  if (data.length < 4) return null;
  const size = data.readUInt16LE(1);
  if (data.length < 4 + size) return null;
  const pairs: [string, string][] = [];
  const end = 4 + size;
  let at = 4;
  const field = (): string | null => {
    if (at + 2 > end) return null;
    const n = data.readUInt16LE(at);
    if (at + 2 + n > end) return null;
    at += 2 + n;
    return data.toString('latin1', at - n, at);
  };
  while (at < end) {
    const name = field();
    const value = name === null ? null : field();
    if (value === null) return 'the vars are not length-prefixed pairs';
    pairs.push([name!, value]);
  }
  return { modifier1: data[0]!, modifier2: data[3]!, pairs, used: end };
}
