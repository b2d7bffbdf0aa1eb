/**
 * The status a client's malformed request is answered with, by the error
 * code that found it (llhttp's, or node:http's own): what node:http answers,
 * on both of the front's readers; and gatehouse's own 414 (uri-too-long.ts).
 */

/** A request line whose target alone reaches max_header_size (llhttp says HPE_HEADER_OVERFLOW, as for any head too large). */
export const URI_TOO_LONG = 'GH_URI_TOO_LONG';

const STATUSES: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  [URI_TOO_LONG]: 414,
};

/** 400 for anything not listed. */
export function clientErrorStatus(code: string | undefined): number {
  return STATUSES[code ?? ''] ?? 400;
}
