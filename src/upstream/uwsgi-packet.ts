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
  const end = 4 + size;
  if (data.length < end) return null;
  // One string for the whole block, cut by the lengths: latin-1 is a byte per character, and one
  // native decode is far cheaper than one per name and value.
  const text = data.toString('latin1', 4, end);
  const pairs: [string, string][] = [];
  let at = 4;
  while (at < end) {
    if (at + 2 > end) return MALFORMED;
    const n = data[at]! | (data[at + 1]! << 8);
    const name = at + 2;
    at = name + n;
    if (at + 2 > end) return MALFORMED;
    const v = data[at]! | (data[at + 1]! << 8);
    const value = at + 2;
    at = value + v;
    if (at > end) return MALFORMED;
    pairs.push([text.slice(name - 4, name - 4 + n), text.slice(value - 4, at - 4)]);
  }
  return { modifier1: data[0]!, modifier2: data[3]!, pairs, used: end };
}

const MALFORMED = 'the vars are not length-prefixed pairs';
