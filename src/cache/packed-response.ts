/**
 * A stored response as one Buffer, for the memory store: a fixed binary
 * head (status, times, the policy's numbers and flags), its strings as one
 * run of length-prefixed text, then the body. A response the store keeps is
 * then one off-heap block and a few small objects, not the dozen and more a
 * StoredResponse and its policy are made of: those would each survive the
 * young generation, be copied and promoted, and be marked on every full
 * collection for as long as the response is stored. It is unpacked when it
 * answers (the first hit).
 *
 * Written by hand, not as JSON (store-codec.ts, the shared stores' wire
 * format): a miss pays for this on every response, and JSON.stringify of a
 * policy costs several times the rest of storing it.
 */
import CachePolicy from 'http-cache-semantics';
import type { StoredResponse } from './cache-policy.js';
import type { HeaderMap } from './capture-response.js';

/** Bumped when the layout changes (packed responses live only in this process, so never read across versions). */
const VERSION = 1;

const MUST_REVALIDATE = 1;
const SHARED = 2;
const IGNORE_CARGO_CULT = 4;
const NO_AUTHORIZATION = 8;
const HAS_TAG_VERSIONS = 16;

/** Offsets in the fixed head. */
const FLAGS = 1;
const STATUS = 2;
const POLICY_STATUS = 4;
const TEXT_LENGTH = 8;
const ERROR_UNTIL = 16;
const KEEP_UNTIL = 24;
const RESPONSE_TIME = 32;
const HEURISTIC = 40;
const IMMUTABLE_MIN_TTL = 48;
const HEAD_SIZE = 56;

/** A record as the policy and the headers keep them (a request header copy may hold names without a value, left out as JSON leaves them). */
type Flat = Record<string, string | string[] | boolean | undefined> | null | undefined;

/** The strings of a response as `length:text` tokens, one after another. */
class Text {
  s = '';

  put(value: string): void {
    this.s += `${value.length}:${value}`;
  }

  /** A string that may be missing. */
  maybe(value: string | undefined): void {
    this.put(value === undefined ? '-' : `s${value}`);
  }

  /** A flat record: its size ('-' for none), then each name and value ('s' string, 't'/'f' boolean, 'a' and a count: a list). */
  record(rec: Flat): void {
    if (rec === null || rec === undefined) return this.put('-');
    let n = 0;
    for (const name in rec) if (rec[name] !== undefined) n++;
    this.put(String(n));
    for (const name in rec) {
      const value = rec[name];
      if (value === undefined) continue;
      this.put(name);
      if (typeof value === 'string') this.put(`s${value}`);
      else if (typeof value === 'boolean') this.put(value ? 't' : 'f');
      else {
        this.put(`a${value.length}`);
        for (const v of value) this.put(v);
      }
    }
  }
}

/** Reads the tokens Text wrote. */
class Reader {
  at = 0;

  constructor(private readonly s: string) {}

  next(): string {
    const colon = this.s.indexOf(':', this.at);
    const length = Number(this.s.slice(this.at, colon));
    if (colon < 0 || !Number.isInteger(length)) throw new Error('bad packed response');
    this.at = colon + 1 + length;
    return this.s.slice(colon + 1, this.at);
  }

  maybe(): string | undefined {
    const token = this.next();
    return token === '-' ? undefined : token.slice(1);
  }

  record(): Record<string, string | string[] | boolean> | null {
    const size = this.next();
    if (size === '-') return null;
    const rec: Record<string, string | string[] | boolean> = {};
    for (let n = Number(size); n > 0; n--) {
      const name = this.next();
      const value = this.next();
      const kind = value[0];
      if (kind === 's') rec[name] = value.slice(1);
      else if (kind === 't' || kind === 'f') rec[name] = kind === 't';
      else {
        const list: string[] = [];
        for (let i = Number(value.slice(1)); i > 0; i--) list.push(this.next());
        rec[name] = list;
      }
    }
    return rec;
  }
}

export function packResponse(stored: StoredResponse): Buffer {
  const p = stored.policy.toObject() as CachePolicy.CachePolicyObject & { icc?: boolean };
  const text = new Text();
  text.put(stored.variant);
  text.put(String(stored.tags.length));
  for (const tag of stored.tags) text.put(tag);
  text.record(stored.headers);
  text.record(stored.tagVersions);
  text.maybe(p.m);
  text.maybe(p.u);
  text.maybe(p.h);
  text.record(p.resh);
  text.record(p.rescc);
  text.record(p.reqh);
  text.record(p.reqcc);
  const textLength = Buffer.byteLength(text.s);
  const body = stored.body;
  // Memory of its own, of its exact size: a slice of a shared pool would keep the pool's other bytes.
  const blob = Buffer.allocUnsafeSlow(HEAD_SIZE + textLength + body.length);
  blob[0] = VERSION;
  blob[FLAGS] =
    (stored.mustRevalidate ? MUST_REVALIDATE : 0) |
    (p.sh ? SHARED : 0) |
    (p.icc === true ? IGNORE_CARGO_CULT : 0) |
    (p.a ? NO_AUTHORIZATION : 0) |
    (stored.tagVersions !== undefined ? HAS_TAG_VERSIONS : 0);
  blob.writeUInt16LE(stored.status, STATUS);
  blob.writeUInt16LE(p.st, POLICY_STATUS);
  blob.writeUInt32LE(textLength, TEXT_LENGTH);
  blob.writeDoubleLE(stored.errorUntil, ERROR_UNTIL);
  blob.writeDoubleLE(stored.keepUntil, KEEP_UNTIL);
  blob.writeDoubleLE(p.t, RESPONSE_TIME);
  blob.writeDoubleLE(p.ch, HEURISTIC);
  blob.writeDoubleLE(p.imm, IMMUTABLE_MIN_TTL);
  blob.write(text.s, HEAD_SIZE, textLength, 'utf8');
  body.copy(blob, HEAD_SIZE + textLength);
  return blob;
}

/** The response packResponse packed; its body is a view of `blob`. Throws if `blob` is not one. */
export function unpackResponse(blob: Buffer): StoredResponse {
  if (blob[0] !== VERSION) throw new Error('bad packed response');
  const flags = blob[FLAGS]!;
  const textLength = blob.readUInt32LE(TEXT_LENGTH);
  const text = new Reader(blob.toString('utf8', HEAD_SIZE, HEAD_SIZE + textLength));
  const variant = text.next();
  const tags: string[] = [];
  for (let n = Number(text.next()); n > 0; n--) tags.push(text.next());
  const headers = text.record() as HeaderMap;
  const tagVersions = text.record() as Record<string, string> | null;
  const policy = CachePolicy.fromObject({
    v: 1,
    t: blob.readDoubleLE(RESPONSE_TIME),
    sh: (flags & SHARED) !== 0,
    ch: blob.readDoubleLE(HEURISTIC),
    imm: blob.readDoubleLE(IMMUTABLE_MIN_TTL),
    icc: (flags & IGNORE_CARGO_CULT) !== 0,
    st: blob.readUInt16LE(POLICY_STATUS),
    m: text.maybe(),
    u: text.maybe(),
    h: text.maybe(),
    resh: text.record(),
    rescc: text.record(),
    a: (flags & NO_AUTHORIZATION) !== 0,
    reqh: text.record(),
    reqcc: text.record(),
  } as CachePolicy.CachePolicyObject);
  const stored: StoredResponse = {
    status: blob.readUInt16LE(STATUS),
    headers,
    body: blob.subarray(HEAD_SIZE + textLength),
    policy,
    variant,
    tags,
    mustRevalidate: (flags & MUST_REVALIDATE) !== 0,
    errorUntil: blob.readDoubleLE(ERROR_UNTIL),
    keepUntil: blob.readDoubleLE(KEEP_UNTIL),
  };
  if ((flags & HAS_TAG_VERSIONS) !== 0) stored.tagVersions = tagVersions!;
  return stored;
}

/** The Vary values a packed response was stored for (StoredResponse.variant), without unpacking the rest. */
export function packedVariant(blob: Buffer): string {
  const textLength = blob.readUInt32LE(TEXT_LENGTH);
  // The variant is the first token: its length, a colon, itself.
  const head = blob.toString('utf8', HEAD_SIZE, HEAD_SIZE + textLength);
  return new Reader(head).next();
}

/** When a packed response is of no more use (StoredResponse.keepUntil). */
export function packedKeepUntil(blob: Buffer): number {
  return blob.readDoubleLE(KEEP_UNTIL);
}
