/**
 * The error catalogue: every error gatehouse reports to a user has a stable
 * code here and a message that says what to do about it.
 */

export const ErrorCodes = {
  GH_ERR_CONFIG: 'invalid configuration',
  GH_ERR_BIND: 'cannot listen on an address',
  GH_ERR_PYTHON: 'cannot start the Python interpreter',
  GH_ERR_APP_IMPORT: 'the application failed to import',
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
