/**
 * A unix socket path before listening on it. A socket file left by a run
 * that died is removed, as gunicorn does; one that a running server still
 * listens on is not (listen then fails: address already in use), where
 * gunicorn would take it over and the server that had it, once stopped,
 * would remove the file from under the new one. A file that is not a socket
 * is left alone (listen fails on it).
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** Removes the socket file at `path` unless a server answers on it. */
export async function clearStaleSocket(path: string): Promise<void> {
  try {
    if (!lstatSync(path).isSocket()) return;
  } catch {
    return; // not there
  }
  if (await answers(path)) return;
  try {
    unlinkSync(path);
  } catch {
    // gone meanwhile, or not ours to remove: listen says which
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    // ECONNREFUSED: nobody listens; anything else (EACCES…) is for listen to report.
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED'));
  });
}
