/**
 * Writes a REQ frame's request block (a WSGI environ or an ASGI scope: the
 * wire's latin-1 fields separated by NUL, see frames.ts) straight into a
 * scratch buffer, then the frame from it in one copy. Built as a string, a
 * block is many heap objects (a piece per field, one per `+`) copied once
 * more into the frame; the young generation fills, and collects, that much
 * sooner.
 *
 * One writer serves one caller, which builds a block and takes it in the
 * same synchronous run.
 */
import { HEADER_SIZE, writeRequestHeader } from './frames.js';

/** Where the block starts in the scratch buffer: after the frame's header and the block's u32 length. */
const BLOCK_START = HEADER_SIZE + 4;
/** Up to this length a string is copied char by char; longer ones through Buffer#write, whose call costs more than a short copy. */
const LOOP_LIMIT = 32;

/** Names written by name(), encoded with their NUL, up to MAX_NAMES of them. */
const names = new Map<string, Buffer>();
const MAX_NAMES = 4096;

export class BlockWriter {
  private buf = Buffer.allocUnsafe(4096);
  private at = BLOCK_START;

  /** Starts a new block. */
  reset(): void {
    this.at = BLOCK_START;
  }

  /** Appends `s` as latin-1 (each char's low byte, as Buffer's latin1 encoding). */
  text(s: string, start = 0, end = s.length): void {
    if (this.at + end - start > this.buf.length) this.grow(end - start);
    this.at = writeLatin1(this.buf, this.at, s, start, end);
  }

  /** Appends `b` (a block's constant part, encoded once: a copy costs less than writing its chars). */
  bytes(b: Uint8Array): void {
    if (this.at + b.length > this.buf.length) this.grow(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** Appends a NUL, then `s`, a name among few (a header's variable): copied from its encoding, kept for the next time. */
  name(s: string): void {
    let b = names.get(s);
    if (b === undefined) {
      b = Buffer.from(`\0${s}`, 'latin1');
      if (names.size < MAX_NAMES) names.set(s, b);
    }
    this.bytes(b);
  }

  /** Appends a NUL, then `s`. */
  field(s: string): void {
    if (this.at + 1 > this.buf.length) this.grow(1);
    this.buf[this.at++] = 0;
    this.text(s);
  }

  /** Appends a NUL, then `s` in lower case (ASCII: header names are tokens). */
  lowerField(s: string): void {
    const n = s.length;
    if (this.at + 1 + n > this.buf.length) this.grow(1 + n);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = 0;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      buf[at++] = c >= 65 && c <= 90 ? c + 32 : c;
    }
    this.at = at;
  }

  /** The block so far, as the string encodeRequest() takes (for a block that must wait for its body). */
  toString(): string {
    return this.buf.toString('latin1', BLOCK_START, this.at);
  }

  /** The REQ frame: this block followed by `tail` (more fields), then `body`. */
  frame(tail: string, body: Buffer | null): Buffer {
    this.text(tail);
    const blockLength = this.at - BLOCK_START;
    const bodyLength = body === null ? 0 : body.length;
    writeRequestHeader(this.buf, 0, blockLength, bodyLength);
    const frame = Buffer.allocUnsafe(this.at + bodyLength);
    this.buf.copy(frame, 0, 0, this.at);
    if (body !== null) body.copy(frame, this.at);
    return frame;
  }

  private grow(n: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
}

/** Writes `s` (from `start` to `end`) into `buf` at `at` as latin-1, room permitting; where it ends. */
export function writeLatin1(buf: Buffer, at: number, s: string, start = 0, end = s.length): number {
  if (end - start > LOOP_LIMIT) return at + buf.write(start === 0 && end === s.length ? s : s.slice(start, end), at, 'latin1');
  for (let i = start; i < end; i++) buf[at++] = s.charCodeAt(i);
  return at;
}
