/**
 * A key's variants as bytes, for a shared store: a JSON head (each
 * variant's status, headers, policy and bookkeeping, and its body's length)
 * then the bodies one after another, so bodies travel as they are.
 */
import CachePolicy from 'http-cache-semantics';
import type { StoredResponse } from './cache-policy.js';

type Head = Omit<StoredResponse, 'body' | 'policy'> & { policy: CachePolicy.CachePolicyObject; length: number };

export function encodeVariants(variants: readonly StoredResponse[]): Buffer {
  const heads: Head[] = variants.map(({ body, policy, ...rest }) => ({ ...rest, policy: policy.toObject(), length: body.length }));
  const json = Buffer.from(JSON.stringify(heads));
  const size = Buffer.alloc(4);
  size.writeUInt32BE(json.length);
  return Buffer.concat([size, json, ...variants.map((v) => v.body)]);
}

/** The variants in `bytes`; empty when they are not what encodeVariants wrote (another program's value, a version change). */
export function decodeVariants(bytes: Buffer): StoredResponse[] {
  try {
    const size = bytes.readUInt32BE(0);
    const heads = JSON.parse(bytes.toString('utf8', 4, 4 + size)) as Head[];
    let at = 4 + size;
    return heads.map(({ length, policy, ...rest }) => {
      const body = bytes.subarray(at, at + length);
      at += length;
      if (body.length !== length) throw new Error('short value');
      return { ...rest, body, policy: CachePolicy.fromObject(policy) };
    });
  } catch {
    return [];
  }
}
