/**
 * The status a client's malformed request is answered with, by the error
 * code that found it (llhttp's, or node:http's own): what node:http answers,
 * on both of the front's readers.
 */
const STATUSES: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/** 400 for anything not listed. */
export function clientErrorStatus(code: string | undefined): number {
  return STATUSES[code ?? ''] ?? 400;
}
