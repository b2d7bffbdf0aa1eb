/**
 * When a Python process of the pool (a worker, a --preload template) is
 * gone. Node's 'close' waits for the child's pipes to close as well as for
 * its exit, but a process the app started (a multiprocessing pool or a
 * background process forked at import, a subprocess left running) inherits
 * those pipes and holds them open for as long as it lives: its parent would
 * then never be reported dead, and requests sent to it would wait for
 * --timeout. So a child counts as gone at its exit once its pipes close, or
 * STREAM_GRACE_MS after its exit when something else holds them: its wire
 * stream is closed then (all it wrote before dying has been read by then);
 * its output pipes stay open, so what the process it started prints still
 * reaches the log.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/** How long after a child's exit its pipes may stay open before it is reported gone all the same. */
export const STREAM_GRACE_MS = 200;

/**
 * Calls `gone` once `child` has exited and its pipes closed, or STREAM_GRACE_MS
 * after its exit (`held`: a process it started keeps them open; `wire` is
 * destroyed then). `exited` is told of the exit itself, at once.
 */
export function whenGone(
  child: ChildProcess,
  wire: Socket,
  exited: (code: number | null, signal: NodeJS.Signals | null) => void,
  gone: (code: number | null, signal: NodeJS.Signals | null, held: boolean) => void,
): void {
  let reported = false;
  const report = (code: number | null, signal: NodeJS.Signals | null, held: boolean) => {
    if (reported) return;
    reported = true;
    gone(code, signal, held);
  };
  child.on('close', (code, signal) => report(code, signal, false));
  child.on('exit', (code, signal) => {
    exited(code, signal);
    setTimeout(() => {
      if (reported) return;
      wire.destroy();
      report(code, signal, true);
    }, STREAM_GRACE_MS).unref();
  });
}

/** For a forked worker (no ChildProcess of ours): its wire stream is closed STREAM_GRACE_MS after its exit if still open. */
export function closeAfterExit(wire: Socket): void {
  setTimeout(() => wire.destroy(), STREAM_GRACE_MS).unref();
}
