/**
 * A stored response as bytes, for the memory store: a fixed binary head
 * (status, times, the policy's numbers and flags, its length), a descriptor
 * per string, list and record (kind and length), the strings' text run
 * together, then the body. A response the store keeps is then bytes in
 * memory of the store's (slab-blocks.ts), not the dozen and more objects a
 * StoredResponse and its policy are made of: those would each survive the
 * young generation, be copied and promoted, and be marked on every full
 * collection for as long as the response is stored. It is unpacked when it
 * first answers.
 *
 * Written by hand, not as JSON (store-codec.ts, the shared stores' wire
 * format): a miss pays for this on every response, and JSON.stringify of a
 * policy costs several times the rest of storing it.
 */
import CachePolicy from 'http-cache-semantics';
import type { StoredResponse } from './cache-policy.js';
import type { HeaderMap } from './capture-response.js';

/** Bumped when the layout changes (packed responses live only in this process, so never read across versions). */
const VERSION = 3;

const MUST_REVALIDATE = 1;
const SHARED = 2;
const IGNORE_CARGO_CULT = 4;
const NO_AUTHORIZATION = 8;

/** Offsets in the fixed head. */
const FLAGS = 1;
const STATUS = 2;
const POLICY_STATUS = 4;
const TOKENS = 8;
const TEXT_LENGTH = 12;
const ERROR_UNTIL = 16;
const KEEP_UNTIL = 24;
const RESPONSE_TIME = 32;
const HEURISTIC = 40;
const IMMUTABLE_MIN_TTL = 48;
/** The whole packed response's length. */
const LENGTH = 56;
const HEAD_SIZE = 60;

/**
 * What a token is: its kind in the low bits of its descriptor (a u32), the
 * length of its text (UTF-16 units) or its count above them.
 */
const STRING = 0;
const TRUE = 1;
const FALSE = 2;
/** A list of strings: its count, then each. */
const LIST = 3;
/** A record: its count, then each name and value. */
const RECORD = 4;
/** An absent string or record. */
const NONE = 5;
const KIND_BITS = 3;
const KIND_MASK = 7;

/** A record as the policy and the headers keep them (a request header copy may hold names without a value, left out as JSON leaves them). */
type Flat = Record<string, string | string[] | boolean | undefined> | null | undefined;
type Value = string | string[] | boolean;

/**
 * The tokens of the run being packed: descriptors, and its strings, to be
 * joined into one text (joined once: building the text piece by piece would
 * leave a string behind for every piece). Kept from one run to the next, so
 * packing one grows no list.
 */
let descs = new Uint32Array(256);
let nDescs = 0;
const texts: string[] = [];
let nTexts = 0;

function desc(d: number): void {
  if (nDescs === descs.length) {
    const more = new Uint32Array(2 * descs.length);
    more.set(descs);
    descs = more;
  }
  descs[nDescs++] = d;
}

function put(value: string | undefined): void {
  if (value === undefined) return desc(NONE);
  desc((value.length << KIND_BITS) | STRING);
  texts[nTexts++] = value;
}

function putValue(value: Value): void {
  if (typeof value === 'string') return put(value);
  if (typeof value === 'boolean') return desc(value ? TRUE : FALSE);
  desc((value.length << KIND_BITS) | LIST);
  for (const v of value) put(v);
}

function putRecord(rec: Flat): void {
  if (rec === null || rec === undefined) return desc(NONE);
  const count = nDescs;
  desc(RECORD);
  let n = 0;
  for (const name in rec) {
    const value = rec[name];
    if (value === undefined) continue;
    put(name);
    putValue(value);
    n++;
  }
  descs[count] = (n << KIND_BITS) | RECORD;
}

/** Reads the tokens packResponse wrote. */
class Reader {
  private d = 0;
  private at = 0;

  constructor(
    private readonly blob: Buffer,
    private readonly text: string,
  ) {}

  private desc(): number {
    return this.blob.readUInt32LE(HEAD_SIZE + 4 * this.d++);
  }

  private string(desc: number): string {
    const end = this.at + (desc >>> KIND_BITS);
    const s = this.text.slice(this.at, end);
    this.at = end;
    return s;
  }

  next(): string | undefined {
    const desc = this.desc();
    return (desc & KIND_MASK) === NONE ? undefined : this.string(desc);
  }

  value(): Value {
    const desc = this.desc();
    const kind = desc & KIND_MASK;
    if (kind === STRING) return this.string(desc);
    if (kind === TRUE || kind === FALSE) return kind === TRUE;
    const list: string[] = [];
    for (let n = desc >>> KIND_BITS; n > 0; n--) list.push(this.next()!);
    return list;
  }

  record(): Record<string, Value> | null {
    const desc = this.desc();
    if ((desc & KIND_MASK) === NONE) return null;
    const rec: Record<string, Value> = {};
    for (let n = desc >>> KIND_BITS; n > 0; n--) {
      const name = this.next()!;
      rec[name] = this.value();
    }
    return rec;
  }
}

/**
 * Tokens packed before, as they go into a block: their descriptors (u32,
 * little-endian) and their text's UTF-8 bytes.
 */
interface Run {
  count: number;
  descs: Buffer;
  text: Buffer;
}

/** The tokens put since nDescs and nTexts were reset, as a run. */
function takeRun(): Run {
  const out = Buffer.allocUnsafe(4 * nDescs);
  for (let i = 0; i < nDescs; i++) out.writeUInt32LE(descs[i]!, 4 * i);
  texts.length = nTexts;
  return { count: nDescs, descs: out, text: Buffer.from(texts.join(''), 'utf8') };
}

/**
 * The policy's tokens made last, and what they were made from: a policy
 * made from the last one alike (cache-policy.ts) shares its parsed parts,
 * which the library never writes to once made, so the same objects pack
 * to the same bytes.
 */
let lastPolicy: { m: string | undefined; h: string | undefined; resh: Flat; rescc: Flat; reqh: Flat; reqcc: Flat; run: Run } | null = null;

function policyRun(p: CachePolicy.CachePolicyObject): Run {
  const last = lastPolicy;
  if (last !== null && last.resh === p.resh && last.rescc === p.rescc && last.reqh === p.reqh && last.reqcc === p.reqcc && last.m === p.m && last.h === p.h) return last.run;
  nDescs = nTexts = 0;
  put(p.m);
  put(p.h);
  putRecord(p.resh);
  putRecord(p.rescc);
  putRecord(p.reqh);
  putRecord(p.reqcc);
  const run = takeRun();
  lastPolicy = { m: p.m, h: p.h, resh: p.resh, rescc: p.rescc, reqh: p.reqh, reqcc: p.reqcc, run };
  return run;
}

/** Whether two header records have the same names, in the same order, with the same values. */
function sameHeaders(a: HeaderMap, b: HeaderMap): boolean {
  let n = 0;
  for (const name in a) {
    const x = a[name]!;
    const y = b[name];
    if (x !== y && (typeof x === 'string' || !Array.isArray(y) || x.length !== y.length || x.some((v, i) => v !== y[i]))) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

/**
 * The response's tokens (tags, headers, tag versions) made last, the
 * headers they were made from and a copy of them: a route's responses
 * mostly carry the same headers, and responses stored from the same
 * captured headers share one record (cache-policy.ts' responseFacts, never
 * written to).
 */
let lastResponse: { source: HeaderMap; headers: HeaderMap; run: Run } | null = null;

function responseRun(stored: StoredResponse): Run {
  const plain = stored.tags.length === 0 && stored.tagVersions === undefined;
  const last = lastResponse;
  if (plain && last !== null && (stored.headers === last.source || sameHeaders(stored.headers, last.headers))) return last.run;
  nDescs = nTexts = 0;
  putValue(stored.tags);
  putRecord(stored.headers);
  putRecord(stored.tagVersions);
  const run = takeRun();
  if (plain) lastResponse = { source: stored.headers, headers: { ...stored.headers }, run };
  return run;
}

/** Whether `text` is ASCII (a key mostly is: its bytes are its characters, copied without a call into C++). */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * `alloc` gives the memory to pack into, of the size asked: by default a
 * block of its own, of its exact size (a slice of a pool shared with the
 * rest of the process would keep the pool's other bytes). The tokens are
 * the variant, the policy's, the response's, then the URL (the key, which
 * differs for every response: the runs before it are mostly those of the
 * response packed before).
 */
export function packResponse(stored: StoredResponse, alloc: (size: number) => Buffer = Buffer.allocUnsafeSlow): Buffer {
  const p = stored.policy.toObject() as CachePolicy.CachePolicyObject & { icc?: boolean };
  const policy = policyRun(p);
  const response = responseRun(stored);
  const { variant, body } = stored;
  const url = p.u ?? '';
  const variantLength = variant === '' ? 0 : Buffer.byteLength(variant);
  const ascii = isAscii(url);
  const urlLength = ascii ? url.length : Buffer.byteLength(url);
  const count = 1 + policy.count + response.count + 1;
  const textLength = variantLength + policy.text.length + response.text.length + urlLength;
  const textAt = HEAD_SIZE + 4 * count;
  const blob = alloc(textAt + textLength + body.length);
  blob[0] = VERSION;
  blob[FLAGS] = (stored.mustRevalidate ? MUST_REVALIDATE : 0) | (p.sh ? SHARED : 0) | (p.icc === true ? IGNORE_CARGO_CULT : 0) | (p.a ? NO_AUTHORIZATION : 0);
  blob.writeUInt16LE(stored.status, STATUS);
  blob.writeUInt16LE(p.st, POLICY_STATUS);
  blob.writeUInt32LE(count, TOKENS);
  blob.writeUInt32LE(textLength, TEXT_LENGTH);
  blob.writeUInt32LE(blob.length, LENGTH);
  blob.writeDoubleLE(stored.errorUntil, ERROR_UNTIL);
  blob.writeDoubleLE(stored.keepUntil, KEEP_UNTIL);
  blob.writeDoubleLE(p.t, RESPONSE_TIME);
  blob.writeDoubleLE(p.ch, HEURISTIC);
  blob.writeDoubleLE(p.imm, IMMUTABLE_MIN_TTL);
  let at = blob.writeUInt32LE((variant.length << KIND_BITS) | STRING, HEAD_SIZE);
  blob.set(policy.descs, at);
  at += policy.descs.length;
  blob.set(response.descs, at);
  at = blob.writeUInt32LE(p.u === undefined ? NONE : (url.length << KIND_BITS) | STRING, at + response.descs.length);
  if (variantLength > 0) at += blob.write(variant, at, variantLength, 'utf8');
  blob.set(policy.text, at);
  at += policy.text.length;
  blob.set(response.text, at);
  at += response.text.length;
  if (ascii) for (let i = 0; i < urlLength; i++) blob[at + i] = url.charCodeAt(i);
  else blob.write(url, at, urlLength, 'utf8');
  blob.set(body, textAt + textLength);
  return blob;
}

/** Where a packed response's text starts, and ends (its body starts). */
function textRange(blob: Buffer): [number, number] {
  const at = HEAD_SIZE + 4 * blob.readUInt32LE(TOKENS);
  return [at, at + blob.readUInt32LE(TEXT_LENGTH)];
}

/** The response packResponse packed; its body is a view of `blob`. Throws if `blob` is not one. */
export function unpackResponse(blob: Buffer): StoredResponse {
  if (blob[0] !== VERSION) throw new Error('not a packed response');
  const flags = blob[FLAGS]!;
  const [textAt, bodyAt] = textRange(blob);
  const r = new Reader(blob, blob.toString('utf8', textAt, bodyAt));
  const variant = r.next()!;
  const m = r.next();
  const h = r.next();
  const resh = r.record();
  const rescc = r.record();
  const reqh = r.record();
  const reqcc = r.record();
  const tags = r.value() as string[];
  const headers = r.record() as HeaderMap;
  const tagVersions = r.record() as Record<string, string> | null;
  const policy = CachePolicy.fromObject({
    v: 1,
    t: blob.readDoubleLE(RESPONSE_TIME),
    sh: (flags & SHARED) !== 0,
    ch: blob.readDoubleLE(HEURISTIC),
    imm: blob.readDoubleLE(IMMUTABLE_MIN_TTL),
    icc: (flags & IGNORE_CARGO_CULT) !== 0,
    st: blob.readUInt16LE(POLICY_STATUS),
    m,
    u: r.next(),
    h,
    resh,
    rescc,
    a: (flags & NO_AUTHORIZATION) !== 0,
    reqh,
    reqcc,
  } as CachePolicy.CachePolicyObject);
  const stored: StoredResponse = {
    status: blob.readUInt16LE(STATUS),
    headers,
    body: blob.subarray(bodyAt),
    policy,
    variant,
    tags,
    mustRevalidate: (flags & MUST_REVALIDATE) !== 0,
    errorUntil: blob.readDoubleLE(ERROR_UNTIL),
    keepUntil: blob.readDoubleLE(KEEP_UNTIL),
  };
  if (tagVersions !== null) stored.tagVersions = tagVersions;
  return stored;
}

/** The Vary values a packed response was stored for (StoredResponse.variant), without unpacking the rest. */
export function packedVariant(blob: Buffer): string {
  const [textAt, bodyAt] = textRange(blob);
  // The variant is the first token (its length counts UTF-16 units, not bytes).
  return blob.toString('utf8', textAt, bodyAt).slice(0, blob.readUInt32LE(HEAD_SIZE) >>> KIND_BITS);
}

/** When a packed response is of no more use (StoredResponse.keepUntil), without unpacking it. */
export function packedKeepUntil(blob: Buffer): number {
  return blob.readDoubleLE(KEEP_UNTIL);
}

/** The length of the packed response at `at` in `buf` (where a store keeps several one after another). */
export function packedLengthAt(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + LENGTH);
}
