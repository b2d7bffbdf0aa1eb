/**
 * The error catalogue: every error gatehouse reports to a user has a stable
 * code here and a message that says what to do about it. The README's
 * "Error codes" section lists them all (test/errors.test.ts checks it).
 */

export const ErrorCodes = {
  /**
   * A flag, a config file key or the file itself is wrong (exit status 1).
   * The message names the flag or key path and the value; `--check-config`
   * lists every problem at once.
   */
  GH_ERR_CONFIG: 'invalid configuration',
  /**
   * A listener cannot be opened (exit status 1): the address is in use
   * (another server, or an old gatehouse still running) or needs privileges
   * (ports below 1024: root, or CAP_NET_BIND_SERVICE). Pick another --bind,
   * or stop what holds it.
   */
  GH_ERR_BIND: 'cannot listen on an address',
  /**
   * The interpreter for the workers could not be started (exit status 1):
   * `python3` is not on PATH, or --python / --venv names no executable.
   */
  GH_ERR_PYTHON: 'cannot start the Python interpreter',
  /**
   * The application raised while being imported or its callable was not
   * found (exit status 3; the Python traceback follows). Check the APP spec,
   * --chdir, --pythonpath and --venv, and run the import by hand.
   */
  GH_ERR_APP_IMPORT: 'the application failed to import',
  /**
   * A worker (or the --preload template) exited before it loaded the
   * application (exit status 3); its own output is above in the log: a
   * crash in an extension module, a kill (out of memory), or a --user that
   * cannot read the code.
   */
  GH_ERR_WORKER_BOOT: 'a worker keeps failing to boot',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class GatehouseError extends Error {
  /** Exit status when this error stops the server (gunicorn uses 3 for boot failures). */
  readonly exitCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Text shown after the one-line message, such as a Python traceback. */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'GatehouseError';
    this.exitCode = code === 'GH_ERR_APP_IMPORT' || code === 'GH_ERR_WORKER_BOOT' ? 3 : 1;
  }
}

export function configError(key: string, value: unknown, problem: string): GatehouseError {
  return new GatehouseError('GH_ERR_CONFIG', `${key}: ${problem} (got ${JSON.stringify(value)})`);
}
