/**
 * A Python process's stdout or stderr, forwarded to the error log line by
 * line under its pid, each line labelled by levelOfOutput(). Output with no
 * newline for a long stretch (a progress bar redrawn with `\r`, binary
 * data) is logged in pieces of MAX_LINE characters rather than held whole
 * until its newline.
 */
import type { Logger } from './logger.js';
import { levelOfOutput } from './output-level.js';

/** The longest line held for its newline; a longer one is logged in pieces of this size. */
export const MAX_LINE = 16 * 1024;

export function forwardOutput(stream: NodeJS.ReadableStream, level: 'info' | 'error', logger: Logger, pid: number): void {
  let partial = '';
  const log = (line: string) => logger.log(levelOfOutput(line, level), line, pid);
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) log(line);
    while (partial.length > MAX_LINE) {
      log(partial.slice(0, MAX_LINE));
      partial = partial.slice(MAX_LINE);
    }
  });
  stream.on('end', () => {
    if (partial) log(partial);
  });
}
