/** Methods that may be run twice with no more effect than once (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Whether a request of this method may be tried again after a try that may have reached the app. */
export function isIdempotent(method: string | undefined): boolean {
  return IDEMPOTENT.has(method ?? '');
}
