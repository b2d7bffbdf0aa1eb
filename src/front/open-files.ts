/**
 * The open-file limit against --max-connections. A client connection is a
 * file descriptor, and so is every worker pipe, upstream socket, temp file and
 * static file the front opens; past the limit the kernel refuses the accept,
 * libuv closes such connections without a word to anyone, and the front's
 * own opens fail. Node raises its soft limit to the hard one at start; where
 * even that is below what max_connections needs, max_connections is lowered
 * to fit, with a warning (as nginx warns when worker_connections exceed the
 * limit): refused connections are then counted and logged, and the front
 * keeps descriptors for its own work.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

/** Descriptors kept for the front's own files and sockets, besides those of its workers. */
const RESERVE = 128;
/** Each worker's pipes (its wire, stdout and stderr), and its replacement's during a reload. */
const PER_WORKER = 8;

/** This process's soft open-file limit, from /proc (Infinity where there is none to read). */
export function openFileLimit(): number {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line === null || line[1] === 'unlimited' ? Infinity : Number(line[1]);
  } catch {
    return Infinity;
  }
}

/**
 * The number of client connections the front may hold at once: `max`
 * (0: no limit), or fewer where the open-file limit cannot hold them beside
 * `workers` workers' pipes and the front's own files.
 */
export function fitConnections(max: number, workers: number, logger: Logger): number {
  const limit = openFileLimit();
  const reserve = RESERVE + PER_WORKER * workers;
  if (max === 0 || limit >= max + reserve) return max;
  const fits = Math.max(16, limit - reserve);
  logger.warning(
    `The open-file limit is ${limit}: max_connections ${max} does not fit beside the ${reserve} descriptors kept for the workers and the front's own files, ` +
      `so at most ${fits} client connections are taken at once. Raise the limit to serve more (ulimit -Hn, or LimitNOFILE= in a systemd unit)`,
  );
  return fits;
}
