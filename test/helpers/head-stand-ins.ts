/**
 * The bytes of a request as the reference is to read them. gatehouse takes
 * a method outside llhttp's table and raw bytes of 0x80 and above in a
 * target, which llhttp refuses (nginx takes both): its fast path reads them,
 * and a head it hands over is given to llhttp with a stand-in line and gets
 * its own back. The reference reads the same stand-ins at the same places
 * and gives those requests their lines back, so that both still differ only
 * in the reading.
 */
import { standInLine, type SentLine } from '../../src/front/stand-in-line.js';

/** Bytes with stand-in request lines: the bytes, each stood-in request's line as sent (by its place on the connection), and where a position of the original bytes went. */
export interface StoodIn {
  bytes: Buffer;
  sent: Map<number, SentLine>;
  at(pos: number): number;
}

/** `bytes` with the request lines starting at `starts` (ascending) made llhttp's stand-ins where gatehouse makes one (request-head.ts's standInLine). */
export function standIns(bytes: Buffer, starts: number[]): StoodIn {
  let out = bytes;
  const sent = new Map<number, SentLine>();
  const shifts: Array<{ start: number; end: number; delta: number }> = [];
  // From the last: the places before it stay where they were.
  for (let i = starts.length - 1; i >= 0; i--) {
    const start = starts[i]!;
    if (start >= bytes.length) continue;
    const s = standInLine(out.subarray(start));
    if (s === null) continue;
    out = Buffer.concat([out.subarray(0, start), s.bytes]);
    sent.set(i, s.sent);
    shifts.push({ start, end: start + s.lineEnd, delta: s.delta });
  }
  // A place inside a replaced line is at most that stand-in's end: cuts there stay in order (a shorter
  // stand-in would otherwise put a later cut before an earlier one, and repeat bytes).
  const at = (pos: number): number => {
    const p = shifts.reduce((q, s) => (pos >= s.end ? q + s.delta : q), pos);
    const line = shifts.find((s) => pos > s.start && pos < s.end);
    return line === undefined ? p : Math.min(p, at(line.end));
  };
  return { bytes: out, sent, at };
}
