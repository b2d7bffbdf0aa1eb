/** What a boot failure is reported as: the app's import failed, or a worker took longer than --timeout to load it. */
import { GatehouseError } from '../errors.js';

export function importError(traceback: string): GatehouseError {
  const lines = traceback.trim().split('\n');
  return new GatehouseError('GH_ERR_APP_IMPORT', `cannot load the application: ${lines[lines.length - 1] ?? traceback}`, traceback);
}

/** `what` (a worker, the template) has not loaded the app after `seconds`, past --timeout. */
export function bootTimeoutError(what: string, seconds: number, timeout: number): GatehouseError {
  return new GatehouseError(
    'GH_ERR_WORKER_BOOT',
    `${what} has not loaded the application after ${seconds}s (--timeout ${timeout}): killed (SIGABRT: Python prints where it was). Raise --timeout if the import is just slow`,
  );
}

/** What a failed reload logs: the traceback of an import that failed, or the error's message. */
export function reloadFailure(error: GatehouseError): string {
  return error.code === 'GH_ERR_APP_IMPORT' ? `the new code does not import:\n${error.detail!.trimEnd()}` : error.message;
}
