/**
 * Reading a file region to send it: 256 KiB at a time: Node's default (64 KiB)
 * makes a 1 MiB file 16 trips through the thread pool and 16 socket writes.
 * A download to a slow client holds about two chunks.
 */
import { createReadStream, type ReadStream } from 'node:fs';

const DISK_CHUNK = 256 * 1024;

/** Bytes `start`..`end` (inclusive) of a file, by path or by an open fd (closed at the end). */
export function readFileRegion(file: string | number, start: number, end: number): ReadStream {
  return typeof file === 'number'
    ? createReadStream('', { fd: file, start, end, highWaterMark: DISK_CHUNK })
    : createReadStream(file, { start, end, highWaterMark: DISK_CHUNK });
}
